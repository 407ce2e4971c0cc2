// libbpf's messages: kept quiet by default and captured, so that a failed load can show
// the verifier's reason instead of pages of libbpf chatter. XDPCTL_DEBUG=1 prints them all.
#pragma once

#include <string>

namespace xdpctl {

// Installs the print callback (idempotent) and clears what was captured.
void libbpf_log_start();
// The verifier's last lines for a failed program load ("" when there were none).
std::string libbpf_verifier_reason(size_t max_lines = 12);
// The kernel's own message (netlink extack) for the last netlink request libbpf made that
// failed ("" when there was none).
std::string libbpf_kernel_message();

}  // namespace xdpctl
