// The pinned objects of one interface, in its directory (pin_layout.h):
//   stats, meta        per-interface maps (kept across reloads)
//   link_xdp           XDP bpf_link
//   link_tc_in/_eg     tcx bpf_links
//   prog_tc_in/_eg     the programs, when TC uses the clsact fallback (no link to pin)
//   next               the XDP program's program array, with `load --next` only (xdp_next.h)
#pragma once

#include <optional>
#include <string>

#include "abi/xdpctl_abi.h"
#include "util/unique_fd.h"

struct bpf_map;

namespace xdpctl {

struct IfacePins {
    explicit IfacePins(const std::string& dir);

    std::string dir;
    std::string stats;
    std::string meta;
    std::string link_xdp;
    std::string link_tc_in;
    std::string link_tc_eg;
    std::string prog_tc_in;
    std::string prog_tc_eg;
    std::string next;

    // Whether anything that attaches a program is pinned: xdpctl counts as loaded.
    bool attached() const;
    std::optional<xdpctl_iface_meta> read_meta() const;
};

bool path_exists(const std::string& path);
// bpf_obj_get, or an empty fd when the pin is missing.
UniqueFd open_pinned(const std::string& path);
// The map pinned as dir/name; throws, naming `what` ("policy", "load-balancer"), when the
// pin is missing.
UniqueFd open_pinned_map(const std::string& dir, const char* name, const char* what);
// A new fd for a loaded object's map, so that it outlives the object; throws if the map is
// not loaded.
UniqueFd dup_map_fd(const bpf_map* map);
// Pins fd at path; throws on failure.
void pin_fd(int fd, const std::string& path);
// Removes a pin; a missing one is fine.
void unpin(const std::string& path);
// mkdir -p inside bpffs.
void make_pin_dir(const std::string& dir);
// Removes a pin directory and everything below it.
void remove_pin_tree(const std::string& dir);

}  // namespace xdpctl
