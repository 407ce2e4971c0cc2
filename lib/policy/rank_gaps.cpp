#include "policy/rank_gaps.h"

#include <algorithm>
#include <bit>

#include "policy/hash_index.h"

namespace xdpctl::policy {

namespace {

constexpr uint32_t kNone = UINT32_MAX;

uint32_t words_for(uint64_t slots)
{
    return uint32_t(std::max<uint64_t>(1, (slots + 63) / 64));
}

RankPlan afresh(size_t n, uint32_t max_ranks)
{
    RankPlan p;
    p.fresh = true;
    p.rank.resize(n);
    if (n == 0)
        return p;
    const bool gaps = n + n / kGapEvery <= max_ranks;
    for (size_t i = 0; i < n; i++)
        p.rank[i] = uint32_t(gaps ? i + i / kGapEvery : i);
    p.slots = p.rank.back() + 1;
    // Room at the end for ~1/32 more rules: rules appended one by one take it, and the rows
    // keep their size (a word more changes every row) until it is full.
    uint64_t room = uint64_t(p.slots) + n / 32;
    if (room > max_ranks)
        room = std::max<uint64_t>(p.slots, max_ranks);
    p.words = words_for(room);
    return p;
}

}  // namespace

namespace {

// The kept rules (rank != kNone) in a longest run of increasing ranks in evaluation order:
// those follow the order whatever overlaps. The others (stray: placed beside rules they do
// not overlap) are checked against the rules they are out of order with.
std::vector<uint8_t> in_order_core(const std::vector<uint32_t>& rank)
{
    std::vector<uint32_t> tails, tail_at, prev(rank.size(), kNone);
    for (uint32_t i = 0; i < rank.size(); i++) {
        if (rank[i] == kNone)
            continue;
        // Mostly increasing: the run grows at its end, with no search.
        const size_t k = tails.empty() || rank[i] > tails.back()
                             ? tails.size()
                             : size_t(std::lower_bound(tails.begin(), tails.end(), rank[i]) - tails.begin());
        if (k == tails.size()) {
            tails.push_back(rank[i]);
            tail_at.push_back(i);
        } else {
            tails[k] = rank[i];
            tail_at[k] = i;
        }
        prev[i] = k ? tail_at[k - 1] : kNone;
    }
    std::vector<uint8_t> core(rank.size());
    for (uint32_t i = tail_at.empty() ? kNone : tail_at.back(); i != kNone; i = prev[i])
        core[i] = 1;
    return core;
}

}  // namespace

RankPlan plan_ranks(const std::vector<uint32_t>& ids, const std::vector<uint64_t>& cost, const RulesOverlap& overlaps,
                    const RankHint* hint, uint32_t max_ranks)
{
    const size_t n = ids.size();
    if (!hint || hint->ids.empty() || hint->words == 0 || n == 0 || cost.size() != n || !overlaps)
        return afresh(n, max_ranks);
    const uint64_t cap = std::min<uint64_t>(uint64_t(hint->words) * 64, max_ranks);
    // Too few rules for the ranks (many deleted): the walk would scan words of free ranks.
    if (n > cap || cap > 2 * n + 128)
        return afresh(n, max_ranks);

    RankPlan p;
    p.rank.assign(n, kNone);
    p.words = hint->words;
    {
        // The hint's rank of each rule id.
        HashIndex held(hint->ids.size());
        for (uint32_t r = 0; r < hint->ids.size(); r++)
            if (hint->ids[r])  // 0: a free rank
                held.add(bit_key(hint->ids[r]), r);
        for (size_t i = 0; i < n; i++) {
            const uint32_t id = ids[i];
            if (const uint32_t h = held.find(bit_key(id), [&](uint32_t r) { return hint->ids[r] == id; }); h < cap)
                p.rank[i] = h;
        }
    }
    uint64_t steps = 0;  // rules looked at: past a bound, afresh
    const uint64_t max_steps = 64 * uint64_t(n) + 4096;
    // A kept rank out of evaluation order stays only where the rules it is out of order with
    // do not overlap it (the rules may have changed since: `apply` of another rule by an id).
    {
        const std::vector<uint8_t> core = in_order_core(p.rank);
        std::vector<uint32_t> stray;
        for (uint32_t i = 0; i < n; i++)
            if (p.rank[i] != kNone && !core[i])
                stray.push_back(i);
        if (stray.size() > kMaxStrayRules)
            return afresh(n, max_ranks);
        std::vector<uint8_t> drop(stray.size());
        for (size_t s = 0; s < stray.size(); s++) {
            const uint32_t d = stray[s], r = p.rank[d];
            // The in-order rules it is out of order with lie next to it in evaluation order:
            // after it, those below its rank up to the first above; before it, the converse.
            for (size_t j = d + 1; j < n && !drop[s]; j++, steps++)
                if (core[j] && p.rank[j] > r)
                    break;
                else if (core[j] && overlaps(d, j))
                    drop[s] = 1;
            for (size_t j = d; j-- > 0 && !drop[s]; steps++)
                if (core[j] && p.rank[j] < r)
                    break;
                else if (core[j] && overlaps(j, d))
                    drop[s] = 1;
        }
        for (size_t a = 0; a < stray.size(); a++)
            for (size_t b = a + 1; b < stray.size(); b++, steps++)
                if (!drop[a] && !drop[b] && p.rank[stray[a]] > p.rank[stray[b]] && overlaps(stray[a], stray[b]))
                    drop[b] = 1;
        for (size_t s = 0; s < stray.size(); s++)
            if (drop[s])
                p.rank[stray[s]] = kNone;
    }
    size_t fresh_rules = 0;
    for (uint32_t r : p.rank)
        fresh_rules += r == kNone;
    if (fresh_rules * 2 > n || fresh_rules > kMaxNewRules || steps > max_steps)
        return afresh(n, max_ranks);

    std::vector<uint32_t> at(cap, kNone);  // rank -> rule
    for (uint32_t i = 0; i < n; i++)
        if (p.rank[i] != kNone)
            at[p.rank[i]] = i;
    // A rule new here or moved already costs nothing more to move.
    std::vector<uint8_t> moved(n);
    for (size_t i = 0; i < n; i++)
        moved[i] = p.rank[i] == kNone;

    for (size_t i = 0; i < n; i++) {
        if (p.rank[i] != kNone)
            continue;
        // Above every overlapping rule before it, below every one after it (the new rules
        // after it are placed later, against it).
        int64_t lo = -1, hi = int64_t(cap);
        for (size_t j = 0; j < n; j++)
            if (j != i && p.rank[j] != kNone && overlaps(std::min(i, j), std::max(i, j))) {
                if (j < i)
                    lo = std::max<int64_t>(lo, p.rank[j]);
                else
                    hi = std::min<int64_t>(hi, p.rank[j]);
            }
        if (lo >= hi)
            return afresh(n, max_ranks);  // two rules it overlaps, in the other order
        auto take = [&](int64_t r) {
            p.rank[i] = uint32_t(r);
            at[size_t(r)] = uint32_t(i);
        };
        // Its place in evaluation order: after the rule before it.
        const int64_t want = std::clamp<int64_t>(i ? int64_t(p.rank[i - 1]) + 1 : 0, lo + 1, std::max(lo + 1, hi - 1));
        int64_t found = -1;
        for (int64_t d = 0; found < 0 && (want + d < hi || want - d > lo); d++, steps++) {
            if (want + d < hi && at[size_t(want + d)] == kNone)
                found = want + d;
            else if (d && want - d > lo && at[size_t(want - d)] == kNone)
                found = want - d;
        }
        if (found >= 0) {
            take(found);
            continue;
        }
        // Every rank between is taken: the rules from lo + 1 up to the nearest free rank move
        // up by one, or those from hi - 1 down to the nearest free rank below move down, on
        // the side where they cost less.
        int64_t right = lo + 1;
        uint64_t cost_right = 0;
        for (; right < int64_t(cap) && at[size_t(right)] != kNone; right++)
            cost_right += moved[at[size_t(right)]] ? 0 : cost[at[size_t(right)]];
        int64_t left = hi - 1;
        uint64_t cost_left = 0;
        for (; left >= 0 && at[size_t(left)] != kNone; left--)
            cost_left += moved[at[size_t(left)]] ? 0 : cost[at[size_t(left)]];
        steps += uint64_t(right - left);
        // A side with no free rank, or whose block is long (rules appended with the room at
        // the end full would move ever more rules): not that one. Neither: afresh, with room.
        const bool up = right < int64_t(cap) && right - lo - 1 <= int64_t(kMaxMovedRules);
        const bool down = left >= 0 && hi - 1 - left <= int64_t(kMaxMovedRules);
        if (steps > max_steps || (!up && !down))
            return afresh(n, max_ranks);
        if (up && (!down || cost_right <= cost_left)) {
            for (int64_t q = right - 1; q > lo; q--) {
                const uint32_t j = at[size_t(q)];
                p.rank[j] = uint32_t(q + 1);
                at[size_t(q + 1)] = j;
                moved[j] = 1;
            }
            take(lo + 1);
        } else {
            for (int64_t q = left + 1; q < hi; q++) {
                const uint32_t j = at[size_t(q)];
                p.rank[j] = uint32_t(q - 1);
                at[size_t(q - 1)] = j;
                moved[j] = 1;
            }
            take(hi - 1);
        }
    }
    p.slots = *std::max_element(p.rank.begin(), p.rank.end()) + 1;
    return p;
}

}  // namespace xdpctl::policy
