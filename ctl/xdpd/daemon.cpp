#include "daemon.h"

#include <algorithm>
#include <csignal>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "error.h"
#include "iface_pins.h"
#include "iface_ref.h"
#include "metrics/exposition.h"
#include "metrics/xdpctl_metrics.h"
#include "policy/policy_store.h"
#include "service/daemon_config.h"
#include "service/link_watch.h"
#include "service/listen_address.h"
#include "service/log.h"
#include "service/metrics_server.h"
#include "service/systemd_notify.h"
#include "writer_lock.h"

namespace xdpctl::xdpd {

using namespace xdpctl::service;
namespace asio = boost::asio;

namespace {

// INTEGRATION POINT (issue 14 item 2, lib/state/): once `xdpctl::restore_state` is merged,
// xdpd calls it here, before it serves, and logs what it re-created or skipped. Until then
// xdpd serves whatever bpffs holds and says so.
void restore_at_startup()
{
    log(LogLevel::info, "restore: not in this build (lib/state/ is merged separately): serving what bpffs holds");
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
          server_(io_, [] { return scrape(); }, http_options(config_)),
          signals_(io_, SIGTERM, SIGINT, SIGHUP),
          links_(io_, [this](const LinkEvent& e) { on_link(e); }),
          link_timer_(io_)
    {
    }

    int run()
    {
        restore_at_startup();
        listen_on(listen_text(config_));
        wait_signal();
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

    static MetricsServer::Page scrape()
    {
        metrics::Scrape s = metrics::scrape_metrics();
        for (const auto& e : s.errors)
            log(LogLevel::warning, "scrape: {}", e);
        return {metrics::Exposition::content_type, std::move(s.text)};
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
            io_.stop();
        });
    }

    void reload()
    {
        notify_systemd("RELOADING=1");
        try {
            DaemonConfig next = read_daemon_config(opts_.config_path, opts_.config_given);
            if (listen_text(next) != listen_text(config_))
                listen_on(listen_text(next));
            server_.set_options(http_options(next));
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

    // After link changes: --iif names that now resolve (or no longer do) get a commit.
    void take_up_links()
    {
        try {
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
            // INTEGRATION POINT (issue 14 item 2, lib/state/): interfaces recorded in the state
            // directory that exist now are loaded here, once the state machinery is merged.
        } catch (const Error& e) {
            if (e.code() == ExitCode::busy) {
                check_links_after(kLockRetry);
                return;
            }
            log(LogLevel::error, "after link changes: {}", e.what());
        } catch (const std::exception& e) {
            log(LogLevel::error, "after link changes: {}", e.what());
        }
    }

    DaemonOptions opts_;
    asio::io_context io_;
    DaemonConfig config_;
    MetricsServer server_;
    asio::signal_set signals_;
    LinkWatch links_;
    asio::steady_timer link_timer_;
    bool link_check_pending_ = false;
};

}  // namespace

int run_daemon(const DaemonOptions& options)
{
    // A writer (a link change's commit) must not sit on the io_context waiting for the lock:
    // one try, and again later (take_up_links).
    set_writer_wait(0);
    set_writer_command("xdpd (link change)");
    Daemon d(options);
    return d.run();
}

}  // namespace xdpctl::xdpd
