#include "policy/rank_gaps.h"

#include <algorithm>
#include <bit>

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

// The hint's rank of each rule id, in an open-addressed table (~20 us for 10,000 ids, where a
// std::unordered_map takes ~0.4 ms of allocations on the commit's path).
class RankOfId {
public:
    explicit RankOfId(const std::vector<uint32_t>& ids)
    {
        const size_t cap = std::bit_ceil(ids.size() * 2 + 16);
        slots_.assign(cap, 0);
        mask_ = cap - 1;
        for (uint32_t r = 0; r < ids.size(); r++)
            if (ids[r])
                for (size_t h = hash(ids[r]);; h = (h + 1) & mask_)
                    if (!slots_[h]) {
                        slots_[h] = uint64_t(ids[r]) << 32 | r;
                        break;
                    }
    }
    uint32_t find(uint32_t id) const
    {
        for (size_t h = hash(id); slots_[h]; h = (h + 1) & mask_)
            if (uint32_t(slots_[h] >> 32) == id)
                return uint32_t(slots_[h]);
        return kNone;
    }

private:
    size_t hash(uint32_t id) const { return size_t((uint64_t(id) * 0x9E3779B97F4A7C15ull) >> 32) & mask_; }
    std::vector<uint64_t> slots_;  // id << 32 | rank; 0: empty (ids are never 0)
    size_t mask_ = 0;
};

}  // namespace

RankPlan plan_ranks(const std::vector<uint32_t>& ids, const std::vector<uint64_t>& cost, const RankHint* hint,
                    uint32_t max_ranks)
{
    const size_t n = ids.size();
    if (!hint || hint->ids.empty() || hint->words == 0 || n == 0 || cost.size() != n)
        return afresh(n, max_ranks);
    const uint64_t cap = std::min<uint64_t>(uint64_t(hint->words) * 64, max_ranks);
    // Too few rules for the ranks (many deleted): the walk would scan words of free ranks.
    if (n > cap || cap > 2 * n + 128)
        return afresh(n, max_ranks);

    // The rules the hint ranks, in increasing order, keep their ranks.
    RankPlan p;
    p.rank.assign(n, kNone);
    p.words = hint->words;
    std::vector<uint32_t> at(cap, kNone);  // rank -> rule
    {
        const RankOfId held(hint->ids);
        uint32_t last = kNone;
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            const uint32_t h = held.find(ids[i]);
            if (h != kNone && h < cap && (last == kNone || h > last)) {
                p.rank[i] = last = h;
                at[h] = uint32_t(i);
                kept++;
            }
        }
        if (kept * 2 < n)  // mostly new rules: nothing worth keeping
            return afresh(n, max_ranks);
    }
    // The rule after each that kept its rank (n: none): the new rules run up to it.
    std::vector<uint32_t> next_kept(n + 1, uint32_t(n));
    for (size_t i = n; i-- > 0;)
        next_kept[i] = p.rank[i] != kNone ? uint32_t(i) : next_kept[i + 1];
    // A rule new here or moved already costs nothing more to move.
    std::vector<uint8_t> moved(n);
    for (size_t i = 0; i < n; i++)
        moved[i] = p.rank[i] == kNone;

    uint64_t steps = 0;  // ranks looked at while moving rules: past a bound, afresh
    const uint64_t max_steps = 8 * uint64_t(n) + 1024;
    for (size_t i = 0; i < n; i++) {
        if (p.rank[i] != kNone)
            continue;
        const int64_t lo = i ? int64_t(p.rank[i - 1]) : -1;
        const size_t nk = next_kept[i + 1];
        const int64_t hi = nk < n ? int64_t(p.rank[nk]) : int64_t(cap);
        const int64_t run = int64_t(nk - i);  // new rules from i up to the next kept one
        auto take = [&](int64_t r) {
            p.rank[i] = uint32_t(r);
            at[size_t(r)] = uint32_t(i);
        };
        if (hi - lo > 1) {
            if (nk == n)
                take(lo + 1);  // after every kept rule: packed, the rest stays room
            else
                take(hi - lo - 1 >= run ? lo + (hi - lo) / (run + 1) : lo + 1);  // spread over the gap
            continue;
        }
        if (nk == n)
            return afresh(n, max_ranks);  // the room at the end is full: rows a word longer
        // No free rank between the neighbours: the rules between the nearest free rank and
        // the new one move by one, on the side where they cost less.
        int64_t right = lo + 1;
        uint64_t cost_right = 0;
        for (; right < int64_t(cap) && at[size_t(right)] != kNone; right++)
            cost_right += moved[at[size_t(right)]] ? 0 : cost[at[size_t(right)]];
        int64_t left = lo;
        uint64_t cost_left = 0;
        for (; left >= 0 && at[size_t(left)] != kNone; left--)
            cost_left += moved[at[size_t(left)]] ? 0 : cost[at[size_t(left)]];
        steps += uint64_t(right - left);
        if (steps > max_steps || (right >= int64_t(cap) && left < 0))
            return afresh(n, max_ranks);
        if (right < int64_t(cap) && (left < 0 || cost_right <= cost_left)) {
            for (int64_t q = right - 1; q > lo; q--) {
                const uint32_t j = at[size_t(q)];
                p.rank[j] = uint32_t(q + 1);
                at[size_t(q + 1)] = j;
                moved[j] = 1;
            }
            take(lo + 1);
        } else {
            for (int64_t q = left + 1; q <= lo; q++) {
                const uint32_t j = at[size_t(q)];
                p.rank[j] = uint32_t(q - 1);
                at[size_t(q - 1)] = j;
                moved[j] = 1;
            }
            take(lo);
        }
    }
    p.slots = p.rank.back() + 1;
    return p;
}

}  // namespace xdpctl::policy
