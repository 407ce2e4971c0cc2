// What xdpctl has loaded, read back from pins and the kernel: for `xdpctl status`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <linux/types.h>

#include "abi/xdpctl_abi.h"
#include "attach/iface_ref.h"

namespace xdpctl {

struct ProgStatus {
    std::string hook;          // "xdp", "tc_ingress", "tc_egress"
    std::string attach;        // "native", "skb", "tcx", "clsact"
    __u32 id = 0;
    std::string name;
    __u32 verified_insns = 0;  // what the verifier walked: the program's verified size
    __u32 xlated_bytes = 0;
    __u32 jited_bytes = 0;     // 0 when the JIT is off
    // The datapath paths it contains (abi: enum xdpctl_path), which its size follows: what
    // the policy in force needs (datapath_paths.h). None: an older xdpctl's, with every path.
    std::optional<__u32> paths;
    __u64 run_cnt = 0;         // non-zero only with kernel.bpf_stats_enabled=1
    __u64 run_time_ns = 0;
    bool linked = true;        // false: the link is defunct (device gone)
};

struct MapStatus {
    std::string name;
    __u32 id = 0;
    std::string type;
    __u32 max_entries = 0;
    __u64 memlock_bytes = 0;   // the kernel's own account of the map's memory
};

struct IfaceStatus {
    IfaceRef iface;
    std::string display;       // PinnedIface::display()
    std::string pin_dir;
    std::string netns_id;      // "DEV-INO"; "" for the previous release's name-keyed pins
    // Why the pins are stale (their namespace is gone, or "PIN: what it is attached to"
    // for links detached or attached to another namespace's interface); empty: not stale.
    std::vector<std::string> stale;
    std::optional<xdpctl_iface_meta> meta;  // missing: an interrupted load left pins
    std::vector<ProgStatus> progs;
    std::vector<MapStatus> maps;
    // `load --next`: the program in the XDP program's slot (id 0: the slot is empty); none
    // without --next.
    struct Next {
        __u32 id = 0;
        std::string name;
    };
    std::optional<Next> next;
};

// The load balancer at a glance (`lb list` has the detail).
struct LbStatus {
    size_t vips = 0, backends = 0;
    __u32 conntrack_entries = 0;       // the connection table's size (set by the first load)
    __u64 conntrack_hits = 0, conntrack_misses = 0;  // summed over CPUs
};

std::vector<IfaceStatus> collect_status();

// The load balancer's decapsulators (`lb decap attach`), stale ones included.
struct DecapStatus {
    IfaceRef iface;
    std::string display;   // PinnedIface::display()
    std::string pin_dir;
    std::vector<std::string> stale;  // as IfaceStatus::stale; empty: attached here
};
std::vector<DecapStatus> collect_decap_status();
// None when the LB's maps are not pinned (nothing made them yet).
std::optional<LbStatus> collect_lb_status();
// The maps shared by all interfaces (the filtering policy), with the inner maps of the
// map-in-map ones (named OUTER[slot]): their memory is the policy's.
std::vector<MapStatus> collect_shared_maps();
bool bpf_stats_enabled();

}  // namespace xdpctl
