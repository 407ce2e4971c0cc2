// The shapes of a direction's rules that the datapath decides without the class tables and
// the walk (abi/xdpctl_abi.h: enum xdpctl_pol_decide): few rules naming no set and no
// interface, compared one by one (xdpctl_pol_small); rules on one address field only, decided
// by the address's class (xdpctl_pdecide).
#pragma once

#include <optional>
#include <vector>

#include "abi/xdpctl_abi.h"
#include "policy/rule.h"

namespace xdpctl::policy {

struct CompiledDirection;

// The rules of one direction, in evaluation order, as small rules (their `rec` left for the
// commit, which knows the counter slots); nullopt when the direction cannot take that path:
// more than XDPCTL_POL_SMALL_MAX rules, a rule that names a set or an interface, or one whose
// source and destination are of two IP versions (it matches nothing; the walk handles it).
std::optional<std::vector<xdpctl_pol_small_rule>> small_rules(const std::vector<const Rule*>& ranked);

// The rules of one direction, in evaluation order, as small rules for its anchor lists
// (abi/xdpctl_abi.h: XDPCTL_POL_DECIDE_ANCHORS; `rec` left for the commit), each at its rank
// rank_of[i] among `slots` (rank_gaps.h; the free ranks zero), or in order when rank_of is
// empty; nullopt when a rule names a set or an interface, counts or rate-limits (those go on
// to later rules: the tables' walk), or its source and destination are of two IP versions.
std::optional<std::vector<xdpctl_pol_small_rule>> anchor_rules(const std::vector<const Rule*>& ranked,
                                                               const std::vector<uint32_t>& rank_of = {},
                                                               uint32_t slots = 0);

// A direction's anchor lists as xdpctl_panc lays them out: per field the index entry of its
// class 0 (XDPCTL_POL_ANC_NONE: no rule is anchored there), the index entries
// (start << 8 | length) and the lists of ranks.
struct AnchorLists {
    uint32_t base[XDPCTL_POL_FIELDS];
    std::vector<uint32_t> idx;
    std::vector<uint16_t> ranks;
    uint32_t unanchored = 0;  // dir_hdr.decide's skip bits: fields no rule is anchored at (never L4)
};

// The anchor lists of `cd`'s classes as they are numbered now (after align_classes()), from
// its rows: the list of class c of field f holds the ranks of the rules anchored at f that
// c's row holds. nullopt when `cd` has no anchor_rules or a list or the lists outgrow the
// element (XDPCTL_POL_ANC_LIST_MAX, _IDX_ENTRIES, _LIST_ENTRIES): the tables decide.
std::optional<AnchorLists> anchor_lists(const CompiledDirection& cd);

// Whether rule r can be a direction's edge rule (abi: XDPCTL_POL_DECIDE_EDGE): it names one
// set in one address field and nothing else, drops or passes, and sends no events (the log
// path is chosen from the ranked records). kFieldSrc or kFieldDst, else -1.
int edge_rule_field(const Rule& r);

// kFieldSrc or kFieldDst (compiled_policy.h) when every rule names that address (a prefix or
// a set) and nothing else, and drops or passes (count and rate-limit rules go on to later
// rules: the tables' walk); -1 otherwise, and for no rules.
int one_address_field(const std::vector<const Rule*>& ranked);

}  // namespace xdpctl::policy
