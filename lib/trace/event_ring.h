// The decision events' ring buffer (maps/xdpctl_events, pinned by the first load) read from
// userspace, and the interfaces the events name. One reader at a time: the ring's read
// position is the map's, so two readers would each see part of the events.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "abi/xdpctl_abi.h"

struct ring_buffer;

namespace xdpctl::trace {

class EventRing {
public:
    using Handler = std::function<void(const xdpctl_event&)>;
    // A usage error when no load has pinned the ring yet.
    explicit EventRing(Handler on_event);
    ~EventRing();
    EventRing(const EventRing&) = delete;
    EventRing& operator=(const EventRing&) = delete;
    // Hands every event there is to the handler, waiting up to timeout_ms for the first;
    // returns how many, or -EINTR when a signal came.
    int poll(int timeout_ms);
    // Readable when events wait: for a reader that waits on its own loop (xdpd).
    int epoll_fd() const;

private:
    static int on_sample(void* self, void* data, size_t size);
    Handler on_event_;
    ring_buffer* rb_ = nullptr;
};

// The interfaces xdpctl is loaded on, by interface key (xdpctl_iface_meta.iif_key, what an
// event names): how to show each ("veth0", "veth0@lab") and its namespace's -n name.
struct KeyedIface {
    std::string display;
    std::string netns;
};
std::map<uint32_t, KeyedIface> ifaces_by_key();

// CLOCK_REALTIME minus CLOCK_MONOTONIC now: added to an event's time gives its wall time.
int64_t monotonic_to_unix_ns();

}  // namespace xdpctl::trace
