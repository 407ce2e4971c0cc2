// Where health checks and their results live: two maps that only userspace has (no program
// declares them, like maps/xdpctl_pcommit), pinned next to the load balancer's and made on
// first use, so `lb list`, `export` and the metrics read them without xdpd:
//
//   maps/xdpctl_lb_checks  HASH: a VIP's check (the default of its backends) or one
//                          backend's, keyed by the VIP and the backend's address; written
//                          by the `lb` commands and apply under the writer lock
//   maps/xdpctl_lb_health  ARRAY by backend slot: xdpd's results (consecutive passes and
//                          failures, totals, last error), tagged with the slot's
//                          incarnation so a reused slot shows none
//
// Whether a backend is out of rotation is not here but in its record (XDPCTL_LB_BE_F_DOWN,
// set by LbMaps::set_down): its configured weight stays in the record, the Maglev table
// gives it none while it is down.
#pragma once

#include <cstdint>

#include "abi/xdpctl_abi.h"

namespace xdpctl::lb {

inline constexpr const char* kChecksMapName = "xdpctl_lb_checks";
inline constexpr const char* kHealthMapName = "xdpctl_lb_health";

struct LbCheckKey {
    xdpctl_lb_vip_key vip;
    uint32_t addr[4];     // the backend's; zero for the VIP's default
    uint8_t family;       // the backend's; 0: the VIP's default
    uint8_t pad[3];
};

struct LbCheckRec {
    uint8_t type;         // CheckSpec::Type
    uint8_t pad0;
    uint16_t port;        // 0: the VIP's port
    uint16_t expect;      // http status
    uint16_t pad1;
    uint32_t interval_ms, timeout_ms, rise, fall;
    char path[128];       // http, NUL-terminated
};

struct LbHealthRec {
    uint32_t gen;         // xdpctl_lb_backend.gen of the backend these results are for
    uint32_t vip_id;
    uint32_t ok_run, fail_run;       // consecutive passes, failures
    uint64_t checks, failures;       // totals since xdpd began checking this backend
    uint64_t changes;                // up/down changes
    uint64_t last_change_unix_ns;    // CLOCK_REALTIME of the last change (0: none)
    char last_error[96];             // of the last failed check, NUL-terminated
};

static_assert(sizeof(LbCheckKey) == 40, "LbCheckKey layout");
static_assert(sizeof(LbCheckRec) == 152, "LbCheckRec layout");
static_assert(sizeof(LbHealthRec) == 144, "LbHealthRec layout");

}  // namespace xdpctl::lb
