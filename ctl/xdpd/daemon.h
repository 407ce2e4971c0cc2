// xdpd's life on one io_context: the metrics endpoint, the link watch, signals (SIGTERM and
// SIGINT end it, leaving every program attached; SIGHUP reads the configuration again).
#pragma once

#include <optional>
#include <string>

#include "service/fleet_config.h"

namespace xdpctl::xdpd {

struct DaemonOptions {
    std::string config_path;
    bool config_given = false;                  // --config: the file must exist
    std::optional<std::string> metrics_listen;  // --metrics-listen: wins over the file
    std::string state_dir;                      // --state-dir: restored at start, commits recorded ("" none)
    service::FleetConfig fleet;                 // --etcd, --fleet, ...: win over the file's
};

// Runs until SIGTERM/SIGINT; returns the exit code. Start-up errors throw (main reports them).
int run_daemon(const DaemonOptions& options);

}  // namespace xdpctl::xdpd
