// The policy and the load balancer as pinned maps of another layout hold them, read before an
// upgrade recreates those maps (map_upgrade.h), and applied to the new ones in one commit each.
//
// Where each part is read from, and why there:
//   the policy      xdpctl_psrc, the image the last commit stored (policy_binary.h has its own
//                   version, so any layout's is decoded), of the generation xdpctl_pctl names:
//                   what is in force now. The state directory (state_dir.h) holds the same
//                   policy, but may be absent (--state-dir "") or behind (a failed recording);
//                   it is the way back when the pinned one is damaged (the refusal says so).
//   counter slots   the active generation's rule records (xdpctl_prule): the new commit puts
//                   each rule in the slot it had, so the counters, carried by slot, stay its own.
//   the balancer    the VIP records (ids kept) and every backend slot (incarnation kept): the
//                   connection table's entries and the counters by VIP id and backend slot stay
//                   valid; the Maglev tables are built again from the backends.
// A record is read at this build's offsets, cut or zero-padded to the pinned value size: fields
// are only added at a record's end (or a pad given a meaning). A change that moves a field
// must add its reader here, for the layout version before it (layout_versions.h).
// Everything read is checked for consistency; a damaged state throws before anything changed.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "lb/lb_maps.h"
#include "policy/rule.h"

namespace xdpctl::upgrade {

struct PolicyState {
    bool installed = false;  // a policy was ever committed
    policy::Policy policy;
    std::unordered_map<uint32_t, uint32_t> slots;  // rule id -> counter slot
};

struct LbState {
    std::vector<lb::VipEntry> vips;
    std::vector<lb::BackendEntry> slots;  // every backend slot ever used (incarnation > 0)
};

// From the maps pinned under `dir`.
PolicyState read_policy_state(const std::string& dir);
LbState read_lb_state(const std::string& dir);

// Into the maps pinned under shared_maps_dir() now (the new ones): one commit each.
void apply_policy_state(const PolicyState& s);
void apply_lb_state(const LbState& s);

}  // namespace xdpctl::upgrade
