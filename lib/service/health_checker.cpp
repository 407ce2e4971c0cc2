#include "service/health_checker.h"

#include <time.h>

#include <cstring>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include "attach/iface_pins.h"
#include "attach/iface_ref.h"
#include "lb/lb_health_maps.h"
#include "lb/lb_store.h"
#include "service/log.h"
#include "util/error.h"

namespace xdpctl::service {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

struct HealthChecker::Target {
    explicit Target(asio::io_context& io) : timer(io), deadline(io), commit_timer(io), sock(io) {}

    lb::VipSpec vip;
    lb::IpAddr addr;
    lb::BackendEntry entry;  // slot, incarnation, VIP id: where the results are written
    lb::CheckSpec check;
    lb::HealthMachine machine;
    lb::LbHealthRec rec{};
    bool maps_down = false;       // what the backend's record says
    bool stopped = false;         // no longer checked: every callback returns
    bool commit_pending = false;  // a commit waits for the writer lock
    bool timed_out = false;
    asio::steady_timer timer, deadline, commit_timer;
    tcp::socket sock;
    asio::streambuf in;
    std::string request;
    std::chrono::steady_clock::time_point started;

    std::string name() const
    {
        return fmt::format("backend {} of VIP {}", lb::format_ip(addr), lb::format_vip(vip));
    }
    tcp::endpoint endpoint() const
    {
        return {asio::ip::make_address(lb::format_ip(addr)), check.port ? check.port : vip.port};
    }
    void stop()
    {
        stopped = true;
        boost::system::error_code ignored;
        timer.cancel();
        deadline.cancel();
        commit_timer.cancel();
        sock.close(ignored);
    }
};

namespace {

uint64_t unix_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// "HTTP/1.1 200 OK" -> 200; 0 when it is not a status line.
unsigned status_of(const std::string& line)
{
    if (line.rfind("HTTP/", 0) != 0)
        return 0;
    const size_t sp = line.find(' ');
    if (sp == std::string::npos || line.size() < sp + 4)
        return 0;
    unsigned v = 0;
    for (size_t i = sp + 1; i < sp + 4; i++) {
        if (line[i] < '0' || line[i] > '9')
            return 0;
        v = v * 10 + unsigned(line[i] - '0');
    }
    return v;
}

}  // namespace

HealthChecker::HealthChecker(asio::io_context& io) : io_(io), poll_timer_(io) {}

HealthChecker::~HealthChecker()
{
    for (auto& [key, t] : targets_)
        t->stop();
}

void HealthChecker::start()
{
    poll();
}

void HealthChecker::poll()
{
    try {
        reconcile();
        last_error_.clear();
    } catch (const std::exception& e) {
        // Once per distinct error: a missing map is not news every second.
        if (last_error_ != e.what())
            log(LogLevel::error, "health: reading the load balancer: {}", e.what());
        last_error_ = e.what();
    }
    poll_timer_.expires_after(kConfigPoll);
    poll_timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec)
            poll();
    });
}

void HealthChecker::reconcile()
{
    std::map<std::string, std::shared_ptr<Target>> next;
    std::vector<std::pair<lb::VipSpec, lb::IpAddr>> release;  // down, and no longer checked
    if (path_exists(shared_maps_dir() + "/xdpctl_lb_vips")) {
        maps_ = std::make_unique<lb::LbMaps>(lb::lb_map_fds_pinned(shared_maps_dir()));
        for (const auto& v : maps_->vips()) {
            const auto vcheck = maps_->check(v.spec, std::nullopt);
            for (const auto& b : maps_->backends(v.rec.id)) {
                const auto c = lb::effective_check(vcheck, maps_->check(v.spec, b.addr()));
                if (!c) {
                    if (b.down())
                        release.emplace_back(v.spec, b.addr());
                    continue;
                }
                // The slot and its incarnation too: maps made again (unload --all) start the
                // incarnations over.
                const std::string key = fmt::format("{} {} {}/{}/{}", lb::format_vip(v.spec), lb::format_ip(b.addr()),
                                                    v.rec.id, b.slot, b.rec.gen);
                auto it = targets_.find(key);
                if (it != targets_.end()) {
                    if (it->second->check == *c) {
                        next[key] = it->second;
                        continue;
                    }
                    it->second->stop();  // a changed check starts over
                }
                auto t = std::make_shared<Target>(io_);
                t->vip = v.spec;
                t->addr = b.addr();
                t->entry = b;
                t->check = *c;
                t->maps_down = b.down();
                t->machine = lb::HealthMachine(!b.down());
                if (auto h = maps_->health(b))
                    t->rec = *h;  // the totals go on across an xdpd restart
                t->rec.gen = b.rec.gen;
                t->rec.vip_id = b.rec.vip_id;
                t->rec.ok_run = t->rec.fail_run = 0;
                next[key] = t;
                log(LogLevel::info, "health: checking {} ({}every {}), now {}", t->name(),
                    lb::format_check_type(*c) + " ", lb::format_check_duration(c->interval),
                    b.down() ? "down" : "up");
                probe(t);
            }
        }
    } else {
        maps_.reset();
    }
    for (auto& [key, t] : targets_)
        if (!next.count(key))
            t->stop();
    targets_ = std::move(next);
    if (release.empty())
        return;
    // A check removed while its backend was down: the configured weight again.
    try {
        lb::LbStore store;
        for (const auto& [vip, addr] : release)
            if (store.maps().set_down(vip, addr, false))
                log(LogLevel::info, "health: backend {} of VIP {}: no check any more: back in rotation",
                    lb::format_ip(addr), lb::format_vip(vip));
    } catch (const Error& e) {
        if (e.code() != ExitCode::busy)  // busy: the next poll tries again
            throw;
    }
}

void HealthChecker::probe(const std::shared_ptr<Target>& t)
{
    if (t->stopped)
        return;
    t->started = std::chrono::steady_clock::now();
    t->timed_out = false;
    boost::system::error_code ec;
    t->sock.close(ec);
    t->in.consume(t->in.size());
    t->deadline.expires_after(t->check.timeout);
    t->deadline.async_wait([t](boost::system::error_code e) {
        if (e || t->stopped)
            return;
        t->timed_out = true;
        boost::system::error_code ignored;
        t->sock.close(ignored);  // the pending operation ends with operation_aborted
    });
    auto fail = [this, t](const char* step, const boost::system::error_code& e) {
        finish(t, false,
               t->timed_out ? fmt::format("timeout after {} ({})", lb::format_check_duration(t->check.timeout), step)
                            : fmt::format("{}: {}", step, e.message()));
    };
    t->sock.async_connect(t->endpoint(), [this, t, fail](boost::system::error_code e) {
        if (t->stopped)
            return;
        if (e)
            return fail("connect", e);
        if (t->check.type == lb::CheckSpec::Type::tcp)
            return finish(t, true, "");
        const std::string host = t->addr.family == 6 ? "[" + lb::format_ip(t->addr) + "]" : lb::format_ip(t->addr);
        t->request = fmt::format("GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: xdpd-health-check\r\n"
                                 "Connection: close\r\n\r\n",
                                 t->check.path, host);
        asio::async_write(t->sock, asio::buffer(t->request), [this, t, fail](boost::system::error_code e2, size_t) {
            if (t->stopped)
                return;
            if (e2)
                return fail("send", e2);
            asio::async_read_until(t->sock, t->in, "\r\n", [this, t, fail](boost::system::error_code e3, size_t n) {
                if (t->stopped)
                    return;
                if (e3)
                    return fail("status line", e3);
                std::string line(asio::buffers_begin(t->in.data()), asio::buffers_begin(t->in.data()) + n - 2);
                const unsigned status = status_of(line);
                if (status == t->check.expect)
                    return finish(t, true, "");
                if (line.size() > 40)
                    line = line.substr(0, 40) + "...";
                finish(t, false,
                       status ? fmt::format("HTTP status {}, expected {}", status, t->check.expect)
                              : fmt::format("not an HTTP status line: '{}'", line));
            });
        });
    });
}

void HealthChecker::finish(const std::shared_ptr<Target>& t, bool passed, const std::string& error)
{
    t->deadline.cancel();
    boost::system::error_code ignored;
    t->sock.close(ignored);
    const bool changed = t->machine.record(passed, t->check.rise, t->check.fall);
    t->rec.ok_run = t->machine.ok_run();
    t->rec.fail_run = t->machine.fail_run();
    t->rec.checks++;
    if (!passed) {
        t->rec.failures++;
        std::memset(t->rec.last_error, 0, sizeof(t->rec.last_error));
        std::strncpy(t->rec.last_error, error.c_str(), sizeof(t->rec.last_error) - 1);
    }
    if (changed) {
        t->rec.changes++;
        t->rec.last_change_unix_ns = unix_ns();
        if (t->machine.up())
            log(LogLevel::info, "health: {} up after {} passed check(s) in a row: weight {} again", t->name(),
                t->machine.ok_run(), t->entry.rec.weight);
        else
            log(LogLevel::warning, "health: {} down after {} failed check(s) in a row ({}): weight 0, "
                "its connections stay", t->name(), t->machine.fail_run(), error);
    }
    if (t->machine.up() == t->maps_down)
        commit(t);
    write_results(t);
    schedule(t);
}

void HealthChecker::schedule(const std::shared_ptr<Target>& t)
{
    if (t->stopped)
        return;
    t->timer.expires_at(std::max(t->started + t->check.interval, std::chrono::steady_clock::now()));
    t->timer.async_wait([this, t](boost::system::error_code ec) {
        if (!ec)
            probe(t);
    });
}

void HealthChecker::commit(const std::shared_ptr<Target>& t)
{
    if (t->stopped || t->commit_pending)
        return;
    try {
        lb::LbStore store;  // the writer lock, no wait (xdpd: set_writer_wait(0))
        store.maps().set_down(t->vip, t->addr, !t->machine.up());
        t->maps_down = !t->machine.up();
    } catch (const Error& e) {
        if (e.code() != ExitCode::busy) {
            log(LogLevel::error, "health: {}: the change was not made: {}", t->name(), e.what());
            return;  // tried again after the next check
        }
        t->commit_pending = true;
        t->commit_timer.expires_after(kCommitRetry);
        t->commit_timer.async_wait([this, t](boost::system::error_code ec) {
            t->commit_pending = false;
            if (!ec && t->machine.up() == t->maps_down)
                commit(t);
        });
    }
}

void HealthChecker::write_results(const std::shared_ptr<Target>& t)
{
    if (!maps_)
        return;
    try {
        maps_->write_health(t->entry, t->rec);
    } catch (const std::exception& e) {
        log(LogLevel::error, "health: {}: results not recorded: {}", t->name(), e.what());
    }
}

}  // namespace xdpctl::service
