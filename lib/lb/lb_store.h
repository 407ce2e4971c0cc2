// The load balancer's state as the CLI sees it: the pinned LB maps under
// /sys/fs/bpf/xdpctl/maps/ (made on first use, as the policy maps are), behind the writer lock
// (writer_lock.h), so two commands never interleave their changes.
#pragma once

#include <memory>
#include <optional>

#include "lb/lb_maps.h"
#include "util/writer_lock.h"

namespace xdpctl::lb {

class LbStore {
public:
    // A writer holds the writer lock (writer_lock.h) for the store's life, nested in the
    // hold of a PolicyStore of the same command (`apply`); a reader does not wait for it
    // and may see a change half-way (a VIP whose backends are being added).
    explicit LbStore(Access access = Access::write);
    // A writer's changes go to the state directory (state/state_record.h) here: every
    // `lb` command and `apply` changes the LB through one store.
    ~LbStore();
    LbMaps& maps() { return *maps_; }

private:
    bool writer_ = false;
    std::optional<WriterLock> lock_;
    std::unique_ptr<LbMaps> maps_;
};

// Stable names of the global LB counters (JSON keys of `lb list --json`).
const char* lb_counter_name(int idx);

}  // namespace xdpctl::lb
