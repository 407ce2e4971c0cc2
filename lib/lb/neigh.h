// The MAC address the kernel's neighbour table holds for an IP address (as `ip neigh`
// shows it), so `lb backend add` need not be told the backend's MAC.
#pragma once

#include <optional>

#include "lb/lb_model.h"

namespace xdpctl::lb {

// A reachable, stale, delay, probe or permanent entry for `a` on any interface of the
// current network namespace; nullopt when there is none (or only an incomplete/failed one).
std::optional<MacAddr> neighbour_mac(const IpAddr& a);

}  // namespace xdpctl::lb
