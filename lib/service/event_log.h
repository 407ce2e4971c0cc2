// xdpd's `keep-events = N` (docs/service.md, "Trace"): the last N decision events, read from
// the ring buffer on the daemon's io_context (the ring's epoll fd, waited on without a
// thread) and served as JSON at /events. The ring is pinned by the first `load`: until then it
// is looked for again every few seconds. It is the ring's reader, as `xdpctl trace` is: while
// both run, each gets part of the events.
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "trace/event_ring.h"

namespace xdpctl::service {

class EventLog {
public:
    EventLog(boost::asio::io_context& io, size_t keep);
    // A JSON array of the events kept, oldest first (the keys of `xdpctl trace --json`).
    std::string page() const;

private:
    void try_open();
    void wait_readable();
    void on_event(const xdpctl_event& e);

    boost::asio::io_context& io_;
    size_t keep_;
    std::unique_ptr<trace::EventRing> ring_;
    std::optional<boost::asio::posix::stream_descriptor> fd_;
    boost::asio::steady_timer retry_;
    std::deque<nlohmann::json> events_;
    std::map<uint32_t, trace::KeyedIface> ifaces_;
    int64_t to_unix_ = 0;
};

}  // namespace xdpctl::service
