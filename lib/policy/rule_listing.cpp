#include "policy/rule_listing.h"

#include <algorithm>

#include "policy/iif_resolve.h"

namespace xdpctl::policy {

RuleListing read_rule_listing(const PolicyStore& store)
{
    RuleListing l = store.read_consistent([&] {
        RuleListing cur;
        cur.policy = store.current(&cur.resolved);
        cur.counters = store.counters();
        cur.commits = store.commits();
        cur.last_commit_unix_ns = store.last_commit_unix_ns();
        return cur;
    });
    // A policy stored by the release before this one has no resolved indexes: as they are now.
    if (std::any_of(l.policy.rules.begin(), l.policy.rules.end(), [&](const Rule& r) {
            return !r.iif.empty() && !l.resolved.count(r.id);
        }))
        for (const auto& [id, ifindex] : resolve_iifs(l.policy))
            l.resolved.try_emplace(id, ifindex);
    return l;
}

}  // namespace xdpctl::policy
