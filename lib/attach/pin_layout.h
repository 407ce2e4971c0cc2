// Where xdpctl keeps per-namespace pins in bpffs, keyed by the network namespace's identity
// (NetnsId), never by the name it was reached by: namespaces that share one bpffs
// (containers that mount the host's /sys/fs/bpf) each have their own directory.
//
//   /sys/fs/bpf/xdpctl/ns/DEV-INO/if/IFNAME/     an interface's pins (IfacePins)
//   /sys/fs/bpf/xdpctl/ns/DEV-INO/decap/IFNAME/  the decapsulator's link and address map
//   /sys/fs/bpf/xdpctl/ns/DEV-INO/name/NAME/     empty: the namespace's /run/netns name when
//                                                last loaded, for display once it is gone
//
// The previous release keyed them by name (xdpctl/if/IFNAME, xdpctl/netns/NS/if/IFNAME,
// xdpctl/decap/NS-or---/IFNAME): those "legacy" directories are still found, and a load
// moves them to the new place once their links are checked to be this namespace's.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "attach/iface_ref.h"
#include "attach/netns.h"

namespace xdpctl {

std::string netns_pin_dir(const NetnsId& id);
std::string iface_pin_dir(const NetnsId& id, const std::string& ifname);
std::string decap_pin_dir(const NetnsId& id, const std::string& ifname);
// The previous release's directories for `ref` (as named on the command line).
std::string legacy_iface_pin_dir(const IfaceRef& ref);
std::string legacy_decap_pin_dir(const IfaceRef& ref);

// Remembers the namespace's name (replacing an older one): `netns_arg` (the -n name), or
// when "" the current namespace's /run/netns name, if any. Call it inside the namespace.
void record_netns_name(const NetnsId& id, const std::string& netns_arg);
std::string recorded_netns_name(const NetnsId& id);

// Where the pins of an interface named on the command line are: under its namespace's
// directory, else the previous release's, else (its namespace is gone) one found by the
// name the namespace had. `dir` does not exist when nothing is pinned; `where` is none when
// the namespace is gone. `kind`: "if" or "decap".
struct PinSite {
    std::string dir;
    std::optional<NetnsLocation> where;
};
PinSite locate_pins(const IfaceRef& ref, const std::string& kind);

// Moves the previous release's pin directory `legacy` to `dir` when `ours(legacy)` says its
// pins are this namespace's; returns whether it moved.
bool adopt_legacy_pins(const std::string& legacy, const std::string& dir,
                       const std::function<bool(const std::string&)>& ours);

// Removes the empty directories above `dir`, up to and including the pin root.
void remove_empty_pin_parents(const std::string& dir);

// An interface that has an xdpctl pin directory (its own, or its decapsulator's).
struct PinnedIface {
    std::string ifname;
    std::string dir;
    std::optional<NetnsId> netns_id;     // none: a legacy directory
    std::string legacy_netns;            // legacy: the -n name it was made with
    std::optional<NetnsLocation> where;  // none: its namespace is gone
    std::string recorded_name;           // the namespace's name when last loaded

    // As the command line names it from here: netns "" for the current namespace, its
    // /run/netns name, else the name it had (a gone or unnamed namespace).
    IfaceRef ref() const;
    // "veth0", "veth0@lab", or "veth0@netns:INO" for an unnamed namespace.
    std::string display() const;
};

// Every interface with a pin directory (new and legacy places), sorted by display name.
std::vector<PinnedIface> pinned_ifaces();
// Every interface with a decapsulator's pin directory, the same way.
std::vector<PinnedIface> pinned_decaps();

}  // namespace xdpctl
