// The whole load-balancer configuration as the `lb` lines of an `export`/`apply` file hold
// it: VIPs with their options and backends. Read from the live maps, printed, compared, and
// made live (apply_lb_config). The policy model (policy/rule.h) knows nothing of it: the
// file parser hands `lb` lines to ctl/cmd_lb.cpp, which fills an LbConfig.
#pragma once

#include <string>
#include <vector>

#include "lb/lb_maps.h"

namespace xdpctl::lb {

struct VipConfig {
    VipSpec spec;
    VipOptions opts;
    std::optional<CheckSpec> check;     // the default of its backends (lb_health_maps.h)
    std::vector<BackendSpec> backends;  // in file order; apply keeps the maps' slot order
};

struct LbConfig {
    std::vector<VipConfig> vips;

    // What a file line adds; each checks what it can alone (duplicates, an unknown VIP,
    // table size, weights, address families) and throws a usage error naming the token.
    void add_vip(const VipSpec& v, const VipOptions& o, const std::optional<CheckSpec>& check = {});
    void add_backend(const VipSpec& v, const BackendSpec& b);
    bool has_vip(const VipSpec& v) const;
};

// The live configuration (VIPs and backends sorted by address).
LbConfig read_lb_config(const LbMaps& m);

// `lb vip ...` and `lb backend ...` lines, VIPs and backends sorted by address so the same
// configuration always prints the same text; "" when there is no VIP.
std::string format_lb_config(const LbConfig& c);

// What apply_lb_config would change, a line each ("+ lb vip ...", "- lb backend ...", "~ ...").
std::vector<std::string> lb_diff(const LbConfig& from, const LbConfig& to);

// Makes the maps hold `to`: VIPs not in it are deleted, new ones added, a VIP whose options
// changed is deleted and added again (its counters restart), and each remaining VIP gets its
// backend set in one table swap (LbMaps::set_backends); then the health checks that differ
// are written (a backend a check holds down stays down). Returns the number of changes.
// Every step is atomic on its own; the whole is not one step (docs/load-balancing.md).
size_t apply_lb_config(LbMaps& m, const LbConfig& to);

// A check as given for a VIP (`backend` false) or one of its backends: a usage error when it
// cannot run there (a VIP of every port needs --check-port; "none" is for a backend).
void check_fits_vip(const VipSpec& v, const std::optional<CheckSpec>& c, bool backend);

}  // namespace xdpctl::lb
