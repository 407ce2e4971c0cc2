#include "lb/lb_store.h"

#include "util/error.h"
#include "attach/iface_pins.h"
#include "attach/iface_ref.h"
#include "attach/loader.h"
#include "state/state_record.h"
#include "util/system_checks.h"

namespace xdpctl::lb {

LbStore::LbStore(Access access)
{
    require_privileges();  // before the lock file: say what is missing, not "Permission denied"
    writer_ = access == Access::write;
    if (writer_)
        lock_.emplace();
    // Loading the XDP object creates every shared map not pinned yet (a verification, ~0.1 s).
    if (!lb_maps_pinned(shared_maps_dir())) {
        if (!lock_)
            lock_.emplace();  // creating them is a write: two would pin the same names
        ensure_shared_maps();
    } else {
        require_bpffs();
    }
    maps_ = std::make_unique<LbMaps>(lb_map_fds_pinned(shared_maps_dir()));
}

LbStore::~LbStore()
{
    if (writer_)
        state::lb_changed(*maps_);
}

const char* lb_counter_name(int idx)
{
    switch (idx) {
    case XDPCTL_LB_CNT_CT_HIT:
        return "conntrack_hits";
    case XDPCTL_LB_CNT_CT_MISS:
        return "conntrack_misses";
    case XDPCTL_LB_CNT_NO_BACKEND:
        return "no_backend";
    case XDPCTL_LB_CNT_TOO_BIG:
        return "too_big";
    case XDPCTL_LB_CNT_FRAGMENT:
        return "fragments";
    case XDPCTL_LB_CNT_ICMP:
        return "icmp";
    case XDPCTL_LB_CNT_OTHER_PROTO:
        return "other_protocol";
    case XDPCTL_LB_CNT_VLAN:
        return "vlan_tagged";
    case XDPCTL_LB_CNT_ERROR:
        return "errors";
    case XDPCTL_LB_CNT_TX:
        return "forwarded";
    default:
        return "?";
    }
}

}  // namespace xdpctl::lb
