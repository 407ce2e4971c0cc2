// plan_ranks (lib/policy/rank_gaps.h): which rank each rule takes, given the ranks in force.
#include <algorithm>
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "abi/xdpctl_abi.h"
#include "policy/rank_gaps.h"

using namespace xdpctl::policy;

namespace {

// Every two rules may match one packet: ranks follow the evaluation order.
const RulesOverlap kAll = [](size_t, size_t) { return true; };

std::vector<uint32_t> iota_ids(uint32_t n, uint32_t first = 1)
{
    std::vector<uint32_t> ids(n);
    for (uint32_t i = 0; i < n; i++)
        ids[i] = first + i;
    return ids;
}

// The hint a plan leaves: the id at each rank.
RankHint hint_of(const std::vector<uint32_t>& ids, const RankPlan& p)
{
    RankHint h;
    h.words = p.words;
    h.ids.assign(p.slots, 0);
    for (size_t i = 0; i < ids.size(); i++)
        h.ids[p.rank[i]] = ids[i];
    return h;
}

void expect_increasing(const RankPlan& p)
{
    for (size_t i = 1; i < p.rank.size(); i++)
        ASSERT_LT(p.rank[i - 1], p.rank[i]) << "at " << i;
    if (!p.rank.empty()) {
        EXPECT_EQ(p.slots, p.rank.back() + 1);
        EXPECT_LE(p.slots, uint64_t(p.words) * 64);
    }
}

}  // namespace

TEST(RankGaps, AfreshLeavesARankFreeAfterEveryEightAndRoomAtTheEnd)
{
    const RankPlan p = plan_ranks(iota_ids(10000), std::vector<uint64_t>(10000, 1), kAll, nullptr, XDPCTL_POL_MAX_RANKS);
    expect_increasing(p);
    EXPECT_TRUE(p.fresh);
    EXPECT_EQ(p.rank[7], 7u);
    EXPECT_EQ(p.rank[8], 9u);  // rank 8 free
    EXPECT_EQ(p.slots, 9999u + 9999 / kGapEvery + 1);
    EXPECT_GE(uint64_t(p.words) * 64, p.slots + 10000 / 32);
    EXPECT_LE(p.words, uint32_t(XDPCTL_POL_MAX_WORDS));
    // More rules than ranks with gaps fit: one rank each.
    const RankPlan dense = plan_ranks(iota_ids(12000), std::vector<uint64_t>(12000, 1), kAll, nullptr, XDPCTL_POL_MAX_RANKS);
    EXPECT_EQ(dense.slots, 12000u);
    EXPECT_EQ(plan_ranks({}, {}, kAll, nullptr, XDPCTL_POL_MAX_RANKS).slots, 0u);
}

TEST(RankGaps, ARuleInsertedTakesAFreeRankAndTheOthersKeepTheirs)
{
    std::vector<uint32_t> ids = iota_ids(100);
    const RankPlan first = plan_ranks(ids, std::vector<uint64_t>(100, 1), kAll, nullptr, XDPCTL_POL_MAX_RANKS);
    const RankHint hint = hint_of(ids, first);
    // Between rules 7 and 8 (ranks 7 and 9): rank 8 is free.
    ids.insert(ids.begin() + 8, 1000);
    const RankPlan p = plan_ranks(ids, std::vector<uint64_t>(101, 1), kAll, &hint, XDPCTL_POL_MAX_RANKS);
    expect_increasing(p);
    EXPECT_FALSE(p.fresh);
    EXPECT_EQ(p.rank[8], 8u);
    EXPECT_EQ(p.words, first.words);
    for (size_t i = 0; i < ids.size(); i++) {
        if (i != 8) {
            EXPECT_EQ(p.rank[i], first.rank[i < 8 ? i : i - 1]) << "rule " << ids[i];
        }
    }
}

TEST(RankGaps, WithNoFreeRankTheCheaperSideMoves)
{
    std::vector<uint32_t> ids = iota_ids(64);
    const RankPlan first = plan_ranks(ids, std::vector<uint64_t>(64, 1), kAll, nullptr, XDPCTL_POL_MAX_RANKS);
    const RankHint hint = hint_of(ids, first);
    // Between rules 2 and 3 (ranks 2 and 3): free ranks are 8 (after rule 7) and none below,
    // so rules 3..7 move up by one whatever they cost.
    std::vector<uint32_t> with = ids;
    with.insert(with.begin() + 3, 1000);
    std::vector<uint64_t> cost(65, 1);
    RankPlan p = plan_ranks(with, cost, kAll, &hint, XDPCTL_POL_MAX_RANKS);
    expect_increasing(p);
    EXPECT_EQ(p.rank[3], 3u);
    for (size_t i = 4; i <= 8; i++)
        EXPECT_EQ(p.rank[i], uint32_t(i));  // rules 3..7 at ranks 4..8
    EXPECT_EQ(p.rank[9], 9u);              // rule 8 kept its rank
    // Between rules 12 and 13 (ranks 13 and 14): free ranks 8 below (rules 8..12 would move
    // down) and 17 above (rules 13..15 would move up). Dear rules above: the ones below move.
    with = ids;
    with.insert(with.begin() + 13, 1000);
    cost.assign(65, 1);
    for (size_t i = 14; i <= 16; i++)
        cost[i] = 1000;
    p = plan_ranks(with, cost, kAll, &hint, XDPCTL_POL_MAX_RANKS);
    expect_increasing(p);
    EXPECT_EQ(p.rank[13], 13u);
    for (size_t i = 8; i <= 12; i++)
        EXPECT_EQ(p.rank[i], first.rank[i] - 1) << "rule " << with[i] << " moved down";
    for (size_t i = 14; i < with.size(); i++)
        EXPECT_EQ(p.rank[i], first.rank[i - 1]) << "rule " << with[i] << " kept";
    // Cheap rules above: they move up instead.
    cost.assign(65, 1000);
    for (size_t i = 14; i <= 16; i++)
        cost[i] = 1;
    p = plan_ranks(with, cost, kAll, &hint, XDPCTL_POL_MAX_RANKS);
    for (size_t i = 0; i < 13; i++)
        EXPECT_EQ(p.rank[i], first.rank[i]) << "rule " << with[i] << " kept";
    EXPECT_EQ(p.rank[14], first.rank[13] + 1);
}

TEST(RankGaps, RulesAppendedTakeTheRoomAtTheEndThenRanksStartAfresh)
{
    std::vector<uint32_t> ids = iota_ids(1000);
    RankPlan p = plan_ranks(ids, std::vector<uint64_t>(ids.size(), 1), kAll, nullptr, XDPCTL_POL_MAX_RANKS);
    const uint32_t words = p.words, room = words * 64 - p.slots;
    bool refreshed = false;
    for (uint32_t k = 0; k < 400 && !refreshed; k++) {
        const RankHint hint = hint_of(ids, p);
        ids.push_back(5000 + k);
        const RankPlan next = plan_ranks(ids, std::vector<uint64_t>(ids.size(), 1), kAll, &hint, XDPCTL_POL_MAX_RANKS);
        expect_increasing(next);
        if (next.fresh) {
            refreshed = true;
            // The room is full, and the rules before it are a block longer than kMaxMovedRules.
            EXPECT_GE(k, room) << "afresh before the room at the end was full";
            EXPECT_GT(next.words, words);
        } else {
            EXPECT_EQ(next.words, words);
            size_t same = 0;
            for (size_t i = 0; i + 1 < ids.size(); i++)
                same += next.rank[i] == p.rank[i];
            if (k < room) {
                EXPECT_EQ(next.rank.back(), p.rank.back() + 1);
                EXPECT_EQ(same, ids.size() - 1);
            } else {
                EXPECT_GE(same + kMaxMovedRules, ids.size() - 1);  // a block moved into a free rank
            }
        }
        p = next;
    }
    EXPECT_TRUE(refreshed);
}

// Rules that no packet matches both need not keep their order: a new rule takes a free rank
// near its place without moving any rule, and a kept rank out of order stays while the rules
// it is out of order with do not overlap it, and is placed again once they do.
TEST(RankGaps, RulesApartTakeAFreeRankOutOfOrderAndKeepItWhileApart)
{
    std::vector<uint32_t> ids = iota_ids(64);
    const RankPlan first = plan_ranks(ids, std::vector<uint64_t>(64, 1), kAll, nullptr, XDPCTL_POL_MAX_RANKS);
    RankHint hint = hint_of(ids, first);
    // Between rules 2 and 3 (ranks 2 and 3), apart from every other rule (id 1000).
    std::vector<uint32_t> with = ids;
    with.insert(with.begin() + 3, 1000);
    bool overlapping = false;
    const RulesOverlap apart = [&](size_t i, size_t j) { return overlapping || (with[i] != 1000 && with[j] != 1000); };
    RankPlan p = plan_ranks(with, std::vector<uint64_t>(65, 1), apart, &hint, XDPCTL_POL_MAX_RANKS);
    EXPECT_EQ(p.rank[3], 8u) << "the nearest free rank";
    for (size_t i = 0; i < with.size(); i++) {
        if (i != 3) {
            EXPECT_EQ(p.rank[i], first.rank[i < 3 ? i : i - 1]) << "rule " << with[i] << " moved";
        }
    }
    // The next commit keeps it there while it stays apart ...
    hint = hint_of(with, p);
    RankPlan again = plan_ranks(with, std::vector<uint64_t>(65, 1), apart, &hint, XDPCTL_POL_MAX_RANKS);
    EXPECT_EQ(again.rank, p.rank);
    // ... and places it again, in order, once it overlaps the rules it is out of order with.
    overlapping = true;
    again = plan_ranks(with, std::vector<uint64_t>(65, 1), apart, &hint, XDPCTL_POL_MAX_RANKS);
    expect_increasing(again);
    EXPECT_LT(again.rank[3], again.rank[4]);
}

TEST(RankGaps, RandomChangesKeepMostRanksAndTheOrder)
{
    std::mt19937_64 rng(5);
    std::vector<uint32_t> ids = iota_ids(3000);
    RankPlan p = plan_ranks(ids, std::vector<uint64_t>(ids.size(), 1), kAll, nullptr, XDPCTL_POL_MAX_RANKS);
    uint32_t next_id = 100000;
    size_t kept = 0, moved = 0, fresh = 0;
    for (int step = 0; step < 300; step++) {
        const RankHint hint = hint_of(ids, p);
        std::map<uint32_t, uint32_t> was;
        for (size_t i = 0; i < ids.size(); i++)
            was[ids[i]] = p.rank[i];
        if (rng() % 3 == 0)
            ids.erase(ids.begin() + ptrdiff_t(rng() % ids.size()));
        else
            ids.insert(ids.begin() + ptrdiff_t(rng() % (ids.size() + 1)), next_id++);
        std::vector<uint64_t> cost(ids.size());
        for (auto& c : cost)
            c = 1 + rng() % 100;
        p = plan_ranks(ids, cost, kAll, &hint, XDPCTL_POL_MAX_RANKS);
        expect_increasing(p);
        fresh += p.fresh;
        for (size_t i = 0; i < ids.size() && !p.fresh; i++)
            if (auto it = was.find(ids[i]); it != was.end())
                (it->second == p.rank[i] ? kept : moved)++;
    }
    EXPECT_EQ(fresh, 0u);
    EXPECT_GT(kept, 200 * moved) << moved << " moved, " << kept << " kept";
}
