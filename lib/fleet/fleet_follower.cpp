#include "fleet/fleet_follower.h"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "fleet/etcd_client.h"
#include "fleet/fleet_apply.h"
#include "fleet/fleet_keys.h"
#include "fleet/fleet_status.h"
#include "metrics/exposition.h"
#include "service/log.h"
#include "state/durable_file.h"

namespace xdpctl::fleet {

using service::log;
using service::LogLevel;
using namespace std::chrono_literals;

std::string default_host_id()
{
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0 || !name[0])
        return "localhost";
    return name;
}

namespace {

constexpr auto kBackoffFirst = 100ms;
constexpr auto kBackoffMax = 5s;
constexpr const char* kResumeDir = "fleet";
constexpr const char* kResumeFile = "applied";

// STATE_DIR/fleet/applied: {"fleet": NAME, "applied_revision": N}. Another fleet's (the
// host moved) or a damaged file counts as none: the key is then applied again, which is
// what the fleet says anyway.
int64_t read_applied(const std::string& state_dir, const std::string& fleet)
{
    if (state_dir.empty())
        return 0;
    try {
        auto text = state::read_file_if_exists(state_dir + "/" + kResumeDir + "/" + kResumeFile);
        if (!text)
            return 0;
        auto j = nlohmann::json::parse(*text);
        if (j.at("fleet").get<std::string>() != fleet)
            return 0;
        return j.at("applied_revision").get<int64_t>();
    } catch (const std::exception& e) {
        log(LogLevel::warning, "fleet: {}/{}/{}: {}: the fleet's key is applied again", state_dir,
            kResumeDir, kResumeFile, e.what());
        return 0;
    }
}

void write_applied(const std::string& state_dir, const std::string& fleet, int64_t rev)
{
    if (state_dir.empty())
        return;
    state::DurableDir dir(state_dir + "/" + kResumeDir);
    dir.write(kResumeFile, nlohmann::json{{"fleet", fleet}, {"applied_revision", rev}}.dump() + "\n");
    dir.sync();
}

double unix_now()
{
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The thread's side: everything here runs on the fleet thread.
class Worker {
public:
    Worker(const FollowerOptions& o, const std::atomic<bool>& stop,
           std::function<void(const FleetFollower::View&)> publish)
        : o_(o), stop_(stop), publish_(std::move(publish)), key_(config_key(o.config.fleet)),
          status_key_(status_key(o.config.fleet, o.config.host))
    {
        status_.host = o.config.host;
        status_.version = o.version;
        status_.applied_revision = status_.tried_revision = read_applied(o.state_dir, o.config.fleet);
        if (o.reapply && status_.applied_revision) {
            log(LogLevel::warning, "fleet {}: the state directory was not restored: revision {} is applied again",
                o.config.fleet, status_.applied_revision);
            status_.applied_revision = status_.tried_revision = 0;
        }
        view_.applied_revision = view_.tried_revision = status_.applied_revision;
        if (status_.applied_revision)
            log(LogLevel::info, "fleet {}: revision {} applied before this start (state directory {})",
                o.config.fleet, status_.applied_revision, o.state_dir);
    }

    void run()
    {
        EtcdConfig cfg;
        cfg.endpoints = o_.config.etcd;
        cfg.tls = {o_.config.cacert, o_.config.cert, o_.config.key};
        // Two clients: the watch holds its member's connection open while the status is put.
        EtcdClient kv(cfg), watcher(cfg);
        auto backoff = std::chrono::milliseconds(kBackoffFirst);
        publish();
        while (!stop_) {
            try {
                follow(kv, watcher, backoff);
            } catch (const EtcdError& e) {
                if (e.kind() == EtcdError::Kind::Compacted) {
                    // The watch's start is gone: the whole key again, at once.
                    log(LogLevel::warning, "fleet {}: {}: reading the key again", o_.config.fleet, e.what());
                    continue;
                }
                lost(e.what(), backoff);
            } catch (const RetryLater& e) {
                // etcd answers; the apply could not run (the lock, the system): later.
                log(LogLevel::error, "fleet {}: {}; trying again in {} ms", o_.config.fleet, e.what(), backoff.count());
                pause(backoff);
            }
        }
    }

private:
    struct RetryLater : std::runtime_error {
        using std::runtime_error::runtime_error;
    };

    // Reads the key, applies it, watches: returns only when stopping; throws on a lost member.
    void follow(EtcdClient& kv, EtcdClient& watcher, std::chrono::milliseconds& backoff)
    {
        EtcdRange r = kv.get(key_);
        if (!view_.connected) {
            log(LogLevel::info, "fleet {}: etcd {} answers; following {} from revision {}", o_.config.fleet,
                kv.endpoint(), key_, r.header_revision);
            view_.connected = true;
            told_down_ = false;
            publish();
        }
        if (r.kvs.empty())
            log(LogLevel::info, "fleet {}: no {} yet: the policy in force stays", o_.config.fleet, key_);
        else
            consider(r.kvs.front());
        put_status(kv);
        backoff = kBackoffFirst;  // all of it worked: the next loss starts the backoff again
        watcher.watch(key_, r.header_revision + 1, [&](const EtcdWatchEvent& ev) {
            if (ev.type == EtcdWatchEvent::Type::Delete)
                log(LogLevel::warning, "fleet {}: {} deleted at revision {}: revision {} stays in force",
                    o_.config.fleet, key_, ev.kv.mod_revision, status_.applied_revision);
            else
                consider(ev.kv);
            put_status(kv);
            return !stop_;
        }, stop_);
        if (!stop_)
            throw EtcdError(EtcdError::Kind::Unreachable, "the watch stream ended");
    }

    // One revision: applied unless it is the one in force or one refused already.
    void consider(const EtcdKv& k)
    {
        const int64_t rev = k.mod_revision;
        if (rev == status_.applied_revision || (rev == status_.tried_revision && !status_.error.empty()))
            return;
        const auto t0 = std::chrono::steady_clock::now();
        ApplyOutcome out = apply_config_text(o_.xdpctl_bin, o_.state_dir, k.value, fmt::format("config@{}", rev));
        const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (out.kind == ApplyOutcome::Kind::failed)
            // Not the file's fault (the lock, the system): tried again once etcd is read again.
            throw RetryLater(fmt::format("revision {} not applied: {}", rev, out.error));
        status_.tried_revision = rev;
        status_.time = unix_now();
        if (out.kind == ApplyOutcome::Kind::applied) {
            status_.applied_revision = rev;
            status_.error.clear();
            try {
                write_applied(o_.state_dir, o_.config.fleet, rev);
            } catch (const std::exception& e) {
                log(LogLevel::error, "fleet {}: {} (a restart applies revision {} again)", o_.config.fleet,
                    e.what(), rev);
            }
            log(LogLevel::info, "fleet {}: revision {} applied ({:.0f} ms)", o_.config.fleet, rev, ms);
            if (!out.error.empty())
                log(LogLevel::warning, "fleet {}: revision {}: {}", o_.config.fleet, rev, out.error);
        } else {
            status_.error = out.error;
            log(LogLevel::error, "fleet {}: revision {} refused, revision {} stays in force: {}", o_.config.fleet,
                rev, status_.applied_revision, out.error);
        }
        view_.applied_revision = status_.applied_revision;
        view_.tried_revision = status_.tried_revision;
        view_.last_refused = !status_.error.empty();
        status_dirty_ = true;
        publish();
    }

    void put_status(EtcdClient& kv)
    {
        if (!status_dirty_ && status_written_)
            return;
        if (status_.time == 0)
            status_.time = unix_now();
        kv.put(status_key_, to_json_text(status_));
        status_dirty_ = false;
        status_written_ = true;
    }

    void lost(const std::string& why, std::chrono::milliseconds& backoff)
    {
        if (view_.connected || !told_down_) {
            log(LogLevel::warning, "fleet {}: {}; the policy in force stays, retrying", o_.config.fleet, why);
            told_down_ = true;
            view_.connected = false;
            publish();
        }
        status_written_ = false;  // the member may have missed it: write it again
        pause(backoff);
    }

    // Sleeps `backoff` (waking every 50 ms for the stop flag), then doubles it up to kBackoffMax.
    void pause(std::chrono::milliseconds& backoff)
    {
        const auto until = std::chrono::steady_clock::now() + backoff;
        while (!stop_ && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
                50ms, until - std::chrono::steady_clock::now()));
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, kBackoffMax);
    }

    void publish() { publish_(view_); }

    const FollowerOptions& o_;
    const std::atomic<bool>& stop_;
    std::function<void(const FleetFollower::View&)> publish_;
    const std::string key_, status_key_;
    FleetStatus status_;
    FleetFollower::View view_;
    bool status_dirty_ = true;
    bool status_written_ = false;
    bool told_down_ = false;  // the log has the loss of etcd (once per loss)
};

}  // namespace

FleetFollower::FleetFollower(boost::asio::io_context& io, FollowerOptions options)
    : io_(io), opts_(std::move(options))
{
}

FleetFollower::~FleetFollower() { stop(); }

void FleetFollower::start()
{
    thread_ = std::thread([this] { run(); });
}

void FleetFollower::stop()
{
    stop_ = true;
    if (thread_.joinable())
        thread_.join();
}

void FleetFollower::run()
{
    try {
        Worker w(opts_, stop_, [this](const View& v) {
            boost::asio::post(io_, [this, v] { view_ = v; });
        });
        w.run();
    } catch (const std::exception& e) {
        // Only a setup error gets here (the TLS files): the daemon serves on without a fleet.
        log(LogLevel::error, "fleet {}: {}; not following the fleet", opts_.config.fleet, e.what());
    }
}

void FleetFollower::add_metrics(metrics::Exposition& out) const
{
    const metrics::Labels l{{"fleet", opts_.config.fleet}, {"host", opts_.config.host}};
    out.family("xdpctl_fleet_applied_revision", "gauge",
               "The fleet config's etcd revision in force on this host (0: none yet)");
    out.sample(l, uint64_t(view_.applied_revision));
    out.family("xdpctl_fleet_tried_revision", "gauge", "The last revision this host tried to apply");
    out.sample(l, uint64_t(view_.tried_revision));
    out.family("xdpctl_fleet_last_error", "gauge",
               "1 when the last revision tried was refused (its error is in the fleet status key)");
    out.sample(l, uint64_t(view_.last_refused));
    out.family("xdpctl_fleet_etcd_connected", "gauge", "1 while an etcd member answers");
    out.sample(l, uint64_t(view_.connected));
}

}  // namespace xdpctl::fleet
