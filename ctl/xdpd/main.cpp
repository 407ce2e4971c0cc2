// xdpd: xdpctl's daemon (issue 14; docs/service.md). Serves Prometheus metrics, follows link
// changes; runs in the foreground (systemd's Type=notify, or a terminal). Exit codes as
// xdpctl's: 0, 1 runtime error, 2 usage error.
#include <cstdio>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "daemon.h"
#include "util/error.h"
#include "util/libbpf_log.h"
#include "service/daemon_config.h"
#include "service/fleet_config.h"
#include "service/listen_address.h"
#include "state/state_record.h"

using namespace xdpctl;

int main(int argc, char** argv)
{
    CLI::App app{"xdpd: xdpctl's daemon: Prometheus metrics on /metrics, link changes followed, "
                 "load-balancer backends health-checked"};
    xdpd::DaemonOptions o;
    o.config_path = service::kDefaultConfigPath;
    std::string listen;
    auto* listen_opt = app.add_option("--metrics-listen", listen,
                                      fmt::format("ADDR:PORT to serve /metrics on (default {}; "
                                                  "over the file's metrics-listen)",
                                                  service::kDefaultMetricsListen));
    auto* config_opt = app.add_option("--config", o.config_path,
                                      fmt::format("Configuration file (default {}, which may be missing)",
                                                  service::kDefaultConfigPath));
    o.state_dir = state::default_state_dir();
    app.add_option("--state-dir", o.state_dir,
                   "State directory restored before serving and kept by xdpd's own commits "
                   "(default: $XDPCTL_STATE_DIR, else /var/lib/xdpctl; '' for none)");
    // The fleet (issue 15, docs/fleet.md); xdpd.conf has the same keys.
    std::string etcd;
    auto* etcd_opt = app.add_option("--etcd", etcd, "URL[,URL...] of etcd members (http:// or https://) "
                                                    "for --fleet");
    app.add_option("--fleet", o.fleet.fleet, "Follow the policy of this fleet: /xdpctl/fleet/NAME/config in etcd");
    app.add_option("--host", o.fleet.host, "This host's id in the fleet's status keys (default: the hostname)");
    app.add_option("--etcd-cacert", o.fleet.cacert, "CA certificate file that etcd's certificate is checked against");
    app.add_option("--etcd-cert", o.fleet.cert, "Client certificate file for etcd");
    app.add_option("--etcd-key", o.fleet.key, "Client certificate's key file");
    bool foreground = true;
    app.add_flag("--foreground", foreground, "Stay in the foreground (the only mode; for unit files that say so)");
    bool version = false;
    app.add_flag("--version", version, "Print the version");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    if (version) {
        fmt::print("xdpd {}\n", XDPCTL_VERSION);
        return 0;
    }
    try {
        o.config_given = config_opt->count() > 0;
        if (etcd_opt->count())
            service::parse_etcd_urls(o.fleet, etcd);
        if (listen_opt->count()) {
            service::parse_listen_address(listen);  // a bad address is a usage error before anything starts
            o.metrics_listen = listen;
        }
        libbpf_log_start();
        return xdpd::run_daemon(o);
    } catch (const Error& e) {
        fmt::print(stderr, "xdpd: {}\n", e.what());
        return static_cast<int>(e.code());
    } catch (const std::exception& e) {
        fmt::print(stderr, "xdpd: {}\n", e.what());
        return static_cast<int>(ExitCode::runtime);
    }
}
