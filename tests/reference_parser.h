// A second packet parser, written from the protocol specs (IEEE 802.1Q for the tags, RFC 791
// IPv4, RFC 8200 IPv6 and its extension headers, RFC 4302 AH's length, RFC 9293 TCP, RFC 768
// UDP, RFC 792/4443 ICMP) and from the limits xdpctl documents (lib/abi/xdpctl_abi.h: at
// most XDPCTL_MAX_VLANS tags, XDPCTL_MAX_IPV6_EXT extension headers, headers within 4 KiB),
// not from lib/bpf/parse.h: test_parser_diff runs both on the same frames and wants the
// same answer. Plain byte reads over the whole frame; no speed tricks.
#pragma once

#include <cstdint>
#include <vector>

#include "abi/xdpctl_abi.h"

namespace xdpctl::test {

struct RefParse {
    int malformed = 0;          // 0 or the XDPCTL_CNT_BAD_* reason of the first fault
    uint8_t l3_cnt = XDPCTL_CNT_L3_OTHER;
    uint8_t l4_cnt = XDPCTL_CNT_MAX;  // XDPCTL_CNT_MAX: no L4 class (not IP, or IP header bad)
    uint16_t l3_proto = 0;      // EtherType after the tags; 0 when a tag is bad
    uint8_t n_vlans = 0;
    uint16_t vlan_id[XDPCTL_MAX_VLANS] = {};
    bool ip_ok = false;         // the IPv4/IPv6 header was accepted: addresses are known
    uint8_t saddr[16] = {};     // IPv4: the first 4 bytes
    uint8_t daddr[16] = {};
    uint8_t l4_proto = 0;       // the upper-layer protocol (after a later fragment: its next header)
    uint8_t frag = 0;           // 0 none, 1 first fragment, 2 later fragment
    bool l4_ok = false;         // an L4 header with ports or type/code was read
    uint16_t sport = 0;         // host order; ICMP/ICMPv6: the type
    uint16_t dport = 0;         // host order; ICMP/ICMPv6: the code
    uint8_t tcp_flags = 0;
};

RefParse reference_parse(const std::vector<uint8_t>& frame);

}  // namespace xdpctl::test
