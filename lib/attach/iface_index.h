// Interface name -> index, in the current network namespace, with the user-facing error.
#pragma once

#include "attach/iface_ref.h"

namespace xdpctl {

// Must be called inside the interface's NetnsScope.
int resolve_ifindex(const IfaceRef& iface);
// Same, but returns 0 when the interface is gone (for unload of a vanished device).
int find_ifindex(const IfaceRef& iface);

}  // namespace xdpctl
