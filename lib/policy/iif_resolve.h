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

// What each --iif rule matches in the datapath (rule id -> the iif table's index): the key
// (xdpctl_iface_meta.iif_key) of the interface its name resolved to (`resolved`) in its own
// namespace, when xdpctl is loaded there; interface indexes repeat across namespaces, keys
// do not. 0 where xdpctl is not loaded on it: no program of xdpctl sees its packets. An
// interface loaded by xdpctl 0.1.0 (no key yet; its programs match the ifindex) gets its
// ifindex until a reload gives it a key.
IifIndexes iif_match_keys(const Policy& p, const IifIndexes& resolved);

}  // namespace xdpctl::policy
