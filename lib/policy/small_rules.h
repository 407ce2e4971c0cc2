// A small policy's rules for the datapath's straight-line path (abi/xdpctl_abi.h:
// xdpctl_pol_small): a direction of few rules, none naming a set or an interface, is decided
// by comparing its rules one by one instead of through the class tables and the walk.
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

}  // namespace xdpctl::policy
