// The load balancer's state as the CLI sees it: the pinned LB maps under
// /sys/fs/bpf/xdpctl/maps/ (made on first use, as the policy maps are), behind the lock all
// xdpctl configuration commands take, so two commands never interleave their changes.
#pragma once

#include <memory>

#include "lb/lb_maps.h"
#include "unique_fd.h"

namespace xdpctl::lb {

// For a command that already holds the lock (through policy::PolicyStore: `apply`,
// `export`): flock would wait for the lock this process holds.
struct LockHeld {};

class LbStore {
public:
    LbStore();
    explicit LbStore(LockHeld);
    LbMaps& maps() { return *maps_; }

private:
    void open_maps();
    UniqueFd lock_;
    std::unique_ptr<LbMaps> maps_;
};

// Stable names of the global LB counters (JSON keys of `lb list --json`).
const char* lb_counter_name(int idx);

}  // namespace xdpctl::lb
