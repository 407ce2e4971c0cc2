#include "attach/dispatcher_probe.h"

#include <cerrno>

#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "util/error.h"
#include "util/libbpf_log.h"
#include "attach/skeleton.h"
#include "xdpctl_dispatch_probe.skel.h"

namespace xdpctl {

DispatcherSupport probe_libxdp_dispatcher()
{
    libbpf_log_start();
    auto refused = [](const char* what, int err) {
        std::string log = libbpf_verifier_reason(4);
        return DispatcherSupport{false, fmt::format("the kernel refuses {}: {}{}", what, errno_str(err),
                                                    log.empty() ? "" : " (verifier:\n" + log + ")")};
    };
    SkelPtr<xdpctl_dispatch_probe> disp{xdpctl_dispatch_probe::open()};
    if (!disp)
        return {false, fmt::format("cannot open the probe: {}", errno_str(errno))};
    if (int err = xdpctl_dispatch_probe::load(disp.get()))
        return refused("an XDP program calling a global function (the dispatcher)", err);
    const int disp_fd = bpf_program__fd(disp->progs.probe_dispatcher);

    SkelPtr<xdpctl_dispatch_probe> ext{xdpctl_dispatch_probe::open()};
    if (!ext)
        return {false, fmt::format("cannot open the probe: {}", errno_str(errno))};
    bpf_program__set_autoload(ext->progs.probe_dispatcher, false);
    bpf_program__set_autoload(ext->progs.probe_replacement, true);
    if (int err = bpf_program__set_attach_target(ext->progs.probe_replacement, disp_fd, "probe_slot"))
        return refused("an freplace target", err);
    if (int err = xdpctl_dispatch_probe::load(ext.get()))
        return refused("freplace (BPF_PROG_TYPE_EXT) programs, which the dispatcher's slots are", err);
    bpf_link* link = bpf_program__attach_freplace(ext->progs.probe_replacement, disp_fd, "probe_slot");
    if (!link)
        return refused("to attach an freplace program to the dispatcher", errno);
    bpf_link__destroy(link);
    return {true, ""};
}

}  // namespace xdpctl
