#include "policy/iif_resolve.h"

#include <net/if.h>

#include "error.h"
#include "netns.h"
#include "policy/rule_parse.h"

namespace xdpctl::policy {

namespace {

std::string where(const std::string& netns)
{
    return netns.empty() ? "xdpctl's own network namespace" : "network namespace '" + netns + "'";
}

}  // namespace

void bind_iif_netns(Rule& r, const std::string& netns)
{
    if (r.iif.empty() || !r.iif_netns.empty() || netns.empty())
        return;
    validate_iif_netns(netns);
    r.iif_netns = netns;
}

IifIndexes resolve_iifs(const Policy& p)
{
    std::map<std::string, std::vector<const Rule*>> by_netns;
    for (const Rule& r : p.rules)
        if (!r.iif.empty())
            by_netns[r.iif_netns].push_back(&r);
    IifIndexes out;
    for (const auto& [netns, rules] : by_netns) {
        // A namespace that is gone takes its interfaces with it: no match, and no reason to
        // refuse a commit that did not touch those rules.
        if (!netns.empty() && !netns_exists(netns)) {
            for (const Rule* r : rules)
                out[r->id] = 0;
            continue;
        }
        NetnsScope in(netns);
        for (const Rule* r : rules)
            out[r->id] = if_nametoindex(r->iif.c_str());
    }
    return out;
}

void require_iif_exists(const Rule& r)
{
    if (r.iif.empty() || r.iif_pending)
        return;
    if (!r.iif_netns.empty() && !netns_exists(r.iif_netns))
        fail_usage("--iif '{}': network namespace '{}' not found (see 'ip netns list'; add "
                   "--iif-pending if it will appear later)",
                   r.iif, r.iif_netns);
    uint32_t idx = 0;
    {
        NetnsScope in(r.iif_netns);
        idx = if_nametoindex(r.iif.c_str());
    }
    if (idx == 0)
        fail_usage("--iif '{}': no such interface in {} (add --iif-pending if it will appear later)",
                   r.iif, where(r.iif_netns));
}

}  // namespace xdpctl::policy
