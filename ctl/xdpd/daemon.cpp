#include "daemon.h"

#include <algorithm>
#include <csignal>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "util/error.h"
#include "fleet/fleet_apply.h"
#include "fleet/fleet_follower.h"
#include "fleet/fleet_keys.h"
#include "attach/iface_pins.h"
#include "attach/iface_ref.h"
#include "metrics/exposition.h"
#include "metrics/xdpctl_metrics.h"
#include "policy/policy_store.h"
#include "service/daemon_config.h"
#include "service/event_log.h"
#include "service/health_checker.h"
#include "service/link_watch.h"
#include "service/listen_address.h"
#include "service/log.h"
#include "service/metrics_server.h"
#include "service/systemd_notify.h"
#include "state/restore.h"
#include "state/state_record.h"
#include "util/writer_lock.h"

namespace xdpctl::xdpd {

using namespace xdpctl::service;
namespace asio = boost::asio;

namespace {

// One line per thing restore did or could not do; true when a recorded interface (or a
// decapsulator's) is missing, so that link changes try again.
bool log_restore(const state::RestoreReport& r)
{
    if (!r.recorded) {
        log(LogLevel::info, "restore: no state recorded in {}: serving what bpffs holds", r.dir);
        return false;
    }
    if (r.unchanged() && r.exit_code() == 0) {
        log(LogLevel::info, "restore: the running system already has the state of {} (generation {})",
            r.dir, r.generation);
        return false;
    }
    log(LogLevel::info, "restore: {} generation {}: policy {} ({} rule(s), {} set(s)), load balancer {} ({} VIP(s))",
        r.dir, r.generation, r.policy_restored ? "restored" : "already in force", r.rules, r.sets,
        r.lb_restored ? "restored" : "already in force", r.vips);
    bool missing = false;
    for (const auto& i : r.ifaces) {
        missing |= i.outcome == state::RestoreReport::Outcome::missing;
        log(i.outcome == state::RestoreReport::Outcome::failed ? LogLevel::error : LogLevel::info,
            "restore: {}: {}{}", i.rec.iface.display(), state::outcome_name(i.outcome),
            i.detail.empty() ? "" : " (" + i.detail + ")");
    }
    for (const auto& d : r.decaps) {
        missing |= d.outcome == state::RestoreReport::Outcome::missing;
        log(d.outcome == state::RestoreReport::Outcome::failed ? LogLevel::error : LogLevel::info,
            "restore: decapsulator on {}: {}{}", d.rec.iface.display(), state::outcome_name(d.outcome),
            d.detail.empty() ? "" : " (" + d.detail + ")");
    }
    return missing;
}

// Link changes are many (our own attach is one) and come in bursts: act on a burst once.
constexpr auto kLinkSettle = std::chrono::milliseconds(200);
// The writer lock is another command's for a moment: try again after this.
constexpr auto kLockRetry = std::chrono::seconds(1);

class Daemon {
public:
    explicit Daemon(const DaemonOptions& o)
        : opts_(o),
          config_(read_daemon_config(o.config_path, o.config_given)),
          server_(io_, [this] { return scrape(); }, http_options(config_)),
          signals_(io_, SIGTERM, SIGINT, SIGHUP),
          links_(io_, [this](const LinkEvent& e) { on_link(e); }),
          link_timer_(io_),
          health_(io_)
    {
    }

    int run()
    {
        const service::FleetConfig fleet = fleet_config();  // a bad setting stops xdpd before anything
        restore_at_startup();
        start_fleet(fleet);
        set_writer_wait(0);  // from here on the io_context must not wait for the lock (take_up_links)
        listen_on(listen_text(config_));
        keep_events(config_.keep_events);
        wait_signal();
        health_.start();
        notify_systemd("READY=1\nSTATUS=serving " + listen_text(config_) + "/metrics");
        io_.run();
        return 0;
    }

private:
    static HttpOptions http_options(const DaemonConfig& c)
    {
        HttpOptions h;
        h.timeout = c.http_timeout;
        return h;
    }

    std::string listen_text(const DaemonConfig& c) const
    {
        return opts_.metrics_listen ? *opts_.metrics_listen : c.metrics_listen;
    }

    void listen_on(const std::string& addr)
    {
        server_.listen(parse_listen_address(addr));
        const auto ep = server_.local_endpoint();
        // The port as bound (port 0 in the address: the kernel's choice), for whoever started us.
        log(LogLevel::info, "serving metrics on {}:{}/metrics", ep.address().to_string(), ep.port());
    }

    // /events: the last `keep` decision events (none: off, the path 404).
    void keep_events(size_t keep)
    {
        events_.reset();
        server_.set_page("/events", {});
        if (!keep)
            return;
        events_ = std::make_unique<EventLog>(io_, keep);
        server_.set_page("/events", [this] { return MetricsServer::Page{"application/json", events_->page()}; });
    }

    MetricsServer::Page scrape()
    {
        metrics::Scrape s = metrics::scrape_metrics();
        for (const auto& e : s.errors)
            log(LogLevel::warning, "scrape: {}", e);
        if (fleet_) {
            metrics::Exposition x;
            fleet_->add_metrics(x);
            s.text += x.text();
        }
        return {metrics::Exposition::content_type, std::move(s.text)};
    }

    // The fleet's settings, checked (usage errors), the host id filled in.
    service::FleetConfig fleet_config() const
    {
        service::FleetConfig c = service::merge_fleet_config(config_.fleet, opts_.fleet);
        service::check_fleet_config(c);
        if (c.fleet.empty())
            return c;
        if (c.host.empty())
            c.host = fleet::default_host_id();
        fleet::validate_fleet_name(c.fleet);
        fleet::validate_host_id(c.host);
        service::check_fleet_files(c);
        return c;
    }

    // After the restore (the fleet applies only a revision other than the one it restored).
    // The fleet's settings are read at start only: a SIGHUP does not move a host to another.
    void start_fleet(const service::FleetConfig& c)
    {
        if (c.fleet.empty())
            return;
        if (std::any_of(c.etcd.begin(), c.etcd.end(), [](const auto& u) { return u.rfind("http://", 0) == 0; }))
            log(LogLevel::warning, "fleet {}: plain-HTTP etcd: anyone on the network can change this firewall "
                "(use https:// with --etcd-cacert, --etcd-cert, --etcd-key)", c.fleet);
        std::string members;
        for (const auto& u : c.etcd)
            members += (members.empty() ? "" : ",") + u;
        log(LogLevel::info, "fleet {}: host {}, etcd {}", c.fleet, c.host, members);
        fleet_ = std::make_unique<fleet::FleetFollower>(
            io_, fleet::FollowerOptions{c, state::state_dir(), fleet::find_xdpctl_binary(), XDPCTL_VERSION,
                                        restore_failed_});
        fleet_->start();
    }

    void wait_signal()
    {
        signals_.async_wait([this](boost::system::error_code ec, int sig) {
            if (ec)
                return;
            if (sig == SIGHUP) {
                reload();
                wait_signal();
                return;
            }
            // The datapath outlives the daemon: nothing is detached or unpinned.
            log(LogLevel::info, "{}: stopping; xdpctl's programs stay attached", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            notify_systemd("STOPPING=1");
            if (fleet_)
                fleet_->stop();
            io_.stop();
        });
    }

    void reload()
    {
        notify_systemd("RELOADING=1");
        try {
            DaemonConfig next = read_daemon_config(opts_.config_path, opts_.config_given);
            if (!(next.fleet == config_.fleet))
                log(LogLevel::warning, "SIGHUP: the fleet settings are read at start only: restart xdpd for them");
            if (listen_text(next) != listen_text(config_))
                listen_on(listen_text(next));
            server_.set_options(http_options(next));
            if (next.keep_events != config_.keep_events)
                keep_events(next.keep_events);
            config_ = next;
            log(LogLevel::info, "SIGHUP: configuration {} read again", opts_.config_path);
        } catch (const std::exception& e) {
            // A bad file changes nothing: the daemon goes on as it was.
            log(LogLevel::error, "SIGHUP: {}; the configuration in force is kept", e.what());
        }
        notify_systemd("READY=1");
    }

    void on_link(const LinkEvent& e)
    {
        switch (e.kind) {
        case LinkEvent::Kind::overflow:
            log(LogLevel::warning, "link events were lost (socket queue overflow): checking every interface");
            break;
        case LinkEvent::Kind::removed:
            log(LogLevel::info, "link {} (ifindex {}) removed", e.name, e.ifindex);
            break;
        case LinkEvent::Kind::added_or_changed:
            // RTM_NEWLINK: a new link, or a change of one (an attach is one).
            log(LogLevel::info, "link {} (ifindex {}) new or changed, {}", e.name, e.ifindex, e.up ? "up" : "down");
            break;
        }
        // The first change of a burst starts the wait; the others join it (a steady stream
        // of changes still gets its check every kLinkSettle).
        if (!link_check_pending_)
            check_links_after(kLinkSettle);
    }

    void check_links_after(std::chrono::steady_clock::duration wait)
    {
        link_check_pending_ = true;
        link_timer_.expires_after(wait);
        link_timer_.async_wait([this](boost::system::error_code ec) {
            link_check_pending_ = false;
            if (!ec)
                take_up_links();
        });
    }

    // Before serving: what the state directory records (after a reboot bpffs is empty).
    // A damaged directory is logged and xdpd serves what bpffs holds: the metrics then show
    // an empty datapath, which is what a monitor should see.
    void restore_at_startup()
    {
        if (state::state_dir().empty()) {
            log(LogLevel::info, "restore: no state directory (--state-dir ''): serving what bpffs holds");
            return;
        }
        try {
            recorded_missing_ = log_restore(state::restore_state(state::StateDir(state::state_dir())));
        } catch (const std::exception& e) {
            log(LogLevel::error, "restore: {}", e.what());
            restore_failed_ = true;
        }
    }

    // After link changes: recorded interfaces that now exist are loaded (restore leaves
    // what is in force as it is), and --iif names that now resolve get a commit.
    void take_up_links()
    {
        if (recorded_missing_ && !after_links("restore after link changes", [this] {
                recorded_missing_ = log_restore(state::restore_state(state::StateDir(state::state_dir())));
            }))
            return;
        after_links("after link changes", [] {
            if (!path_exists(shared_maps_dir() + "/xdpctl_pctl"))
                return;  // no policy ever committed: nothing names an interface
            {
                // The writer lock only when some rule names an interface.
                policy::PolicyStore reader(Access::read);
                const policy::Policy p = reader.read_consistent([&] { return reader.current(); });
                if (std::none_of(p.rules.begin(), p.rules.end(), [](const auto& r) { return !r.iif.empty(); }))
                    return;
            }
            policy::PolicyStore store;
            if (store.resolve_pending())
                log(LogLevel::info, "policy: --iif names resolved again after link changes: committed");
        });
    }

    // One step of take_up_links: false when another xdpctl holds the writer lock (all of it
    // is tried again a second later); any other error is logged and the next step goes on.
    template <class F>
    bool after_links(const char* what, F step)
    {
        try {
            step();
        } catch (const Error& e) {
            if (e.code() == ExitCode::busy) {
                check_links_after(kLockRetry);
                return false;
            }
            log(LogLevel::error, "{}: {}", what, e.what());
        } catch (const std::exception& e) {
            log(LogLevel::error, "{}: {}", what, e.what());
        }
        return true;
    }

    DaemonOptions opts_;
    asio::io_context io_;
    DaemonConfig config_;
    MetricsServer server_;
    asio::signal_set signals_;
    LinkWatch links_;
    asio::steady_timer link_timer_;
    HealthChecker health_;
    bool link_check_pending_ = false;
    bool recorded_missing_ = false;  // restore skipped a recorded interface that may appear
    std::unique_ptr<fleet::FleetFollower> fleet_;
    bool restore_failed_ = false;  // the fleet's applied revision is then not in force
    std::unique_ptr<EventLog> events_;  // keep-events > 0
};

}  // namespace

int run_daemon(const DaemonOptions& options)
{
    // Restore at start waits for the lock as a command does; after that a writer (a link
    // change's commit) must not sit on the io_context: one try, and again later.
    set_writer_command("xdpd");
    state::set_state_dir(options.state_dir);  // xdpd's own commits are recorded too
    Daemon d(options);
    return d.run();
}

}  // namespace xdpctl::xdpd
