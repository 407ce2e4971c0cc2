#include "policy/iif_resolve.h"

#include <net/if.h>
#include <sys/stat.h>

#include <algorithm>

#include <fmt/format.h>

#include "util/error.h"
#include "attach/iface_ref.h"
#include "attach/netns.h"
#include "attach/iface_pins.h"
#include "attach/pin_layout.h"
#include "policy/rule_parse.h"

namespace xdpctl::policy {

namespace {

std::string where(const std::string& netns)
{
    return netns.empty() ? "xdpctl's own network namespace" : "network namespace '" + netns + "'";
}

// The namespace's identity (device and inode of its nsfs file): two names, or a name and
// xdpctl's own namespace, can be one namespace. {0, 0} when it does not exist.
std::pair<dev_t, ino_t> netns_identity(const std::string& netns)
{
    struct stat st {};
    if (stat(netns.empty() ? "/proc/self/ns/net" : ("/run/netns/" + netns).c_str(), &st) != 0)
        return {0, 0};
    return {st.st_dev, st.st_ino};
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

IifIndexes iif_match_keys(const Policy& p, const IifIndexes& resolved)
{
    struct Loaded {
        std::pair<dev_t, ino_t> netns;
        uint32_t ifindex, key;
    };
    IifIndexes out;
    std::vector<Loaded> loaded;
    bool listed = false;
    for (const Rule& r : p.rules) {
        auto it = resolved.find(r.id);
        if (r.iif.empty() || it == resolved.end() || it->second == 0)
            continue;
        if (!listed) {  // only for a policy with --iif rules: a look into every pin directory
            listed = true;
            for (const PinnedIface& i : pinned_ifaces())
                if (auto m = IfacePins(i.dir).read_meta())
                    loaded.push_back({i.netns_id ? std::pair<dev_t, ino_t>(dev_t(i.netns_id->dev), ino_t(i.netns_id->ino))
                                                 : netns_identity(i.legacy_netns),
                                      m->ifindex, m->iif_key ? m->iif_key : m->ifindex});
        }
        const auto own = netns_identity(r.iif_netns);
        out[r.id] = 0;
        for (const Loaded& l : loaded)
            if (l.ifindex == it->second && l.netns == own)
                out[r.id] = l.key;
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
