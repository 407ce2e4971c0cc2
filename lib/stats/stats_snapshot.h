// One reading of an interface's counters, for every hook xdpctl has loaded there.
#pragma once

#include <chrono>
#include <vector>

#include "stats/counters.h"
#include "attach/iface_ref.h"

namespace xdpctl {

struct HookSnapshot {
    int hook = 0;
    HookCounters total{};
    std::vector<HookCounters> per_cpu;  // filled only when asked for
};

struct IfaceSnapshot {
    IfaceRef iface;
    std::chrono::steady_clock::time_point taken;
    std::vector<HookSnapshot> hooks;
};

// From the interface's pins under `pin_dir` (pin_layout.h). Fails with a clear message when
// xdpctl is not loaded on the interface.
IfaceSnapshot take_snapshot(const IfaceRef& iface, const std::string& pin_dir, bool per_cpu);

}  // namespace xdpctl
