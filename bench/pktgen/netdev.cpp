#include "netdev.h"

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "util/error.h"
#include "util/unique_fd.h"

namespace xdpctl::pktgen {

namespace {

UniqueFd ctl_socket()
{
    UniqueFd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd)
        fail("cannot open a control socket: {}", errno_str(errno));
    return fd;
}

ifreq make_ifreq(const std::string& ifname)
{
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    return ifr;
}

int ethtool(int fd, const std::string& ifname, void* cmd)
{
    ifreq ifr = make_ifreq(ifname);
    ifr.ifr_data = static_cast<char*>(cmd);
    return ioctl(fd, SIOCETHTOOL, &ifr);
}

bool ends_with(std::string_view s, std::string_view suffix)
{
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

NetdevInfo netdev_info(const std::string& ifname)
{
    if (ifname.empty() || ifname.size() >= IFNAMSIZ)
        fail_usage("'{}' is not a valid interface name", ifname);
    NetdevInfo n;
    n.ifindex = int(if_nametoindex(ifname.c_str()));
    if (!n.ifindex)
        fail("interface '{}' not found in this network namespace (see 'ip link', or give "
             "--netns)",
             ifname);
    UniqueFd fd = ctl_socket();
    ifreq ifr = make_ifreq(ifname);
    if (ioctl(fd.get(), SIOCGIFFLAGS, &ifr) != 0)
        fail("cannot read the flags of '{}': {}", ifname, errno_str(errno));
    n.up = ifr.ifr_flags & IFF_UP;
    ifr = make_ifreq(ifname);
    if (ioctl(fd.get(), SIOCGIFMTU, &ifr) != 0)
        fail("cannot read the MTU of '{}': {}", ifname, errno_str(errno));
    n.mtu = unsigned(ifr.ifr_mtu);
    ifr = make_ifreq(ifname);
    if (ioctl(fd.get(), SIOCGIFHWADDR, &ifr) != 0)
        fail("cannot read the MAC address of '{}': {}", ifname, errno_str(errno));
    std::memcpy(n.mac.data(), ifr.ifr_hwaddr.sa_data, n.mac.size());

    ethtool_drvinfo drv{};
    drv.cmd = ETHTOOL_GDRVINFO;
    if (ethtool(fd.get(), ifname, &drv) == 0)
        n.driver = drv.driver;
    return n;
}

XmitCounters xdp_xmit_counters(const std::string& ifname)
{
    XmitCounters c;
    UniqueFd fd = ctl_socket();

    // ETHTOOL_GSSET_INFO: a header followed by one u32 per requested set.
    std::vector<uint8_t> ibuf(sizeof(ethtool_sset_info) + sizeof(uint32_t));
    auto* info = reinterpret_cast<ethtool_sset_info*>(ibuf.data());
    info->cmd = ETHTOOL_GSSET_INFO;
    info->sset_mask = 1ull << ETH_SS_STATS;
    if (ethtool(fd.get(), ifname, info) != 0 || !info->sset_mask || !info->data[0])
        return c;
    const uint32_t n = info->data[0];

    std::vector<uint8_t> sbuf(sizeof(ethtool_gstrings) + size_t(n) * ETH_GSTRING_LEN);
    auto* strings = reinterpret_cast<ethtool_gstrings*>(sbuf.data());
    strings->cmd = ETHTOOL_GSTRINGS;
    strings->string_set = ETH_SS_STATS;
    strings->len = n;
    if (ethtool(fd.get(), ifname, strings) != 0)
        return c;

    std::vector<uint8_t> vbuf(sizeof(ethtool_stats) + size_t(n) * sizeof(uint64_t));
    auto* stats = reinterpret_cast<ethtool_stats*>(vbuf.data());
    stats->cmd = ETHTOOL_GSTATS;
    stats->n_stats = n;
    if (ethtool(fd.get(), ifname, stats) != 0)
        return c;

    for (uint32_t i = 0; i < n; i++) {
        const char* raw = reinterpret_cast<const char*>(strings->data) + size_t(i) * ETH_GSTRING_LEN;
        const std::string_view name(raw, strnlen(raw, ETH_GSTRING_LEN));
        if (name.substr(0, 9) != "tx_queue_")
            continue;
        if (ends_with(name, "_xdp_xmit_errors")) {
            c.errors += stats->data[i];
            c.known = true;
        } else if (ends_with(name, "_xdp_xmit")) {
            c.xmit += stats->data[i];
            c.known = true;
        }
    }
    return c;
}

}  // namespace xdpctl::pktgen
