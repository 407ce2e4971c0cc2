// Which datapath paths (abi/xdpctl_abi.h: enum xdpctl_path) a policy needs per direction: the
// one its shape is decided by (dir_hdr.decide) and the rate buckets if a rate-limit rule can
// be met there. From a compiled policy (what a commit is about to install) or from a
// generation's header (what is in force).
#pragma once

#include <array>
#include <cstdint>

#include "abi/xdpctl_abi.h"
#include "policy/compiled_policy.h"

namespace xdpctl::policy {

using DirPaths = std::array<uint32_t, XDPCTL_POL_DIRS>;

// The paths PolicyMaps::commit will make `c`'s directions take (it writes the shape into
// dir_hdr.decide: the small rules when there are, else the one field's decision when it
// takes one, else the tables), with the maps xdpctl pins (xdpctl_psmall, xdpctl_pdecide).
DirPaths compiled_paths(const CompiledPolicy& c);

// The paths a written direction needs: `small` is its xdpctl_psmall element (read only
// when the header says the small rules decide); `logs`: one of its rule records has a
// log_rate (the header does not say); `default_drop`: the generation's default drops.
uint32_t written_paths(const xdpctl_pol_dir_hdr& dh, const xdpctl_pol_small& small, bool logs, bool default_drop);

}  // namespace xdpctl::policy
