#include "attach/iface_index.h"

#include <net/if.h>

#include "util/error.h"

namespace xdpctl {

int find_ifindex(const IfaceRef& iface)
{
    return static_cast<int>(if_nametoindex(iface.ifname.c_str()));
}

int resolve_ifindex(const IfaceRef& iface)
{
    int idx = find_ifindex(iface);
    if (idx == 0) {
        if (iface.netns.empty())
            fail("interface '{}' not found (see 'ip link')", iface.ifname);
        fail("interface '{}' not found in network namespace '{}' (see 'ip -n {} link')",
             iface.ifname, iface.netns, iface.netns);
    }
    return idx;
}

}  // namespace xdpctl
