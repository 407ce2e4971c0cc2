#include "stats/status.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "attach/datapath_paths.h"
#include "attach/iface_index.h"
#include "attach/iface_pins.h"
#include "lb/lb_maps.h"
#include "attach/loader.h"
#include "util/map_memory.h"
#include "attach/netns.h"
#include "attach/pin_layout.h"
#include "attach/pin_target.h"
#include "util/unique_fd.h"
#include "attach/xdp_next.h"

namespace xdpctl {

bool bpf_stats_enabled()
{
    std::ifstream f("/proc/sys/kernel/bpf_stats_enabled");
    int v = 0;
    f >> v;
    return v != 0;
}

namespace {

std::optional<ProgStatus> prog_status(int prog_fd, std::string hook, std::string attach)
{
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (bpf_prog_get_info_by_fd(prog_fd, &info, &len) != 0)
        return std::nullopt;
    ProgStatus p;
    p.hook = std::move(hook);
    p.attach = std::move(attach);
    p.id = info.id;
    p.name = info.name;
    p.verified_insns = info.verified_insns;
    p.xlated_bytes = info.xlated_prog_len;
    p.jited_bytes = info.jited_prog_len;
    p.paths = program_paths(prog_fd);
    p.run_cnt = info.run_cnt;
    p.run_time_ns = info.run_time_ns;
    return p;
}

void add_linked_prog(IfaceStatus& st, const std::string& pin, const char* hook, std::string attach)
{
    UniqueFd link = open_pinned(pin);
    if (!link)
        return;
    bpf_link_info li{};
    __u32 len = sizeof(li);
    if (bpf_link_get_info_by_fd(link.get(), &li, &len) != 0)
        return;
    UniqueFd prog{bpf_prog_get_fd_by_id(li.prog_id)};
    if (!prog)
        return;
    if (auto p = prog_status(prog.get(), hook, std::move(attach))) {
        // A defunct XDP/tcx link reports ifindex 0 once its device is gone.
        p->linked = li.type == BPF_LINK_TYPE_XDP ? li.xdp.ifindex != 0 : li.tcx.ifindex != 0;
        st.progs.push_back(*p);
    }
}

void add_pinned_prog(IfaceStatus& st, const std::string& pin, const char* hook)
{
    UniqueFd prog = open_pinned(pin);
    if (!prog)
        return;
    if (auto p = prog_status(prog.get(), hook, "clsact"))
        st.progs.push_back(*p);
}

std::optional<MapStatus> map_status(int fd, std::string name = "")
{
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_map_get_info_by_fd(fd, &info, &len) != 0)
        return std::nullopt;
    const char* type = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(info.type));
    return MapStatus{name.empty() ? std::string(info.name) : name, info.id, type ? type : "?",
                     info.max_entries, map_memlock(fd)};
}

void add_map(IfaceStatus& st, const std::string& pin)
{
    UniqueFd fd = open_pinned(pin);
    if (!fd)
        return;
    if (auto m = map_status(fd.get()))
        st.maps.push_back(*m);
}

}  // namespace

std::vector<MapStatus> collect_shared_maps()
{
    std::vector<MapStatus> out;
    std::error_code ec;
    std::vector<std::string> pins;
    for (const auto& e : std::filesystem::directory_iterator(shared_maps_dir(), ec))
        if (!e.is_directory())  // layout/ and upgrade/ (lib/upgrade/) hold no map
            pins.push_back(e.path().string());
    std::sort(pins.begin(), pins.end());
    for (const auto& pin : pins) {
        UniqueFd fd = open_pinned(pin);
        if (!fd)
            continue;
        auto m = map_status(fd.get());
        if (!m)
            continue;
        out.push_back(*m);
        if (m->type != "array_of_maps")
            continue;
        // From userspace an outer map's value is the inner map's id.
        for (__u32 slot = 0; slot < m->max_entries; slot++) {
            __u32 id = 0;
            if (bpf_map_lookup_elem(fd.get(), &slot, &id) != 0 || !id)
                continue;
            UniqueFd inner{bpf_map_get_fd_by_id(id)};
            if (inner)
                if (auto im = map_status(inner.get(), fmt::format("{}[{}]", m->name, slot)))
                    out.push_back(*im);
        }
    }
    return out;
}

std::optional<LbStatus> collect_lb_status()
{
    if (!path_exists(shared_maps_dir() + "/xdpctl_lb_vips"))
        return std::nullopt;
    // Reads only: no lock (a change under way shows as before or after, per map).
    lb::LbMaps m(lb::lb_map_fds_pinned(shared_maps_dir()));
    LbStatus st;
    for (const auto& v : m.vips()) {
        st.vips++;
        st.backends += m.backends(v.rec.id).size();
    }
    if (auto ct = map_status(m.fds().ct.get()))
        st.conntrack_entries = ct->max_entries;
    const xdpctl_lb_stats c = m.stats();
    st.conntrack_hits = c.cnt[XDPCTL_LB_CNT_CT_HIT];
    st.conntrack_misses = c.cnt[XDPCTL_LB_CNT_CT_MISS];
    return st;
}

namespace {
// Why the pins under `pinned` are stale: its namespace is gone, or what `check(ifindex)`
// (run inside the namespace) finds not attached to the interface there.
std::vector<std::string> stale_reasons(
    const PinnedIface& pinned, const std::function<std::vector<PinTarget>(int ifindex)>& check)
{
    if (!pinned.where)
        return {"its network namespace is gone"};
    NetnsScope ns(*pinned.where);
    std::vector<std::string> out;
    for (const auto& t : check(find_ifindex(pinned.ref())))
        out.push_back(describe(t));
    return out;
}
}  // namespace

std::vector<IfaceStatus> collect_status()
{
    std::vector<IfaceStatus> out;
    for (const auto& pinned : pinned_ifaces()) {
        IfacePins pins(pinned.dir);
        IfaceStatus st;
        st.iface = pinned.ref();
        st.display = pinned.display();
        st.pin_dir = pinned.dir;
        st.netns_id = pinned.netns_id ? pinned.netns_id->key() : "";
        st.stale = stale_reasons(pinned, [&](int ifindex) {
            return foreign_or_stale_pins(pins, ifindex, pinned.ifname);
        });
        st.meta = pins.read_meta();
        std::string xdp_attach = st.meta ? xdp_mode_name(st.meta->xdp_mode) : "?";
        add_linked_prog(st, pins.link_xdp, "xdp", xdp_attach);
        add_linked_prog(st, pins.link_tc_in, "tc_ingress", "tcx");
        add_linked_prog(st, pins.link_tc_eg, "tc_egress", "tcx");
        add_pinned_prog(st, pins.prog_tc_in, "tc_ingress");
        add_pinned_prog(st, pins.prog_tc_eg, "tc_egress");
        add_map(st, pins.stats);
        add_map(st, pins.meta);
        if (path_exists(pins.next)) {
            auto n = pinned_next_prog(pins.next, false);
            st.next = IfaceStatus::Next{n ? n->id : 0, n ? n->name : ""};
            add_map(st, pins.next);
        }
        out.push_back(std::move(st));
    }
    return out;
}

std::vector<DecapStatus> collect_decap_status()
{
    std::vector<DecapStatus> out;
    for (const auto& pinned : pinned_decaps()) {
        DecapStatus st;
        st.iface = pinned.ref();
        st.display = pinned.display();
        st.pin_dir = pinned.dir;
        const std::string link = pinned.dir + "/link";
        st.stale = stale_reasons(pinned, [&](int ifindex) {
            std::vector<PinTarget> bad;
            auto t = check_pin(link, PinKind::tcx_link, TcDirection::ingress, ifindex, pinned.ifname);
            if (!t)
                bad.push_back({link, PinState::detached, "not pinned (an interrupted attach)"});
            else if (t->state != PinState::here)
                bad.push_back(*t);
            return bad;
        });
        out.push_back(std::move(st));
    }
    return out;
}

}  // namespace xdpctl
