// How policy commands show rules and sets: text columns and the JSON of docs/cli.md.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "policy/policy_store.h"
#include "policy/rule.h"

namespace xdpctl::ctl {

std::string match_text(const policy::Rule& r);
std::string action_text(const policy::Action& a);
nlohmann::json rule_json(const policy::Rule& r);
// The policy with counters; `before` and `interval` add pps per rule.
nlohmann::json policy_json(const policy::Policy& p,
                           const std::map<uint32_t, policy::RuleCounters>& counters,
                           const std::map<uint32_t, policy::RuleCounters>* before, double interval);

}  // namespace xdpctl::ctl
