#include "trace/event_ring.h"

#include <bpf/libbpf.h>
#include <time.h>

#include <cerrno>

#include "attach/iface_pins.h"
#include "attach/iface_ref.h"
#include "attach/pin_layout.h"
#include "util/error.h"

namespace xdpctl::trace {

EventRing::EventRing(Handler on_event) : on_event_(std::move(on_event))
{
    const std::string path = shared_maps_dir() + "/xdpctl_events";
    UniqueFd fd = open_pinned(path);
    if (!fd)
        fail_usage("no decision events to read: {} is not there (load xdpctl on an interface first: "
                   "'xdpctl load IFACE')",
                   path);
    // ring_buffer__new maps the ring and keeps it mapped; the fd may close after.
    rb_ = ring_buffer__new(fd.get(), &EventRing::on_sample, this, nullptr);
    if (!rb_)
        fail("cannot read the ring buffer {}: {}", path, errno_str(errno));
}

EventRing::~EventRing()
{
    ring_buffer__free(rb_);
}

int EventRing::on_sample(void* self, void* data, size_t size)
{
    if (size >= sizeof(xdpctl_event))
        static_cast<EventRing*>(self)->on_event_(*static_cast<const xdpctl_event*>(data));
    return 0;
}

int EventRing::poll(int timeout_ms)
{
    const int n = ring_buffer__poll(rb_, timeout_ms);
    if (n < 0 && n != -EINTR)
        fail("cannot read the decision events: {}", errno_str(-n));
    return n;
}

int EventRing::epoll_fd() const
{
    return ring_buffer__epoll_fd(rb_);
}

std::map<uint32_t, KeyedIface> ifaces_by_key()
{
    std::map<uint32_t, KeyedIface> out;
    for (const auto& i : pinned_ifaces()) {
        const auto meta = IfacePins(i.dir).read_meta();
        if (meta && meta->iif_key)
            out[meta->iif_key] = {i.display(), i.ref().netns};
    }
    return out;
}

int64_t monotonic_to_unix_ns()
{
    timespec real{}, mono{};
    clock_gettime(CLOCK_REALTIME, &real);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    return (int64_t(real.tv_sec) - int64_t(mono.tv_sec)) * 1000000000 + (real.tv_nsec - mono.tv_nsec);
}

}  // namespace xdpctl::trace
