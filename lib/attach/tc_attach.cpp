#include "attach/tc_attach.h"

#include <cerrno>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "abi/xdpctl_abi.h"
#include "util/error.h"

namespace xdpctl {

namespace {
bpf_tc_attach_point point(TcDirection dir)
{
    return dir == TcDirection::ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS;
}
}  // namespace

UniqueFd attach_tcx_link(int prog_fd, int ifindex, TcDirection dir, int* errno_out)
{
    LIBBPF_OPTS(bpf_link_create_opts, opts);
    int fd = bpf_link_create(prog_fd, ifindex,
                             dir == TcDirection::ingress ? BPF_TCX_INGRESS : BPF_TCX_EGRESS, &opts);
    *errno_out = fd < 0 ? errno : 0;
    return UniqueFd{fd < 0 ? -1 : fd};
}

bool attach_clsact(int prog_fd, int ifindex, TcDirection dir, const std::string& ifname)
{
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point(dir));
    int err = bpf_tc_hook_create(&hook);
    bool created = err == 0;
    if (err && err != -EEXIST)
        fail("{}: cannot create the clsact qdisc: {}", ifname, errno_str(err));
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE,
                .handle = XDPCTL_TC_HANDLE, .priority = XDPCTL_TC_PRIORITY);
    if (err = bpf_tc_attach(&hook, &opts); err)
        fail("{}: cannot attach the TC program to clsact: {}", ifname, errno_str(err));
    return created;
}

unsigned clsact_prog_id(int ifindex, TcDirection dir)
{
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point(dir));
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = XDPCTL_TC_HANDLE, .priority = XDPCTL_TC_PRIORITY);
    if (bpf_tc_query(&hook, &opts) != 0)
        return 0;
    return opts.prog_id;
}

void detach_clsact(int ifindex, bool remove_qdisc)
{
    for (auto dir : {TcDirection::ingress, TcDirection::egress}) {
        LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point(dir));
        LIBBPF_OPTS(bpf_tc_opts, opts, .handle = XDPCTL_TC_HANDLE, .priority = XDPCTL_TC_PRIORITY);
        int err = bpf_tc_detach(&hook, &opts);
        // ENOENT/EINVAL: no such filter or no clsact qdisc — nothing of ours to remove
        if (err && err != -ENOENT && err != -EINVAL)
            fail("cannot remove xdpctl's clsact filter from ifindex {}: {}", ifindex,
                 errno_str(err));
    }
    if (remove_qdisc) {
        LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
                    .attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
        int err = bpf_tc_hook_destroy(&hook);
        if (err && err != -ENOENT && err != -EINVAL)
            fail("cannot remove the clsact qdisc of ifindex {}: {}", ifindex, errno_str(err));
    }
}

}  // namespace xdpctl
