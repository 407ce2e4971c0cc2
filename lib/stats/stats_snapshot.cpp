#include "stats/stats_snapshot.h"

#include "util/error.h"
#include "attach/iface_pins.h"

namespace xdpctl {

IfaceSnapshot take_snapshot(const IfaceRef& iface, const std::string& pin_dir, bool per_cpu)
{
    IfacePins pins(pin_dir);
    auto meta = pins.read_meta();
    UniqueFd fd = open_pinned(pins.stats);
    if (!meta || !fd)
        fail("xdpctl is not loaded on {} ('xdpctl load {}' first; 'xdpctl status' lists where "
             "it is)",
             iface.display(), iface.cli_args());
    IfaceSnapshot s;
    s.iface = iface;
    s.taken = std::chrono::steady_clock::now();
    std::vector<int> hooks;
    if (meta->hooks & XDPCTL_HOOKS_XDP)
        hooks.push_back(XDPCTL_HOOK_XDP);
    if (meta->hooks & XDPCTL_HOOKS_TC) {
        hooks.push_back(XDPCTL_HOOK_TC_INGRESS);
        hooks.push_back(XDPCTL_HOOK_TC_EGRESS);
    }
    for (int h : hooks) {
        HookSnapshot hs;
        hs.hook = h;
        if (per_cpu) {
            hs.per_cpu = read_hook_counters_per_cpu(fd.get(), h);
            for (const auto& cpu : hs.per_cpu)
                for (int i = 0; i < XDPCTL_CNT_MAX; i++) {
                    hs.total[i].packets += cpu[i].packets;
                    hs.total[i].bytes += cpu[i].bytes;
                }
        } else {
            hs.total = read_hook_counters(fd.get(), h);
        }
        s.hooks.push_back(std::move(hs));
    }
    return s;
}

}  // namespace xdpctl
