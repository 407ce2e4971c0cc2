#include "attach/pin_target.h"

#include <cerrno>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "util/error.h"
#include "attach/xdp_attach.h"

namespace xdpctl {

namespace {

// Whether the interface's tcx hook holds the link with this id.
bool tcx_has_link(int ifindex, TcDirection dir, __u32 link_id)
{
    __u32 prog_ids[64] = {}, link_ids[64] = {};
    LIBBPF_OPTS(bpf_prog_query_opts, q, .prog_ids = prog_ids, .count = 64, .link_ids = link_ids);
    if (bpf_prog_query_opts(ifindex, dir == TcDirection::ingress ? BPF_TCX_INGRESS : BPF_TCX_EGRESS,
                            &q) != 0)
        return false;
    for (__u32 i = 0; i < q.count && i < 64; i++)
        if (link_ids[i] == link_id)
            return true;
    return false;
}

std::string here_text(int ifindex, const std::string& ifname)
{
    return ifindex ? fmt::format("{} here is ifindex {}", ifname, ifindex)
                   : fmt::format("there is no {} in this network namespace", ifname);
}

PinTarget check_link(const std::string& pin, int fd, TcDirection dir, int ifindex,
                     const std::string& ifname)
{
    bpf_link_info li{};
    __u32 len = sizeof(li);
    if (bpf_link_get_info_by_fd(fd, &li, &len) != 0)
        fail("cannot read the pinned link {}: {}", pin, errno_str(errno));
    const bool xdp = li.type == BPF_LINK_TYPE_XDP;
    const char* kind = xdp ? "XDP link" : "tcx link";
    const __u32 target = xdp ? li.xdp.ifindex : li.tcx.ifindex;
    if (target == 0)
        return {pin, PinState::detached,
                fmt::format("{} id {} is detached (the interface it was attached to, or its "
                            "network namespace, is gone)",
                            kind, li.id)};
    // ifindexes are per namespace: the same number may be another namespace's interface,
    // so the hook itself must hold this link (tcx) or its program (XDP).
    bool on_hook = false;
    if (target == __u32(ifindex))
        on_hook = xdp ? query_xdp(ifindex).prog_id == li.prog_id : tcx_has_link(ifindex, dir, li.id);
    if (on_hook)
        return {pin, PinState::here, ""};
    return {pin, PinState::elsewhere,
            fmt::format("{} id {} is attached to ifindex {} of another network namespace ({})",
                        kind, li.id, target, here_text(ifindex, ifname))};
}

PinTarget check_clsact(const std::string& pin, int fd, TcDirection dir, int ifindex,
                       const std::string& ifname)
{
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (bpf_prog_get_info_by_fd(fd, &info, &len) != 0)
        fail("cannot read the pinned program {}: {}", pin, errno_str(errno));
    if (ifindex && clsact_prog_id(ifindex, dir) == info.id)
        return {pin, PinState::here, ""};
    // A filter holds no record of its device that could be read back: not ours here.
    return {pin, PinState::detached,
            fmt::format("TC program id {} is not in {}'s clsact filters ({})", info.id, ifname,
                        here_text(ifindex, ifname))};
}

}  // namespace

std::optional<PinTarget> check_pin(const std::string& pin, PinKind kind, TcDirection dir,
                                   int ifindex, const std::string& ifname)
{
    UniqueFd fd = open_pinned(pin);
    if (!fd)
        return std::nullopt;
    if (kind == PinKind::clsact_prog)
        return check_clsact(pin, fd.get(), dir, ifindex, ifname);
    return check_link(pin, fd.get(), dir, ifindex, ifname);
}

std::vector<PinTarget> foreign_or_stale_pins(const IfacePins& pins, int ifindex,
                                             const std::string& ifname)
{
    const auto in = TcDirection::ingress, eg = TcDirection::egress;
    const std::tuple<const std::string*, PinKind, TcDirection> all[] = {
        {&pins.link_xdp, PinKind::xdp_link, in},      {&pins.link_tc_in, PinKind::tcx_link, in},
        {&pins.link_tc_eg, PinKind::tcx_link, eg},    {&pins.prog_tc_in, PinKind::clsact_prog, in},
        {&pins.prog_tc_eg, PinKind::clsact_prog, eg},
    };
    std::vector<PinTarget> out;
    for (const auto& [pin, kind, dir] : all)
        if (auto t = check_pin(*pin, kind, dir, ifindex, ifname); t && t->state != PinState::here)
            out.push_back(*t);
    return out;
}

std::string describe(const PinTarget& t)
{
    return t.pin + ": " + t.what;
}

}  // namespace xdpctl
