#include "service/event_log.h"

#include <unistd.h>

#include <fmt/core.h>

#include "service/log.h"
#include "trace/event_decode.h"

namespace xdpctl::service {

namespace asio = boost::asio;

namespace {
constexpr auto kRetry = std::chrono::seconds(2);
}  // namespace

EventLog::EventLog(asio::io_context& io, size_t keep) : io_(io), keep_(keep), retry_(io)
{
    try_open();
}

void EventLog::try_open()
{
    try {
        ring_ = std::make_unique<trace::EventRing>([this](const xdpctl_event& e) { on_event(e); });
    } catch (const std::exception&) {
        retry_.expires_after(kRetry);  // not pinned yet: no load so far
        retry_.async_wait([this](boost::system::error_code ec) {
            if (!ec)
                try_open();
        });
        return;
    }
    to_unix_ = trace::monotonic_to_unix_ns();
    ifaces_ = trace::ifaces_by_key();
    fd_.emplace(io_, ::dup(ring_->epoll_fd()));
    log(LogLevel::info, "keeping the last {} decision events for /events", keep_);
    wait_readable();
}

void EventLog::wait_readable()
{
    fd_->async_wait(asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
        if (ec)
            return;
        try {
            ring_->poll(0);
        } catch (const std::exception& e) {
            log(LogLevel::error, "events: {}", e.what());
        }
        wait_readable();
    });
}

void EventLog::on_event(const xdpctl_event& e)
{
    auto it = ifaces_.find(e.iif_key);
    if (it == ifaces_.end()) {  // loaded since
        ifaces_ = trace::ifaces_by_key();
        it = ifaces_.find(e.iif_key);
    }
    const std::string iface = it != ifaces_.end() ? it->second.display : fmt::format("ifindex {}", e.ifindex);
    events_.push_back(trace::event_json(e, e.time_ns + uint64_t(to_unix_), iface));
    while (events_.size() > keep_)
        events_.pop_front();
}

std::string EventLog::page() const
{
    nlohmann::json a = nlohmann::json::array();
    for (const auto& e : events_)
        a.push_back(e);
    return a.dump() + "\n";
}

}  // namespace xdpctl::service
