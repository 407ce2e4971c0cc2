// Which rank each rule of a direction takes. A rank is a rule's bit in every row and the
// index of its record; the datapath takes the lowest rank that matches. Given one rank after
// another in evaluation order, a rule inserted among 10,000 moved every later rank, so every
// row, record and anchor list after it changed: ~23 MiB of rows written for one rule. So:
//  - ranks are left free between rules (one after every kGapEvery), and a commit keeps the
//    ranks the generation in force gives its rules;
//  - ranks need follow the evaluation order only between rules that may match one packet
//    (`overlaps`): of two rules no packet matches both, either may come first. A new rule
//    takes a free rank above every overlapping rule before it and below every overlapping
//    rule after it, the one nearest its place in evaluation order;
//  - where no rank is free there, the rules between it and the nearest free rank move by one
//    (a block of ranks moved together keeps every order among rules), on the side whose
//    rules sit in fewer rows.
// The rows that change are then those that hold the new rule or a moved one. A free rank is a
// record of id 0 and a bit no row holds: the datapath never reaches it.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace xdpctl::policy {

// A free rank after every kGapEvery rules, when ranks are given afresh.
inline constexpr uint32_t kGapEvery = 8;

// The ranks a generation gives one direction's rules (PolicyMaps::active_ranks).
struct RankHint {
    uint32_t words = 0;          // the generation's 64-bit words of rule bits per row
    std::vector<uint32_t> ids;   // the rule id at each rank, 0 at a free rank
};

// Both directions' (ingress, egress).
struct RankHints {
    RankHint dir[2];
};

struct RankPlan {
    std::vector<uint32_t> rank;  // per rule, in evaluation order; distinct, increasing between overlapping rules
    uint32_t slots = 0;          // the highest rank + 1 (0: no rules)
    uint32_t words = 0;          // words of rule bits per row: at least ceil(slots / 64)
    bool fresh = false;          // ranks given afresh (nothing kept from the hint)
};

// Whether rules i and j (indexes into `ids`) may match one packet; true when unsure.
using RulesOverlap = std::function<bool(size_t, size_t)>;

// The ranks of the rules `ids` (a direction's, in evaluation order). `cost[i]` is what moving
// rule i costs (the rows that hold it, roughly); `hint`: the ranks in force (nullptr or empty:
// afresh). The rows keep the hint's words where the rules fit them, so a rule appended does
// not change every row's size; afresh, they leave room for ~1/32 more rules at the end.
// Ranks are given afresh (in evaluation order) also when many rules are new (over
// kMaxNewRules, or half), or when too many kept ranks stray from the evaluation order.
// `max_ranks`: the most a direction may have (XDPCTL_POL_MAX_RANKS); more rules than that get
// one rank each, 0..n-1 (the commit then refuses them).
RankPlan plan_ranks(const std::vector<uint32_t>& ids, const std::vector<uint64_t>& cost, const RulesOverlap& overlaps,
                    const RankHint* hint, uint32_t max_ranks);

// Rules new in one commit that are placed among the kept ones (each is compared with every
// rule); more, and ranks are given afresh.
inline constexpr size_t kMaxNewRules = 64;
// Rules moved by one to make room for one new rule; more, and ranks are given afresh.
inline constexpr size_t kMaxMovedRules = 64;
// Kept rules whose ranks stray from the evaluation order (placed beside rules they do not
// overlap); more, and ranks are given afresh, in order.
inline constexpr size_t kMaxStrayRules = 512;

}  // namespace xdpctl::policy
