// Names and groups of the counter slots in abi/xdpctl_abi.h, and per-CPU summing.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "abi/xdpctl_abi.h"

namespace xdpctl {

using HookCounters = std::array<xdpctl_ctr, XDPCTL_CNT_MAX>;

// Stable names: they are the JSON keys of `stats --json` (docs/cli.md).
std::string_view counter_name(int idx);
// "l3", "l4", "verdict" or "malformed"
std::string_view counter_group(int idx);
std::string_view hook_name(int hook);  // "xdp", "tc_ingress", "tc_egress"

// Reads one hook's counters from the per-CPU stats map: summed, or one entry per CPU.
HookCounters read_hook_counters(int stats_map_fd, int hook);
std::vector<HookCounters> read_hook_counters_per_cpu(int stats_map_fd, int hook);

int possible_cpus();

}  // namespace xdpctl
