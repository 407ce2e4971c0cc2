// The packet `xdpctl explain` is asked about, written as a short line:
//
//   tcp|udp|icmp|icmpv6|proto N  SRC[:PORT] -> DST[:PORT]  [vlan ID]... [iif IFACE]
//                                [flags syn,ack] [fragment] [len N]
//
// IPv6 with a port as [ADDR]:PORT. Ports need tcp or udp, flags need tcp; `fragment` makes a
// non-first fragment (no L4 header, so no ports or flags); `vlan` up to twice (outermost
// first: 802.1ad outside 802.1Q); `len` pads the frame to N bytes. Every error is a usage
// error naming the token.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace xdpctl::explain {

struct PacketSpec {
    bool ipv6 = false;
    std::array<uint8_t, 16> src{}, dst{};  // network order; IPv4 in the first 4 bytes
    uint8_t proto = 6;
    std::optional<uint16_t> sport, dport;
    std::vector<uint16_t> vlans;           // outermost first
    std::string iif;                       // empty: not given
    std::optional<uint8_t> tcp_flags;      // default: SYN
    bool fragment = false;                 // a non-first fragment
    std::optional<size_t> len;             // the frame's length in bytes
};

// Largest frame `len` accepts: a full-size Ethernet frame with two VLAN tags.
inline constexpr size_t kMaxSpecFrame = 1522;

// The words may be one quoted string or many arguments: they are joined and split again.
PacketSpec parse_packet_spec(const std::vector<std::string>& words);

// The Ethernet frame the spec describes (payload bytes counting up, checksums filled in).
std::vector<uint8_t> build_frame(const PacketSpec& s);

}  // namespace xdpctl::explain
