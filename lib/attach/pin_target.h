// What a pinned attachment (XDP link, tcx link, clsact program) is attached to, checked
// against an interface of the current network namespace before xdpctl reuses, updates or
// detaches it. A pin may be another namespace's (a bpffs shared between namespaces, or the
// previous release's name-keyed pins) or stale (its interface or namespace is gone).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "attach/iface_pins.h"
#include "attach/tc_attach.h"

namespace xdpctl {

enum class PinKind { xdp_link, tcx_link, clsact_prog };
enum class PinState {
    here,       // attached to the interface in this namespace
    detached,   // attached to nothing any more: its interface (or namespace) is gone
    elsewhere,  // attached to an interface of another namespace (or another interface)
};

struct PinTarget {
    std::string pin;
    PinState state = PinState::here;
    std::string what;  // e.g. "XDP link id 7 is detached (its interface is gone)"
};

// The pin at `pin` against `ifname` (ifindex in the current namespace; 0: no such
// interface here). None when nothing is pinned there.
std::optional<PinTarget> check_pin(const std::string& pin, PinKind kind, TcDirection dir,
                                   int ifindex, const std::string& ifname);

// The link and program pins of one interface that are not attached to it here.
std::vector<PinTarget> foreign_or_stale_pins(const IfacePins& pins, int ifindex,
                                             const std::string& ifname);

// "PIN: WHAT" for messages.
std::string describe(const PinTarget& t);

}  // namespace xdpctl
