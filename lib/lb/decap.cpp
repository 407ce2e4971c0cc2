#include "lb/decap.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "util/error.h"
#include "attach/iface_index.h"
#include "attach/iface_pins.h"
#include "util/libbpf_log.h"
#include "attach/netns.h"
#include "attach/pin_layout.h"
#include "attach/pin_target.h"
#include "attach/skeleton.h"
#include "util/system_checks.h"
#include "attach/tc_attach.h"
#include "xdpctl_decap.skel.h"

namespace xdpctl::lb {

namespace {

// The decapsulator's link against IFNAME here; none when no link is pinned under `dir`.
std::optional<PinTarget> link_target(const std::string& dir, int ifindex, const IfaceRef& iface)
{
    return check_pin(dir + "/link", PinKind::tcx_link, TcDirection::ingress, ifindex, iface.ifname);
}

xdpctl_lb_decap_key key_of(const IpAddr& a)
{
    xdpctl_lb_decap_key k{};
    std::memcpy(k.addr, a.w, sizeof(k.addr));
    k.family = a.family;
    return k;
}

// Replaces the map's addresses with `addrs`: new ones first, so an address in both lists
// is never missing.
void set_addrs(int map_fd, const std::vector<IpAddr>& addrs)
{
    __u32 one = 1;
    std::vector<xdpctl_lb_decap_key> keep;
    for (const auto& a : addrs) {
        auto k = key_of(a);
        if (bpf_map_update_elem(map_fd, &k, &one, BPF_ANY) != 0)
            fail("cannot add {} to the decapsulator: {}", format_ip(a), errno_str(errno));
        keep.push_back(k);
    }
    xdpctl_lb_decap_key cur{}, next{};
    std::vector<xdpctl_lb_decap_key> drop;
    const void* prev = nullptr;
    while (bpf_map_get_next_key(map_fd, prev, &next) == 0) {
        cur = next;
        prev = &cur;
        bool kept = false;
        for (const auto& k : keep)
            kept |= std::memcmp(&k, &cur, sizeof(k)) == 0;
        if (!kept)
            drop.push_back(cur);
    }
    for (const auto& k : drop)
        bpf_map_delete_elem(map_fd, &k);
}

}  // namespace

bool decap_attach(const IfaceRef& iface, const std::vector<IpAddr>& addrs)
{
    require_privileges();
    require_bpffs();
    if (addrs.empty())
        fail_usage("lb decap attach {}: name at least one address of this host to decapsulate for",
                   iface.ifname);
    // Everything in the interface's namespace: its pins are keyed by that namespace.
    NetnsScope ns(iface.netns);
    const int ifindex = resolve_ifindex(iface);
    const NetnsId netns_id = current_netns_id();
    const std::string dir = decap_pin_dir(netns_id, iface.ifname);
    adopt_legacy_pins(legacy_decap_pin_dir(iface), dir, [&](const std::string& d) {
        auto t = link_target(d, ifindex, iface);
        return !t || t->state != PinState::elsewhere;
    });
    if (path_exists(dir)) {
        auto t = link_target(dir, ifindex, iface);
        if (t && t->state != PinState::here)
            fail("the decapsulator pinned under {} is not attached to {}:\n  {}\n'xdpctl lb decap "
                 "detach {}' removes it",
                 dir, iface.display(), describe(*t), iface.cli_args());
        UniqueFd map = open_pinned(dir + "/dst");
        if (t && map) {
            set_addrs(map.get(), addrs);
            return false;
        }
        // An attach interrupted before it pinned its link: nothing is attached.
        remove_pin_tree(dir);
    }
    libbpf_log_start();
    SkelPtr<xdpctl_decap> s(xdpctl_decap::open_and_load());
    if (!s)
        fail("cannot load the decapsulator: {}", errno_str(errno));
    set_addrs(bpf_map__fd(s->maps.xdpctl_decap_dst), addrs);
    int err = 0;
    UniqueFd link = attach_tcx_link(bpf_program__fd(s->progs.xdpctl_decap), ifindex,
                                    TcDirection::ingress, &err);
    if (!link)
        fail("{}: cannot attach the decapsulator to tcx ingress: {}", iface.display(), errno_str(err));
    make_pin_dir(dir);
    pin_fd(bpf_map__fd(s->maps.xdpctl_decap_dst), dir + "/dst");
    try {
        pin_fd(link.get(), dir + "/link");
    } catch (...) {
        unpin(dir + "/dst");
        throw;
    }
    record_netns_name(netns_id, iface.netns);
    return true;
}

void decap_detach(const IfaceRef& iface)
{
    require_privileges();
    require_bpffs();
    const PinSite site = locate_pins(iface, "decap");
    const std::string& dir = site.dir;
    if (site.where) {
        NetnsScope ns(*site.where);
        auto t = link_target(dir, find_ifindex(iface), iface);
        if (t && t->state == PinState::elsewhere)
            fail("the decapsulator pinned under {} is another network namespace's:\n  {}\nxdpctl "
                 "there removes it ('xdpctl lb decap detach'), or 'xdpctl unload --all'",
                 dir, describe(*t));
    }
    UniqueFd link = open_pinned(dir + "/link");
    if (!link && !path_exists(dir + "/dst"))
        fail_usage("no decapsulator on {} (nothing under {})", iface.display(), dir);
    if (link) {
        int err = bpf_link_detach(link.get());
        if (err && err != -ENOLINK && err != -EINVAL && err != -ENOENT)
            fail("cannot detach the decapsulator from {}: {}", iface.display(), errno_str(err));
    }
    remove_pin_tree(dir);
    remove_empty_pin_parents(dir);
}

}  // namespace xdpctl::lb
