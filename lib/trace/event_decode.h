// What `xdpctl trace` shows of a decision event (abi/xdpctl_abi.h: struct xdpctl_event): the
// addresses and ports read back from the packet bytes it carries, as text and as JSON.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "abi/xdpctl_abi.h"

namespace xdpctl::trace {

// The headers of the event's first bytes: Ethernet, up to two VLAN tags, IPv4 or IPv6
// (fixed header), TCP/UDP ports or ICMP type/code. Fields past what was captured stay empty.
struct EventHeaders {
    uint16_t ethertype = 0;  // after the VLAN tags; 0: the frame is shorter than Ethernet
    std::string proto;       // "tcp", "udp", "icmp", "icmpv6", a number, or "" (not IP)
    std::string src, dst;    // addresses; "" when not IP
    int sport = -1, dport = -1;  // TCP/UDP ports; ICMP: type and code; -1: none
};

EventHeaders decode_headers(const xdpctl_event& e);

const char* hook_name(uint32_t hook);

// One event as trace prints it: `time` already as text, `iface` as the interface's name.
std::string event_line(const xdpctl_event& e, const std::string& time, const std::string& iface);
nlohmann::json event_json(const xdpctl_event& e, uint64_t unix_ns, const std::string& iface);

}  // namespace xdpctl::trace
