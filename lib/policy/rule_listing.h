// What `rule list` shows and xdpd's metrics export: the committed policy, each --iif rule's
// interface at its commit, and the rule counters, all read at one commit (no commit came in
// between). One reader for both, so a scrape and `rule list --json` agree.
#pragma once

#include <map>

#include "policy/policy_store.h"

namespace xdpctl::policy {

struct RuleListing {
    Policy policy;
    IifIndexes resolved;                       // PolicyStore::current's
    std::map<uint32_t, RuleCounters> counters; // by rule id
    uint64_t commits = 0;                      // the commit all of it was read at
    uint64_t last_commit_unix_ns = 0;          // 0: not recorded (no commit, or an older xdpctl)
};

RuleListing read_rule_listing(const PolicyStore& store);

}  // namespace xdpctl::policy
