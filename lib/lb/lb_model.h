// What the user names in `xdpctl lb` commands, parsed: VIPs (ADDR:PORT/tcp|udp, IPv6 as
// [ADDR]:PORT/...), backend addresses, MACs, and flows for `lb trace`. Every parse error is
// a usage error (exit 2) that names the token.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "abi/xdpctl_abi.h"

namespace xdpctl::lb {

struct IpAddr {
    uint8_t family = 0;       // 4 or 6
    uint32_t w[4] = {};       // network order; IPv4 in w[0]
    bool operator==(const IpAddr&) const = default;
};

struct VipSpec {
    IpAddr addr;
    uint16_t port = 0;        // host order; 0: every port
    uint8_t proto = 0;        // IPPROTO_TCP or IPPROTO_UDP
};

struct FlowSpec {
    uint8_t proto = 0;
    IpAddr src, dst;
    uint16_t sport = 0, dport = 0;  // host order
};

using MacAddr = std::array<uint8_t, 6>;

IpAddr parse_ip(const std::string& token);            // 198.18.0.1 or 2001:2::1
VipSpec parse_vip(const std::string& token);          // ADDR:PORT/tcp, [ADDR]:PORT/udp
MacAddr parse_mac(const std::string& token);          // 02:00:00:00:00:01
FlowSpec parse_flow(const std::string& text);         // "tcp 198.18.0.2:1234 -> 198.19.0.1:80"

// What a VIP, a backend and a MAC may be (docs/load-balancing.md, "Addresses"): usage
// errors naming the address. Unicast: not 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/4 (multicast),
// 255.255.255.255, ::, ::1 or ff00::/8; link-local addresses are allowed (a backend on the
// LB's link may have one).
void check_unicast(const IpAddr& a, const char* what);
// A backend: unicast, of the VIP's IP family, not the VIP's address; its MAC unicast and
// not zero.
void check_backend_address(const VipSpec& v, const IpAddr& backend, const MacAddr& mac);
// A Maglev table of `ring_size` gives each of `n_backends` at least one position only if
// it has that many: the smallest prime that does is named in the error.
void check_table_fits(const VipSpec& v, uint32_t ring_size, size_t n_backends);

std::string format_ip(const IpAddr& a);
std::string format_vip(const VipSpec& v);             // as parse_vip reads it
std::string format_mac(const MacAddr& m);

xdpctl_lb_vip_key vip_key(const VipSpec& v);
VipSpec vip_spec(const xdpctl_lb_vip_key& k);

}  // namespace xdpctl::lb
