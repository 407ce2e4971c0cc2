// Which rank each rule of a direction takes. A rank is a rule's bit in every row and the
// index of its record, and ranks follow the evaluation order. Given one rank after another,
// a rule inserted among 10,000 moved every later rank, so every row, record and anchor list
// after it changed: ~23 MiB of rows written for one rule. So ranks are left free between
// rules (one after every kGapEvery), a commit keeps the ranks the generation in force gives
// its rules, and a new rule takes a free rank between its neighbours'; where none is free,
// the rules between it and the nearest free rank move by one, on the side whose rules sit in
// fewer rows. The rows that change are then those that hold the new rule or a moved one.
// A free rank is a record of id 0 and a bit no row holds: the datapath never reaches it.
#pragma once

#include <cstdint>
#include <vector>

namespace xdpctl::policy {

// A free rank after every kGapEvery rules, when ranks are given afresh.
inline constexpr uint32_t kGapEvery = 8;

// The ranks a generation gives one direction's rules (PolicyMaps::active_ranks).
struct RankHint {
    uint32_t words = 0;          // the generation's 64-bit words of rule bits per row
    std::vector<uint32_t> ids;   // the rule id at each rank, 0 at a free rank
};

struct RankPlan {
    std::vector<uint32_t> rank;  // per rule, in evaluation order; increasing
    uint32_t slots = 0;          // the highest rank + 1 (0: no rules)
    uint32_t words = 0;          // words of rule bits per row: at least ceil(slots / 64)
    bool fresh = false;          // ranks given afresh (nothing kept from the hint)
};

// The ranks of the rules `ids` (a direction's, in evaluation order). `cost[i]` is what moving
// rule i costs (the rows that hold it, roughly); `hint`: the ranks in force (nullptr or empty:
// afresh). The rows keep the hint's words where the rules fit them, so a rule appended does
// not change every row's size; afresh, they leave room for ~1/32 more rules at the end.
// `max_ranks`: the most a direction may have (XDPCTL_POL_MAX_RANKS); more rules than that get
// one rank each, 0..n-1 (the commit then refuses them).
RankPlan plan_ranks(const std::vector<uint32_t>& ids, const std::vector<uint64_t>& cost, const RankHint* hint,
                    uint32_t max_ranks);

}  // namespace xdpctl::policy
