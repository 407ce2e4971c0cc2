// The TC decapsulator (tc/xdpctl_decap.bpf.c) on a backend's interface: attached to tcx
// ingress, stripping the outer IPIP/IP6IP6 header of packets addressed to the given
// addresses of this host. Pinned under the namespace's ns/DEV-INO/decap/IFNAME (pin_layout.h:
// link and address map), so it stays after xdpctl exits; `unload --all` removes it with
// everything else. A pinned link is checked (pin_target.h) before it is reused.
#pragma once

#include <vector>

#include "attach/iface_ref.h"
#include "lb/lb_model.h"

namespace xdpctl::lb {

// Attaches (or, when attached, replaces the address list of) the decapsulator.
// Returns whether this call attached it.
bool decap_attach(const IfaceRef& iface, const std::vector<IpAddr>& addrs);
void decap_detach(const IfaceRef& iface);

}  // namespace xdpctl::lb
