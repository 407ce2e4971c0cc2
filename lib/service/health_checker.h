// xdpd's backend health checks (docs/service.md, "Health checks"): every backend with a
// check (its own or its VIP's, lib/lb/health_check.h) is probed on the daemon's one
// io_context, asynchronously (a timer and a socket per backend, no thread): a TCP connect,
// or an HTTP GET whose status line must carry the expected status, within the timeout.
// `fall` failures in a row take a backend out of rotation (LbMaps::set_down: weight 0 in
// the Maglev table, its connections stay), `rise` passes bring it back; each change is one
// commit through LbStore (writer lock, one table swap) and one log line. The results go to
// maps/xdpctl_lb_health for `lb list` and the metrics.
//
// The configuration is read again every kConfigPoll: checks set or removed with `lb`
// commands or apply are taken up without a signal. Probes run from xdpd's network
// namespace: the backends must be reachable from there.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace xdpctl::lb {
class LbMaps;
}

namespace xdpctl::service {

class HealthChecker {
public:
    static constexpr std::chrono::milliseconds kConfigPoll{1000};
    // A commit that found the writer lock held is tried again after this.
    static constexpr std::chrono::milliseconds kCommitRetry{100};

    explicit HealthChecker(boost::asio::io_context& io);
    ~HealthChecker();
    HealthChecker(const HealthChecker&) = delete;
    HealthChecker& operator=(const HealthChecker&) = delete;

    // Reads the configuration now and every kConfigPoll, starting and stopping probes.
    void start();

    struct Target;

private:
    void poll();
    void reconcile();
    void probe(const std::shared_ptr<Target>& t);
    void finish(const std::shared_ptr<Target>& t, bool passed, const std::string& error);
    void schedule(const std::shared_ptr<Target>& t);
    // Makes the maps say what t's state machine says; a busy writer lock is tried again
    // after kCommitRetry, another error after the next check.
    void commit(const std::shared_ptr<Target>& t);
    void write_results(const std::shared_ptr<Target>& t);

    boost::asio::io_context& io_;
    boost::asio::steady_timer poll_timer_;
    std::map<std::string, std::shared_ptr<Target>> targets_;  // by VIP, backend, incarnation
    std::unique_ptr<lb::LbMaps> maps_;  // as of the last poll: where results are written
    std::string last_error_;            // of the last poll, logged once
};

}  // namespace xdpctl::service
