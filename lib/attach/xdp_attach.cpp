#include "attach/xdp_attach.h"

#include <cerrno>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "util/error.h"
#include "util/libbpf_log.h"

namespace xdpctl {

std::string prog_name_by_id(__u32 id)
{
    UniqueFd fd{bpf_prog_get_fd_by_id(id)};
    if (!fd)
        return "";
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (bpf_prog_get_info_by_fd(fd.get(), &info, &len) != 0)
        return "";
    return info.name;
}

XdpAttached query_xdp(int ifindex)
{
    LIBBPF_OPTS(bpf_xdp_query_opts, q);
    if (int err = bpf_xdp_query(ifindex, 0, &q); err)
        fail("cannot query the XDP hook of ifindex {}: {}", ifindex, errno_str(err));
    XdpAttached a;
    if (q.drv_prog_id) {
        a.prog_id = q.drv_prog_id;
        a.mode = XDPCTL_XDP_MODE_NATIVE;
    } else if (q.skb_prog_id) {
        a.prog_id = q.skb_prog_id;
        a.mode = XDPCTL_XDP_MODE_SKB;
    } else if (q.prog_id) {
        a.prog_id = q.prog_id;  // offloaded: reported, never replaced
    }
    if (a.prog_id)
        a.prog_name = prog_name_by_id(a.prog_id);
    return a;
}

namespace {
int link_create(int prog_fd, int ifindex, __u32 flags)
{
    LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = flags);
    return bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
}

// Why native mode was refused, in the kernel's words. A bpf_link attach returns only an
// errno (the driver's message goes to a tracepoint); the same attach through netlink returns
// the message (extack), which libbpf logs. Run only after the link attach failed, so it fails
// the same way; if it attached after all, it is detached again at once.
std::string native_refusal(int prog_fd, int ifindex, int link_err)
{
    libbpf_log_start();
    int err = bpf_xdp_attach(ifindex, prog_fd, XDP_FLAGS_DRV_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, nullptr);
    if (err == 0) {
        LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = prog_fd);
        bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE | XDP_FLAGS_REPLACE, &o);
        return errno_str(link_err);
    }
    std::string msg = libbpf_kernel_message();
    return msg.empty() ? errno_str(link_err) : fmt::format("\"{}\" ({})", msg, errno_str(link_err));
}
}  // namespace

UniqueFd attach_xdp_link(int prog_fd, int ifindex, XdpModeRequest want, xdpctl_xdp_mode* got,
                         const std::string& ifname, std::string* native_refused)
{
    if (want != XdpModeRequest::skb) {
        int fd = link_create(prog_fd, ifindex, XDP_FLAGS_DRV_MODE);
        if (fd >= 0) {
            *got = XDPCTL_XDP_MODE_NATIVE;
            return UniqueFd{fd};
        }
        int err = errno;
        if (err == EBUSY || err == EEXIST)
            fail("{}: the XDP hook is busy (another program was attached meanwhile): {}", ifname,
                 errno_str(err));
        std::string why = native_refusal(prog_fd, ifindex, err);
        if (want == XdpModeRequest::native)
            fail("{}: the kernel refused native XDP mode: {}; --mode skb or --mode auto attach in "
                 "skb (generic) mode", ifname, why);
        if (native_refused)
            *native_refused = why;
    }
    int fd = link_create(prog_fd, ifindex, XDP_FLAGS_SKB_MODE);
    if (fd < 0)
        fail("{}: cannot attach the XDP program: {}", ifname, errno_str(errno));
    *got = XDPCTL_XDP_MODE_SKB;
    return UniqueFd{fd};
}

void detach_foreign_xdp(int ifindex, const XdpAttached& what, const std::string& ifname)
{
    __u32 flags = what.mode == XDPCTL_XDP_MODE_NATIVE ? XDP_FLAGS_DRV_MODE
                  : what.mode == XDPCTL_XDP_MODE_SKB  ? XDP_FLAGS_SKB_MODE
                                                      : 0;
    if (!flags)
        fail("{}: the XDP program id {} is offloaded to hardware; xdpctl does not replace it",
             ifname, what.prog_id);
    int err = bpf_xdp_detach(ifindex, flags, nullptr);
    if (err == -EBUSY)
        fail("{}: XDP program id {} ('{}') is held by another tool's bpf_link and cannot be "
             "replaced, even with --force; detach it with the tool that attached it",
             ifname, what.prog_id, what.prog_name);
    if (err)
        fail("{}: cannot detach XDP program id {}: {}", ifname, what.prog_id, errno_str(err));
}

}  // namespace xdpctl
