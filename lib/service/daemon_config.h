// xdpd's configuration file (default /etc/xdpctl/xdpd.conf; docs/service.md): one
// "key = value" per line, '#' to the end of a line is a comment, blank lines are ignored.
//   metrics-listen = ADDR:PORT   where /metrics is served (default 127.0.0.1:9469)
//   http-timeout = SECONDS       how long a client may take to send a request or read the
//                                answer, 1-300 (default 10)
//   etcd, fleet, host, etcd-cacert, etcd-cert, etcd-key   the fleet's (fleet_config.h)
//   keep-events = N              the last N decision events served at /events, 0-100000
//                                (default 0: /events off, the ring left to `xdpctl trace`)
// Read at start and again on SIGHUP; a command-line option wins over the file.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "service/fleet_config.h"

namespace xdpctl::service {

inline constexpr const char* kDefaultConfigPath = "/etc/xdpctl/xdpd.conf";
inline constexpr const char* kDefaultMetricsListen = "127.0.0.1:9469";

struct DaemonConfig {
    std::string metrics_listen = kDefaultMetricsListen;
    std::chrono::seconds http_timeout{10};
    FleetConfig fleet;
    size_t keep_events = 0;
    bool operator==(const DaemonConfig&) const = default;
};

// Parses the file's text; a usage error naming "PATH:LINE" and the key or value otherwise.
DaemonConfig parse_daemon_config(const std::string& text, const std::string& path);
// Reads and parses the file. A missing file is the defaults when `must_exist` is false (the
// default path), an error when true (a --config given).
DaemonConfig read_daemon_config(const std::string& path, bool must_exist);

}  // namespace xdpctl::service
