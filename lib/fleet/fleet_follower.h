// xdpd's fleet follower (issue 15, docs/fleet.md): keeps this host's policy at the latest good
// revision of /xdpctl/fleet/NAME/config and reports each attempt in .../status/HOST.
//
// etcd's client blocks (etcd_client.h), so it runs on one thread of its own: read the key,
// apply it if it is not the revision in force, watch from the next revision, apply each new
// one (fleet_apply.h: `xdpctl apply`, which refuses a bad file whole, leaving the last good
// policy in force), write the status after each attempt. Lost members, a lost stream or a
// compaction all lead back to reading the whole key again, after a backoff of 100 ms doubling
// to 5 s while no member answers. Nothing is flushed meanwhile: the datapath filters on.
//
// The applied revision is kept in STATE_DIR/fleet/applied (durable_file.h), next to the policy
// the state directory records: after a restart xdpd restores that policy, and the follower
// applies only a revision newer than it.
//
// What the thread learns is posted to the daemon's io_context, which alone reads it for the
// metrics (xdpctl_fleet_*), so a scrape never waits for etcd.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "service/fleet_config.h"

namespace xdpctl::metrics {
class Exposition;
}

namespace xdpctl::fleet {

struct FollowerOptions {
    service::FleetConfig config;  // checked (check_fleet_config), host filled in
    std::string state_dir;        // "" = no durable resume
    std::string xdpctl_bin;       // find_xdpctl_binary()
    std::string version;          // reported in the status
    bool reapply = false;         // the state directory's restore failed: apply the key even
                                  // if its revision is the one recorded as applied
};

class FleetFollower {
public:
    FleetFollower(boost::asio::io_context& io, FollowerOptions options);
    ~FleetFollower();  // stop()
    FleetFollower(const FleetFollower&) = delete;
    FleetFollower& operator=(const FleetFollower&) = delete;

    void start();
    // Ends the thread within ~200 ms (the watch's stop check) plus an apply under way.
    void stop();

    // The xdpctl_fleet_* families; on the io_context's thread.
    void add_metrics(metrics::Exposition& out) const;

    // What the io_context knows (set by posts from the thread).
    struct View {
        int64_t applied_revision = 0;
        int64_t tried_revision = 0;
        bool last_refused = false;
        bool connected = false;
    };

private:
    void run();

    boost::asio::io_context& io_;
    FollowerOptions opts_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    View view_;  // io_context's thread only
};

// The hostname, the default host id.
std::string default_host_id();

}  // namespace xdpctl::fleet
