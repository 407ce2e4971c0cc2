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

// The rules of one direction, in evaluation order, as small rules (their `rec` left for the
// commit, which knows the counter slots); nullopt when the direction cannot take that path:
// more than XDPCTL_POL_SMALL_MAX rules, a rule that names a set or an interface, or one whose
// source and destination are of two IP versions (it matches nothing; the walk handles it).
std::optional<std::vector<xdpctl_pol_small_rule>> small_rules(const std::vector<const Rule*>& ranked);

// kFieldSrc or kFieldDst (compiled_policy.h) when every rule names that address (a prefix or
// a set) and nothing else, and drops or passes (count and rate-limit rules go on to later
// rules: the tables' walk); -1 otherwise, and for no rules.
int one_address_field(const std::vector<const Rule*>& ranked);

}  // namespace xdpctl::policy
