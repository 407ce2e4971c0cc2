#include "status.h"

#include <fstream>
#include <sstream>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "iface_pins.h"
#include "loader.h"
#include "unique_fd.h"

namespace xdpctl {

bool bpf_stats_enabled()
{
    std::ifstream f("/proc/sys/kernel/bpf_stats_enabled");
    int v = 0;
    f >> v;
    return v != 0;
}

namespace {

// The kernel reports a map's memory in its fdinfo ("memlock:"), not in bpf_map_info.
__u64 fd_memlock(int fd)
{
    std::ifstream f("/proc/self/fdinfo/" + std::to_string(fd));
    for (std::string line; std::getline(f, line);)
        if (line.rfind("memlock:", 0) == 0)
            return std::stoull(line.substr(8));
    return 0;
}

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

void add_map(IfaceStatus& st, const std::string& pin)
{
    UniqueFd fd = open_pinned(pin);
    if (!fd)
        return;
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_map_get_info_by_fd(fd.get(), &info, &len) != 0)
        return;
    const char* type = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(info.type));
    st.maps.push_back({info.name, info.id, type ? type : "?", info.max_entries,
                       fd_memlock(fd.get())});
}

}  // namespace

std::vector<IfaceStatus> collect_status()
{
    std::vector<IfaceStatus> out;
    for (const auto& ref : pinned_ifaces()) {
        IfacePins pins(ref);
        IfaceStatus st;
        st.iface = ref;
        st.meta = pins.read_meta();
        std::string xdp_attach = st.meta ? xdp_mode_name(st.meta->xdp_mode) : "?";
        add_linked_prog(st, pins.link_xdp, "xdp", xdp_attach);
        add_linked_prog(st, pins.link_tc_in, "tc_ingress", "tcx");
        add_linked_prog(st, pins.link_tc_eg, "tc_egress", "tcx");
        add_pinned_prog(st, pins.prog_tc_in, "tc_ingress");
        add_pinned_prog(st, pins.prog_tc_eg, "tc_egress");
        add_map(st, pins.stats);
        add_map(st, pins.meta);
        out.push_back(std::move(st));
    }
    return out;
}

}  // namespace xdpctl
