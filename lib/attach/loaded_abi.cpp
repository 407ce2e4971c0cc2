#include "attach/loaded_abi.h"

#include <algorithm>

#include "abi/xdpctl_abi.h"
#include "attach/iface_pins.h"
#include "attach/pin_layout.h"

namespace xdpctl {

uint32_t oldest_loaded_abi()
{
    uint32_t oldest = XDPCTL_ABI_VERSION;
    for (const PinnedIface& i : pinned_ifaces()) {
        const IfacePins pins(i.dir);
        if (!pins.attached())
            continue;
        const auto meta = pins.read_meta();
        oldest = std::min(oldest, meta ? meta->abi_version : 1u);
    }
    return oldest;
}

}  // namespace xdpctl
