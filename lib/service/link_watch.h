// Link changes of the daemon's network namespace: rtnetlink RTM_NEWLINK / RTM_DELLINK
// (group RTMGRP_LINK) read by an Asio stream descriptor on the io_context, no thread.
#pragma once

#include <array>
#include <functional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

namespace xdpctl::service {

struct LinkEvent {
    enum class Kind { added_or_changed, removed, overflow } kind = Kind::added_or_changed;
    int ifindex = 0;
    std::string name;
    bool up = false;  // IFF_UP
};

class LinkWatch {
public:
    using Callback = std::function<void(const LinkEvent&)>;
    // Opens and binds the socket (throws an Error when it cannot) and starts reading.
    // An overflow event means the kernel dropped messages (ENOBUFS): state may have changed
    // in any way.
    LinkWatch(boost::asio::io_context& io, Callback cb);

private:
    void read();

    boost::asio::posix::stream_descriptor sock_;
    Callback cb_;
    std::array<char, 64 * 1024> buf_;
};

}  // namespace xdpctl::service
