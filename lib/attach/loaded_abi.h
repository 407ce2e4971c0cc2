// What the loaded programs understand: the oldest xdpctl_iface_meta.abi_version among the
// interfaces xdpctl is loaded on, in every namespace. Layout changes that old programs
// would misread (a sparse prefix chunk) are used only once every program is new enough;
// `load --force` of the last old interface lifts that.
#pragma once

#include <cstdint>

namespace xdpctl {

// XDPCTL_ABI_VERSION when nothing older is loaded (or nothing at all); 1 for a program of
// xdpctl 0.1.0, whose meta records no version.
uint32_t oldest_loaded_abi();

}  // namespace xdpctl
