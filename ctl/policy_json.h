// How policy commands show rules and sets: text columns and the JSON of docs/cli.md.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "policy/policy_store.h"
#include "policy/rule.h"

namespace xdpctl::ctl {

// An --iif rule's interface at the last commit: "resolved", "pending" (--iif-pending, not
// there yet) or "missing" (gone since the rule was added); "" for a rule without --iif.
std::string iif_state(const policy::Rule& r, const policy::IifIndexes& resolved);
// `resolved` (PolicyStore::current) marks --iif names that matched nothing when committed.
std::string match_text(const policy::Rule& r, const policy::IifIndexes& resolved = {});
std::string action_text(const policy::Action& a);

nlohmann::json rule_json(const policy::Rule& r, const policy::IifIndexes& resolved = {});
// The policy with counters; `before` and `interval` add pps per rule.
nlohmann::json policy_json(const policy::Policy& p, const policy::IifIndexes& resolved,
                           const std::map<uint32_t, policy::RuleCounters>& counters,
                           const std::map<uint32_t, policy::RuleCounters>* before, double interval);

}  // namespace xdpctl::ctl
