// The counts a flow cache hit leaves pending in its slot instead of the counters (abi:
// XDPCTL_LB_FCACHE_PEND_SHIFT; docs/load-balancing.md, "Counts pending in the cache"): what
// userspace adds to the VIP, backend and global counters it reads, and the VIP ids and
// backend slots it must not give to another while counts for them are pending.
#pragma once

#include <cstdint>
#include <map>

#include "abi/xdpctl_abi.h"

namespace xdpctl::lb {

struct FcachePending {
    std::map<uint32_t, xdpctl_lb_ctr> vip;      // by VIP id (new_flows 0: a hit is no new flow)
    std::map<uint32_t, xdpctl_lb_ctr> backend;  // by backend slot
    uint64_t packets = 0;                       // every slot's: ct_hit and tx
};

// Every CPU's slots of the pinned flow cache `fcache_fd` (-1: none, nothing pending).
FcachePending read_fcache_pending(int fcache_fd);

// `c` with `more` added.
void add_ctr(xdpctl_lb_ctr& c, const xdpctl_lb_ctr& more);

}  // namespace xdpctl::lb
