#include "lb/neigh.h"

#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "util/error.h"
#include "util/unique_fd.h"

namespace xdpctl::lb {

std::optional<MacAddr> neighbour_mac(const IpAddr& a)
{
    UniqueFd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!fd)
        fail("cannot open a netlink socket: {}", errno_str(errno));
    struct {
        nlmsghdr nh;
        ndmsg nd;
    } req{};
    req.nh.nlmsg_len = sizeof(req);
    req.nh.nlmsg_type = RTM_GETNEIGH;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.nh.nlmsg_seq = 1;
    req.nd.ndm_family = a.family == 6 ? AF_INET6 : AF_INET;
    if (send(fd.get(), &req, sizeof(req), 0) < 0)
        fail("cannot ask for the neighbour table: {}", errno_str(errno));

    const size_t addr_len = a.family == 6 ? 16 : 4;
    const uint16_t usable = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP;
    std::optional<MacAddr> found;
    std::vector<char> buf(1 << 16);
    while (true) {
        ssize_t n = recv(fd.get(), buf.data(), buf.size(), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail("cannot read the neighbour table: {}", errno_str(errno));
        }
        for (auto* nh = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(nh, size_t(n));
             nh = NLMSG_NEXT(nh, n)) {
            if (nh->nlmsg_type == NLMSG_DONE)
                return found;
            if (nh->nlmsg_type == NLMSG_ERROR)
                fail("the kernel refused the neighbour table dump");
            if (nh->nlmsg_type != RTM_NEWNEIGH)
                continue;
            auto* nd = static_cast<ndmsg*>(NLMSG_DATA(nh));
            if (!(nd->ndm_state & usable))
                continue;
            int len = int(RTM_PAYLOAD(nh));
            const void* dst = nullptr;
            const void* lladdr = nullptr;
            size_t dst_len = 0, ll_len = 0;
            for (auto* rta = RTM_RTA(nd); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
                if (rta->rta_type == NDA_DST) {
                    dst = RTA_DATA(rta);
                    dst_len = RTA_PAYLOAD(rta);
                } else if (rta->rta_type == NDA_LLADDR) {
                    lladdr = RTA_DATA(rta);
                    ll_len = RTA_PAYLOAD(rta);
                }
            }
            if (dst && lladdr && dst_len == addr_len && ll_len == 6 &&
                std::memcmp(dst, a.w, addr_len) == 0 && !found) {
                MacAddr m;
                std::memcpy(m.data(), lladdr, 6);
                found = m;
            }
        }
    }
}

}  // namespace xdpctl::lb
