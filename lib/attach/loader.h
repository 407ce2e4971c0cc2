// Loading xdpctl onto an interface and unloading it again.
//
// A load pins everything under the interface's pin directory (IfacePins) and exits: the
// pinned links keep the programs attached. Steps are ordered so a kill at any point leaves
// either nothing attached (links close with the process) or state the next load/unload
// recognises and finishes: links are pinned last, the meta record after them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "abi/xdpctl_abi.h"
#include "attach/iface_ref.h"
#include "attach/pin_layout.h"
#include "attach/skeleton.h"
#include "attach/tc_attach.h"
#include "attach/xdp_attach.h"

struct xdpctl_xdp;
struct bpf_program;
struct xdpctl_tc;

namespace xdpctl {

namespace upgrade {
class MapUpgrade;
}

enum class HookSelection { xdp, tc, both };

struct LoadOptions {
    IfaceRef iface;
    HookSelection hooks = HookSelection::xdp;
    XdpModeRequest xdp_mode = XdpModeRequest::automatic;
    TcModeRequest tc_mode = TcModeRequest::automatic;
    xdpctl_malformed_action malformed = XDPCTL_MALFORMED_PASS;
    // Replace someone else's XDP program, or reload xdpctl's own (upgrade; counters kept).
    bool force = false;
    // Entries of the load balancer's connection table when this load creates it (0: default).
    uint32_t lb_conntrack = 0;
    // --next: the pinned XDP program that runs on what xdpctl passes, or "none"; unset: the
    // last load's stays. On a loaded interface without --force, only this changes.
    std::optional<std::string> next;
};

struct LoadResult {
    xdpctl_iface_meta meta{};
    bool reloaded = false;            // xdpctl was already there and was replaced
    std::vector<std::string> notes;   // what happened, for the user
};

LoadResult load(const LoadOptions& opts);

// The program of xdpctl_xdp that `load` attaches to an interface of the common kind (one
// buffer, no --next) for a datapath of cfg_paths `paths` (datapath_paths.h): with no path the
// parse-and-count one, the balancer alone its own, the one-field path alone its own, else
// xdpctl_xdp. For tests and benchmarks that load the object themselves.
bpf_program* xdp_program_for_paths(const xdpctl_xdp& s, uint32_t paths);

// Removes exactly what xdpctl created on the interface (the pins of its namespace, or the
// previous release's; stale ones too). Fails when nothing is loaded, or when the pins are
// attached to another namespace's interface.
void unload(const IfaceRef& iface);
// Unloads every interface (stale, legacy and other namespaces' pins included) and removes
// /sys/fs/bpf/xdpctl. Returns what was unloaded.
std::vector<PinnedIface> unload_all();

// Creates the maps shared by all interfaces (the filtering policy) under
// /sys/fs/bpf/xdpctl/maps/ if they are not pinned yet: policy commands work before any load.
void ensure_shared_maps();

// For `xdpctl explain`: the program loaded once more, unattached, with cfg_explain set. It
// reads the pinned policy maps (one not pinned stays private and empty: no policy) and has
// private per-interface maps; loading it creates and changes no pin. `iif_key`: the key of
// the interface the packet is explained on (xdpctl_iface_meta.iif_key), XDPCTL_IIF_KEY_NONE
// for one xdpctl is not loaded on, 0 to match --iif by the test run's ifindex.
SkelPtr<xdpctl_xdp> load_explain_xdp(xdpctl_malformed_action malformed, uint32_t iif_key);
SkelPtr<xdpctl_tc> load_explain_tc(xdpctl_malformed_action malformed, uint32_t iif_key);

// The programs attached on `iface` reloaded with these paths (datapath_paths.h; none: that
// object is left as it is), everything else as the load set it, and swapped in atomically:
// bpf_link_update, or the clsact filter replaced in place. The maps are the pinned ones, so
// counters and connections are kept. `upgrade`: a load's migration of maps of another layout
// (upgrade/map_upgrade.h), which this interface's maps join.
void reload_iface_programs(const PinnedIface& iface, std::optional<uint32_t> xdp_paths,
                           std::optional<uint32_t> tc_paths, upgrade::MapUpgrade* upgrade = nullptr);

std::string xdp_mode_name(__u32 mode);    // "native", "skb", "none"
std::string tc_attach_name(__u32 how);    // "tcx", "clsact", "none"
std::string malformed_name(__u32 action); // "pass", "drop"

}  // namespace xdpctl
