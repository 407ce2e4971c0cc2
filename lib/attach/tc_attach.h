// The TC hooks: tcx links where the kernel has them (6.6+), clsact direct-action filters
// as the fallback. xdpctl's clsact filters use their own handle and priority
// (XDPCTL_TC_HANDLE, XDPCTL_TC_PRIORITY) so they are found again without state.
#pragma once

#include <string>

#include "util/unique_fd.h"

namespace xdpctl {

enum class TcModeRequest { automatic, tcx, clsact };
enum class TcDirection { ingress, egress };

// A tcx link (detaches when the fd closes unless pinned), or an empty fd when the
// kernel has no tcx and `errno_out` says why.
UniqueFd attach_tcx_link(int prog_fd, int ifindex, TcDirection dir, int* errno_out);

// Adds (or atomically replaces) xdpctl's clsact filter. Returns whether this call
// created the clsact qdisc.
bool attach_clsact(int prog_fd, int ifindex, TcDirection dir, const std::string& ifname);
// Removes xdpctl's clsact filter if present; removes the qdisc when `remove_qdisc`.
void detach_clsact(int ifindex, bool remove_qdisc);
// Program id of xdpctl's clsact filter, 0 when absent.
unsigned clsact_prog_id(int ifindex, TcDirection dir);

}  // namespace xdpctl
