#include "service/link_watch.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "util/error.h"
#include "service/log.h"

namespace xdpctl::service {

namespace {

int open_link_socket()
{
    int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
    if (fd < 0)
        fail("cannot open a NETLINK_ROUTE socket: {}", errno_str(errno));
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = RTMGRP_LINK;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
        const int err = errno;
        ::close(fd);
        fail("cannot subscribe to link changes (RTMGRP_LINK): {}", errno_str(err));
    }
    return fd;
}

LinkEvent parse_link(const nlmsghdr* h)
{
    LinkEvent e;
    e.kind = h->nlmsg_type == RTM_DELLINK ? LinkEvent::Kind::removed : LinkEvent::Kind::added_or_changed;
    const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
    e.ifindex = ifi->ifi_index;
    e.up = ifi->ifi_flags & IFF_UP;
    int len = int(h->nlmsg_len) - int(NLMSG_LENGTH(sizeof(*ifi)));
    for (const rtattr* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len))
        if (a->rta_type == IFLA_IFNAME)
            e.name.assign(static_cast<const char*>(RTA_DATA(a)), strnlen(static_cast<const char*>(RTA_DATA(a)), RTA_PAYLOAD(a)));
    return e;
}

}  // namespace

LinkWatch::LinkWatch(boost::asio::io_context& io, Callback cb)
    : sock_(io, open_link_socket()), cb_(std::move(cb))
{
    read();
}

void LinkWatch::read()
{
    sock_.async_read_some(boost::asio::buffer(buf_), [this](boost::system::error_code ec, size_t n) {
        if (ec == boost::asio::error::operation_aborted)
            return;
        if (ec == boost::system::error_code(ENOBUFS, boost::system::system_category())) {
            // The socket's queue overflowed: the kernel dropped link messages.
            cb_(LinkEvent{LinkEvent::Kind::overflow, 0, "", false});
        } else if (ec) {
            log(LogLevel::error, "link watch: {}: no more link events", ec.message());
            return;
        } else {
            int len = int(n);
            for (auto* h = reinterpret_cast<const nlmsghdr*>(buf_.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len))
                if ((h->nlmsg_type == RTM_NEWLINK || h->nlmsg_type == RTM_DELLINK) &&
                    h->nlmsg_len >= NLMSG_LENGTH(sizeof(ifinfomsg)))
                    cb_(parse_link(h));
        }
        read();
    });
}

}  // namespace xdpctl::service
