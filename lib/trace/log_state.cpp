#include "trace/log_state.h"

#include <bpf/bpf.h>

#include "attach/iface_pins.h"
#include "attach/iface_ref.h"
#include "stats/counters.h"
#include "util/error.h"

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
    std::vector<uint32_t> keys(XDPCTL_LOG_SLOTS);
    std::vector<xdpctl_log_state> raw(size_t(XDPCTL_LOG_SLOTS) * ncpu);
    uint32_t next = 0, done = 0;
    bool first = true;
    while (done < XDPCTL_LOG_SLOTS) {
        __u32 count = XDPCTL_LOG_SLOTS - done;
        int err = bpf_map_lookup_batch(fd.get(), first ? nullptr : &next, &next, keys.data() + done,
                                       raw.data() + size_t(done) * ncpu, &count, nullptr);
        first = false;
        done += count;
        if (err) {
            if (errno == ENOENT)
                break;
            fail("cannot read the decision-event counts: {}", errno_str(errno));
        }
    }
    for (uint32_t i = 0; i < done; i++)
        for (size_t cpu = 0; cpu < ncpu; cpu++) {
            const xdpctl_log_state& s = raw[size_t(i) * ncpu + cpu];
            if (keys[i] == XDPCTL_LOG_RING_FULL_SLOT)
                out.ring_full += s.not_sent;
            else if (keys[i] < XDPCTL_POL_COUNTER_SLOTS) {
                out.by_slot[keys[i]].sent += s.sent;
                out.by_slot[keys[i]].not_sent += s.not_sent;
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
