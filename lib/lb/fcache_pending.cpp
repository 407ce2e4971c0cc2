#include "lb/fcache_pending.h"

#include <cerrno>
#include <vector>

#include <bpf/bpf.h>

#include "stats/counters.h"
#include "util/error.h"

namespace xdpctl::lb {

void add_ctr(xdpctl_lb_ctr& c, const xdpctl_lb_ctr& more)
{
    c.packets += more.packets;
    c.bytes += more.bytes;
    c.new_flows += more.new_flows;
}

FcachePending read_fcache_pending(int fcache_fd)
{
    FcachePending p;
    if (fcache_fd < 0)
        return p;
    static_assert(sizeof(xdpctl_lb_fcache_slot) % 8 == 0, "per-CPU values are 8-byte aligned");
    const size_t cpus = size_t(possible_cpus());
    std::vector<uint32_t> keys(XDPCTL_LB_FCACHE_SLOTS);
    std::vector<xdpctl_lb_fcache_slot> slots(XDPCTL_LB_FCACHE_SLOTS * cpus);
    __u32 count = XDPCTL_LB_FCACHE_SLOTS, out_batch = 0;
    if (bpf_map_lookup_batch(fcache_fd, nullptr, &out_batch, keys.data(), slots.data(), &count, nullptr) != 0 &&
        errno != ENOENT)
        fail("cannot read the load balancer's flow cache: {}", errno_str(errno));
    constexpr uint32_t kHits = (1u << XDPCTL_LB_FCACHE_PEND_SHIFT) - 1;
    for (size_t i = 0; i < size_t(count) * cpus; i++) {
        const xdpctl_lb_fcache_slot& s = slots[i];
        const uint64_t n = s.hits & kHits;
        if (!n || !(s.copy.flags & XDPCTL_LB_FLOW_F_PEND_COPY))
            continue;
        const xdpctl_lb_ctr c{n, s.hits >> XDPCTL_LB_FCACHE_PEND_SHIFT, 0};
        add_ctr(p.vip[s.copy.vip_id], c);
        add_ctr(p.backend[s.copy.backend], c);
        p.packets += n;
    }
    return p;
}

}  // namespace xdpctl::lb
