#include "reference_parser.h"

#include <cstring>

namespace xdpctl::test {

namespace {

constexpr size_t kEthHlen = 14;
constexpr uint16_t kTpid8021Q = 0x8100, kTpid8021AD = 0x88a8;
constexpr uint16_t kEtherIpv4 = 0x0800, kEtherIpv6 = 0x86dd, kEtherArp = 0x0806;
constexpr uint8_t kIcmp = 1, kTcp = 6, kUdp = 17, kIcmpv6 = 58;
constexpr uint8_t kHopByHop = 0, kRouting = 43, kFragment = 44, kAh = 51, kDstOpts = 60;
// xdpctl's bound: every header after the fixed IPv6 header starts within the first 4 KiB.
constexpr size_t kMaxHdrStart = 0xfff;

uint16_t be16(const std::vector<uint8_t>& f, size_t off) { return uint16_t(f[off] << 8 | f[off + 1]); }

// RFC 8200 section 4: the headers that chain on (ESP and "no next header" end the chain;
// their contents are opaque). AH (RFC 4302) chains like them.
bool is_ipv6_ext(uint8_t nh)
{
    return nh == kHopByHop || nh == kRouting || nh == kFragment || nh == kAh || nh == kDstOpts;
}

// The upper-layer header at `off`; it must end within the IP packet (`ip_end`), whatever
// Ethernet padding follows.
int parse_upper_layer(const std::vector<uint8_t>& f, size_t off, size_t ip_end, RefParse& r)
{
    size_t fixed = 8;  // UDP (RFC 768), ICMP (RFC 792) and ICMPv6 (RFC 4443): 8 bytes
    switch (r.l4_proto) {
    case kTcp:
        r.l4_cnt = XDPCTL_CNT_L4_TCP;
        fixed = 20;
        break;
    case kUdp:
        r.l4_cnt = XDPCTL_CNT_L4_UDP;
        break;
    case kIcmp:
        r.l4_cnt = XDPCTL_CNT_L4_ICMP;
        break;
    case kIcmpv6:
        r.l4_cnt = XDPCTL_CNT_L4_ICMPV6;
        break;
    default:
        r.l4_cnt = XDPCTL_CNT_L4_OTHER;
        return 0;
    }
    if (off + fixed > ip_end)
        return XDPCTL_CNT_BAD_L4_TRUNCATED;
    if (r.l4_proto == kTcp) {
        // RFC 9293: the data offset counts 32-bit words, at least 5, and the options it
        // announces are part of the header.
        const size_t doff = f[off + 12] >> 4;
        if (doff < 5 || off + doff * 4 > ip_end)
            return XDPCTL_CNT_BAD_TCP_HDR;
        r.tcp_flags = f[off + 13];
    }
    if (r.l4_proto == kTcp || r.l4_proto == kUdp) {
        r.sport = be16(f, off);
        r.dport = be16(f, off + 2);
    } else {
        r.sport = f[off];      // type
        r.dport = f[off + 1];  // code
    }
    r.l4_ok = true;
    return 0;
}

int parse_ipv4(const std::vector<uint8_t>& f, size_t l3, RefParse& r)
{
    const size_t avail = f.size() - l3;
    if (avail < 20)
        return XDPCTL_CNT_BAD_IPV4_TRUNCATED;
    const unsigned version = f[l3] >> 4, ihl = f[l3] & 0xf;
    if (version != 4 || ihl < 5)
        return XDPCTL_CNT_BAD_IPV4_HDR;
    const size_t hlen = ihl * 4u;
    if (hlen > avail)
        return XDPCTL_CNT_BAD_IPV4_TRUNCATED;
    // Total length covers header and data; Ethernet padding may follow, so the frame can be
    // longer, never shorter.
    const size_t total = be16(f, l3 + 2);
    if (total < hlen || total > avail)
        return XDPCTL_CNT_BAD_IPV4_LENGTH;
    r.ip_ok = true;
    std::memcpy(r.saddr, &f[l3 + 12], 4);
    std::memcpy(r.daddr, &f[l3 + 16], 4);
    r.l4_proto = f[l3 + 9];
    const uint16_t flags_offset = be16(f, l3 + 6);
    if (flags_offset & 0x1fff) {  // a fragment offset: the upper-layer header is elsewhere
        r.frag = 2;
        r.l4_cnt = XDPCTL_CNT_L4_FRAGMENT;
        return 0;
    }
    if (flags_offset & 0x2000)  // more fragments, offset 0
        r.frag = 1;
    return parse_upper_layer(f, l3 + hlen, l3 + total, r);
}

int parse_ipv6(const std::vector<uint8_t>& f, size_t l3, RefParse& r)
{
    const size_t avail = f.size() - l3;
    if (avail < 40)
        return XDPCTL_CNT_BAD_IPV6_TRUNCATED;
    if (f[l3] >> 4 != 6)
        return XDPCTL_CNT_BAD_IPV6_HDR;
    const size_t ip_end = l3 + 40 + be16(f, l3 + 4);
    if (ip_end > f.size())
        return XDPCTL_CNT_BAD_IPV6_LENGTH;
    r.ip_ok = true;
    std::memcpy(r.saddr, &f[l3 + 8], 16);
    std::memcpy(r.daddr, &f[l3 + 24], 16);

    uint8_t nh = f[l3 + 6];
    size_t off = l3 + 40;
    for (int n = 0; is_ipv6_ext(nh); n++) {
        if (n == XDPCTL_MAX_IPV6_EXT || off > kMaxHdrStart)
            return XDPCTL_CNT_BAD_EXT_CHAIN;
        // Every extension header has at least 8 bytes (RFC 8200 4.3-4.6, RFC 4302 2.2 with
        // its ICV): next header, length, and at least 6 more.
        if (off + 8 > ip_end)
            return XDPCTL_CNT_BAD_EXT_TRUNCATED;
        const uint8_t this_hdr = nh;
        nh = f[off];
        if (this_hdr == kFragment) {
            const uint16_t offset_flags = be16(f, off + 2);
            off += 8;
            if (offset_flags & 0xfff8) {  // a later fragment: what follows is its data
                if (off > kMaxHdrStart)
                    return XDPCTL_CNT_BAD_EXT_CHAIN;
                r.frag = 2;
                r.l4_proto = nh;
                r.l4_cnt = XDPCTL_CNT_L4_FRAGMENT;
                return 0;
            }
            if (offset_flags & 1)  // M flag
                r.frag = 1;
            continue;
        }
        // Hdr Ext Len: AH in 4-octet units minus 2 (RFC 4302), the others in 8-octet units
        // not counting the first 8 (RFC 8200).
        const size_t len = this_hdr == kAh ? (f[off + 1] + 2u) * 4 : (f[off + 1] + 1u) * 8;
        if (off + len > ip_end)
            return XDPCTL_CNT_BAD_EXT_TRUNCATED;
        off += len;
    }
    if (off > kMaxHdrStart)
        return XDPCTL_CNT_BAD_EXT_CHAIN;
    r.l4_proto = nh;
    return parse_upper_layer(f, off, ip_end, r);
}

int parse(const std::vector<uint8_t>& f, RefParse& r)
{
    if (f.size() < kEthHlen)
        return XDPCTL_CNT_BAD_ETH_TRUNCATED;
    uint16_t type = be16(f, 12);
    size_t off = kEthHlen;
    // 802.1Q C-tags and 802.1ad S-tags, in any order, at most XDPCTL_MAX_VLANS of them.
    while (type == kTpid8021Q || type == kTpid8021AD) {
        if (r.n_vlans == XDPCTL_MAX_VLANS)
            return XDPCTL_CNT_BAD_VLAN_TOO_MANY;
        if (off + 4 > f.size())
            return XDPCTL_CNT_BAD_VLAN_TRUNCATED;
        r.vlan_id[r.n_vlans++] = be16(f, off) & 0x0fff;
        type = be16(f, off + 2);
        off += 4;
    }
    r.l3_proto = type;
    switch (type) {
    case kEtherIpv4:
        r.l3_cnt = XDPCTL_CNT_L3_IPV4;
        return parse_ipv4(f, off, r);
    case kEtherIpv6:
        r.l3_cnt = XDPCTL_CNT_L3_IPV6;
        return parse_ipv6(f, off, r);
    case kEtherArp:
        r.l3_cnt = XDPCTL_CNT_L3_ARP;
        return 0;
    default:
        r.l3_cnt = XDPCTL_CNT_L3_OTHER;
        return 0;
    }
}

}  // namespace

RefParse reference_parse(const std::vector<uint8_t>& frame)
{
    RefParse r;
    r.malformed = parse(frame, r);
    return r;
}

}  // namespace xdpctl::test
