// --iif names: each rule's name is an interface of the namespace recorded with the rule
// (Rule::iif_netns), whatever namespace the command that commits is given. Every commit
// resolves every name there (interface indexes are per namespace).
#pragma once

#include <string>
#include <vector>

#include "policy/rule.h"

namespace xdpctl::policy {

// A rule added under `-n NS` (rule add, apply): an --iif without --iif-netns is an
// interface of NS. Rules that record a namespace keep it.
void bind_iif_netns(Rule& r, const std::string& netns);

// The ifindex of every --iif rule's name in its own namespace; 0 where the name, or the
// namespace, does not exist (the rule then matches nothing). Rules need their ids.
IifIndexes resolve_iifs(const Policy& p);

// A rule being added or changed: its --iif must exist in its namespace unless it says
// --iif-pending. A usage error naming the name and the namespace.
void require_iif_exists(const Rule& r);

// The datapath matches --iif by ifindex alone, and indexes are per namespace: a rule whose
// name resolved to index N also matches on an interface of index N in another namespace
// (docs/filtering.md). One warning per rule and such interface xdpctl is loaded on.
std::vector<std::string> iif_index_collisions(const Policy& p, const IifIndexes& resolved);

}  // namespace xdpctl::policy
