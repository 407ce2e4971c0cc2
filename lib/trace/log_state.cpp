#include "trace/log_state.h"

#include <bpf/bpf.h>

#include "attach/iface_pins.h"
#include "attach/iface_ref.h"
#include "stats/counters.h"
#include "util/error.h"
#include "util/percpu_batch.h"

namespace xdpctl::trace {

namespace {
UniqueFd open_rlog()
{
    return open_pinned(shared_maps_dir() + "/xdpctl_rlog");
}
}  // namespace

LogStates read_log_states()
{
    LogStates out;
    out.by_slot.resize(XDPCTL_POL_COUNTER_SLOTS);
    UniqueFd fd = open_rlog();
    if (!fd)
        return out;
    const size_t ncpu = size_t(possible_cpus());
    const auto rows = read_percpu_array<xdpctl_log_state>(fd.get(), XDPCTL_LOG_SLOTS, ncpu,
                                                          "the decision-event counts");
    for (uint32_t i = 0; i < rows.n; i++)
        for (size_t cpu = 0; cpu < ncpu; cpu++) {
            const xdpctl_log_state& s = rows.values[size_t(i) * ncpu + cpu];
            const uint32_t slot = rows.keys[i];
            if (slot == XDPCTL_LOG_RING_FULL_SLOT)
                out.ring_full += s.not_sent;
            else if (slot < XDPCTL_POL_COUNTER_SLOTS) {
                out.by_slot[slot].sent += s.sent;
                out.by_slot[slot].not_sent += s.not_sent;
            }
        }
    return out;
}

void reset_log_state(uint32_t slot)
{
    UniqueFd fd = open_rlog();
    if (!fd)
        return;
    std::vector<xdpctl_log_state> zero(static_cast<size_t>(possible_cpus()));
    if (bpf_map_update_elem(fd.get(), &slot, zero.data(), BPF_ANY) != 0)
        fail("cannot reset the decision-event counts of slot {}: {}", slot, errno_str(errno));
}

}  // namespace xdpctl::trace
