// The per-rule decision-event counts the datapath keeps (maps/xdpctl_rlog, abi/xdpctl_abi.h:
// "decision events"): per counter slot, events sent and not sent (over the rule's --log-rate),
// and the events lost to a full ring. Summed over the CPUs.
#pragma once

#include <cstdint>
#include <vector>

#include "abi/xdpctl_abi.h"

namespace xdpctl::trace {

struct LogCounts {
    uint64_t sent = 0, not_sent = 0;
};

struct LogStates {
    std::vector<LogCounts> by_slot;  // XDPCTL_POL_COUNTER_SLOTS entries; all 0 before any load
    uint64_t ring_full = 0;          // events the rate let through that found the ring full
};

// Empty counts when the map is not pinned (no program of this version loaded yet).
LogStates read_log_states();

// A counter slot handed to a new rule starts with a full bucket and no counts.
void reset_log_state(uint32_t slot);

}  // namespace xdpctl::trace
