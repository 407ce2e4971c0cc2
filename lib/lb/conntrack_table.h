// Which connection table (xdpctl_lb_ct) a load of the XDP object gets: the pinned one, or a
// new one that replaces it and takes over its entries. Replacing happens when the size asked
// for (--lb-conntrack) differs while no other interface runs on the table, and when the
// pinned table has an older layout (xdpctl 0.1.0's per-CPU table): connections keep their
// backend across both.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attach/iface_ref.h"
#include "util/unique_fd.h"

struct bpf_object;

namespace xdpctl::lb {

class ConntrackPlan {
public:
    // Sizes `obj`'s xdpctl_lb_ct before the load. `requested`: entries asked for (0: keep the
    // pinned table's size, or the default for a new one). `others`: the interfaces other than
    // the one being loaded whose programs run on the pinned table. A resize they would not
    // see is refused (usage error); the pinned table is unpinned when it is to be replaced.
    ConntrackPlan(bpf_object* obj, uint32_t requested, const std::vector<IfaceRef>& others);
    ConntrackPlan(const ConntrackPlan&) = delete;
    ConntrackPlan& operator=(const ConntrackPlan&) = delete;
    // The load failed: the replaced table is pinned again, as it was.
    ~ConntrackPlan();

    // After the load: the replaced table's entries into the new one (`new_fd`), the flow
    // cache's copies voided (`fgen_fd`, the program's xdpctl_lb_fgen; -1: none), then what
    // happened, for the user (empty if nothing was replaced).
    std::vector<std::string> finish(int new_fd, int fgen_fd);

private:
    UniqueFd replaced_;
    bool old_layout_ = false;
    uint32_t old_entries_ = 0, new_entries_ = 0;
    std::vector<IfaceRef> others_;
    bool finished_ = false;
};

// Copies every valid entry of `from` (a connection table of either layout) into `to`,
// leaving entries `to` already has; returns how many were copied.
size_t carry_conntrack(int from_fd, int to_fd);

// Whether the pinned table is of the current layout (one table for all CPUs).
bool conntrack_layout_current(int fd);

// Voids every copy the datapath's flow cache holds of a connection-table entry (abi: struct
// xdpctl_lb_fcache_slot), by raising each of its generation words (`fgen_fd`: the
// xdpctl_lb_fgen map): after userspace wrote the table in a way the datapath must see.
void void_flow_cache(int fgen_fd);

}  // namespace xdpctl::lb
