// Keeps the balancer's counters from going down between two reads by one process (xdpd's
// scrapes). A read adds the counts pending in the flow cache's slots to the counters it read
// before them (docs/load-balancing.md, "Counts pending in the cache"): a slot that the
// datapath copies again in between moves its pending hits into a counter already read, so
// that read is short by up to XDPCTL_LB_FCACHE_REFRESH - 1 packets a slot, and the next read
// is whole again. Prometheus takes any decrease of a counter for a reset, and rate() and
// increase() then count the whole value again: a spike. So a read shows each counter at
// least as high as the last read showed it, while its owner is the same:
//   - a VIP: its id and address, with a table generation that did not go down (a VIP made
//     again starts at 1);
//   - a backend: its slot and incarnation (xdpctl_lb_backend.gen, +1 whenever the slot is
//     given again);
//   - the global counts: the maps' life. A drop of more than the cache can hold pending
//     (`slack`) is the maps made anew and is shown as the reset it is.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "lb/lb_maps.h"

namespace xdpctl::lb {

class CounterFloor {
public:
    // `slack`: the most packets a read can be short of the global counts.
    explicit CounterFloor(uint64_t slack) : slack_(slack) {}

    // `now` (a read of every VIP's and backend's counters and the global counts, as
    // LbMaps::all_counters gives them) raised to the last read's values where the owner is
    // the same. Owners not in `vips`/`backends` are forgotten (deleted). Thread-safe.
    LbMaps::AllCounters hold(const std::vector<VipEntry>& vips, const std::vector<BackendEntry>& backends,
                             LbMaps::AllCounters now);

private:
    using VipKey = std::tuple<uint32_t, std::string>;  // id, address
    using BackendKey = std::pair<uint32_t, uint32_t>;  // slot, incarnation
    struct VipLast {
        uint64_t table_gen = 0;
        xdpctl_lb_ctr ctr{};
    };
    uint64_t slack_;
    std::mutex mu_;
    std::map<VipKey, VipLast> vips_;
    std::map<BackendKey, xdpctl_lb_ctr> backends_;
    bool have_stats_ = false;
    xdpctl_lb_stats stats_{};
};

// The slack for a CounterFloor over the pinned cache: every slot of every possible CPU one
// copy short.
uint64_t fcache_slack();

}  // namespace xdpctl::lb
