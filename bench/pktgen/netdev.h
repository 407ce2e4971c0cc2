// What xdpctl-pktgen needs to know about its interface, in the namespace it runs in: index,
// state, MTU, MAC address, and the driver's XDP transmit counters.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace xdpctl::pktgen {

struct NetdevInfo {
    int ifindex = 0;
    bool up = false;
    unsigned mtu = 0;
    std::array<uint8_t, 6> mac{};
    std::string driver;  // "veth", ... (empty when the driver does not say)
};

// Fails (runtime error) when the interface does not exist in the current namespace.
NetdevInfo netdev_info(const std::string& ifname);

// Frames handed to the peer by XDP transmits, as veth counts them on the sending side
// (ethtool -S: tx_queue_N_xdp_xmit / tx_queue_N_xdp_xmit_errors, summed over queues).
// `known` is false for drivers without these counters.
struct XmitCounters {
    bool known = false;
    uint64_t xmit = 0;
    uint64_t errors = 0;
};
XmitCounters xdp_xmit_counters(const std::string& ifname);

}  // namespace xdpctl::pktgen
