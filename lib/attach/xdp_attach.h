// The XDP hook: who is attached, attaching xdpctl's program through a bpf_link.
#pragma once

#include <string>

#include <linux/types.h>

#include "abi/xdpctl_abi.h"
#include "util/unique_fd.h"

namespace xdpctl {

enum class XdpModeRequest { automatic, native, skb };

struct XdpAttached {
    __u32 prog_id = 0;       // 0: nothing attached
    xdpctl_xdp_mode mode = XDPCTL_XDP_MODE_NONE;
    std::string prog_name;
};

// What the interface (ifindex in the current network namespace) has on its XDP hook.
XdpAttached query_xdp(int ifindex);

// Attaches prog_fd through a bpf_link; `automatic` takes native where the driver has it and
// falls back to generic (skb), then setting `native_refused` to the kernel's reason for
// refusing native mode (its extack message and errno). The link detaches when the returned fd
// closes, unless pinned.
UniqueFd attach_xdp_link(int prog_fd, int ifindex, XdpModeRequest want, xdpctl_xdp_mode* got,
                         const std::string& ifname, std::string* native_refused = nullptr);

// Removes a program attached the old way (netlink, not a link). Fails with a clear
// message when the program is held by someone else's bpf_link.
void detach_foreign_xdp(int ifindex, const XdpAttached& what, const std::string& ifname);

std::string prog_name_by_id(__u32 id);

}  // namespace xdpctl
