// Builds Ethernet frames layer by layer, so a caller reads as the headers it sends rather
// than as a hex blob: `xdpctl explain` builds the packet it is asked about with it, and the
// packet tests and benchmarks build theirs (tests/packet_builder.h). Lengths, IHL, data
// offsets and checksums are filled in from what was built; the "break" calls override one
// of them to make a malformed frame on purpose.
//
// The default addresses are from the benchmarking ranges (198.18.0.0/15, 2001:2::/48, RFC 2544 and
// RFC 5180), so a frame that escapes a test netns routes nowhere.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace xdpctl::net {

using Mac = std::array<uint8_t, 6>;
using Ipv4Addr = std::array<uint8_t, 4>;
using Ipv6Addr = std::array<uint8_t, 16>;

// Locally administered, so they never collide with a real NIC's address.
inline constexpr Mac kSrcMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
inline constexpr Mac kDstMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
inline constexpr Ipv4Addr kSrcIpv4{198, 18, 0, 1};
inline constexpr Ipv4Addr kDstIpv4{198, 19, 0, 2};
inline constexpr Ipv6Addr kSrcIpv6{0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
inline constexpr Ipv6Addr kDstIpv6{0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02};

inline constexpr uint16_t kTpid8021Q = 0x8100;
inline constexpr uint16_t kTpid8021AD = 0x88a8;

// IPv6 extension headers the builder knows; the values are their next-header numbers.
enum class Ext : uint8_t {
    hop_by_hop = 0,
    routing = 43,
    fragment = 44,
    ah = 51,
    dstopts = 60,
};

namespace tcp_flags {
inline constexpr uint8_t fin = 0x01, syn = 0x02, rst = 0x04, psh = 0x08, ack = 0x10;
}

struct Ipv4Opts {
    Ipv4Addr src = kSrcIpv4;
    Ipv4Addr dst = kDstIpv4;
    size_t options_len = 0;        // multiple of 4, at most 40
    uint16_t frag_offset = 0;      // in 8-byte units, as on the wire
    bool more_fragments = false;
    uint16_t id = 0x1234;
    uint8_t ttl = 64;
    std::optional<uint8_t> protocol{};  // default: from the next layer, else 255 (reserved)
};

struct Ipv6Opts {
    Ipv6Addr src = kSrcIpv6;
    Ipv6Addr dst = kDstIpv6;
    uint8_t hop_limit = 64;
    std::optional<uint8_t> next_header{};  // default: from the next layer, else 59 (none)
};

struct TcpOpts {
    uint16_t sport = 40000;
    uint16_t dport = 80;
    uint8_t flags = tcp_flags::syn;
    size_t options_len = 0;  // multiple of 4, at most 40
    uint32_t seq = 1;
    uint32_t ack = 0;
};

// The frame as built, plus where each header starts: tests derive expectations from these
// offsets instead of repeating header sizes.
struct Frame {
    std::vector<uint8_t> bytes;
    size_t l3_off = 0;               // after Ethernet and tags
    std::vector<size_t> ext_offs;    // IPv6 extension headers, in order
    std::optional<size_t> l4_off;    // TCP/UDP/ICMP/ICMPv6 header
    size_t l3_end = 0;               // end of the IP packet (before Ethernet padding)
};

class PacketBuilder {
public:
    PacketBuilder& eth(const Mac& dst, const Mac& src);
    // One tag; the first call is the outermost tag. tpid 0x8100 (802.1Q) or 0x88a8 (802.1ad).
    PacketBuilder& vlan(uint16_t vid, uint16_t tpid = kTpid8021Q);
    // 802.1ad service tag outside an 802.1Q customer tag.
    PacketBuilder& qinq(uint16_t outer_vid, uint16_t inner_vid);
    // The EtherType after the tags, whatever follows. Default: the next layer's, or 0x88b5
    // (local experimental) when no IPv4/IPv6/ARP layer follows.
    PacketBuilder& ethertype(uint16_t type);

    PacketBuilder& ipv4(const Ipv4Opts& o = {});
    PacketBuilder& ipv6(const Ipv6Opts& o = {});
    // len: total bytes of the header (hop-by-hop/routing/dstopts: multiple of 8, >= 8;
    // AH: multiple of 4, >= 12); 0 picks 8, or 16 for AH (IPv6 wants 8-byte multiples).
    // The fragment header is always 8 bytes (offset 0, no more fragments: atomic).
    PacketBuilder& ext(Ext kind, size_t len = 0);
    // next_header: the protocol after it when no layer follows (a later fragment's payload).
    PacketBuilder& ext_fragment(uint16_t offset, bool more, uint32_t id = 0xabcd,
                                std::optional<uint8_t> next_header = {});

    PacketBuilder& tcp(const TcpOpts& o = {});
    PacketBuilder& udp(uint16_t sport = 40000, uint16_t dport = 53);
    PacketBuilder& icmp_echo(uint16_t id = 1, uint16_t seq = 1);
    PacketBuilder& icmpv6_echo(uint16_t id = 1, uint16_t seq = 1);
    PacketBuilder& arp_request(const Ipv4Addr& sender = kSrcIpv4, const Ipv4Addr& target = kDstIpv4);
    // Bytes after the last header: n bytes counting up from `first`, or exactly these.
    PacketBuilder& payload(size_t n, uint8_t first = 0);
    PacketBuilder& payload(const std::vector<uint8_t>& bytes);

    // ---- breaking a frame on purpose; each applies to the last header of its kind ----
    PacketBuilder& ip_version(uint8_t version);  // the last IPv4 or IPv6 header
    PacketBuilder& ihl(uint8_t ihl);
    PacketBuilder& ipv4_total_length(uint16_t len);
    PacketBuilder& ipv6_payload_length(uint16_t len);
    PacketBuilder& tcp_doff(uint8_t doff);
    // Zero bytes after the IP packet up to `len` (Ethernet minimum frame: 60 without FCS).
    PacketBuilder& pad_to(size_t len);
    // Cut the built frame to n bytes. With fit_lengths the IPv4 total length / IPv6 payload
    // length and UDP length describe the cut frame (a short packet sent as such); without,
    // they still describe the whole packet (a frame cut in flight).
    PacketBuilder& truncate(size_t n, bool fit_lengths = false);

    Frame build_frame() const;
    std::vector<uint8_t> build() const { return build_frame().bytes; }

private:
    struct Vlan {
        uint16_t tpid, vid;
    };
    struct Ipv4 {
        Ipv4Opts o;
        std::optional<uint8_t> version, ihl;
        std::optional<uint16_t> tot_len;
    };
    struct Ipv6 {
        Ipv6Opts o;
        std::optional<uint8_t> version;
        std::optional<uint16_t> payload_len;
    };
    struct ExtHdr {
        Ext kind;
        size_t len;
        uint16_t frag_offset;
        bool more;
        uint32_t id;
        std::optional<uint8_t> next_header;
    };
    struct Tcp {
        TcpOpts o;
        std::optional<uint8_t> doff;
    };
    struct Udp {
        uint16_t sport, dport;
    };
    struct Icmp {
        bool v6;
        uint16_t id, seq;
    };
    struct Arp {
        Ipv4Addr sender, target;
    };
    struct Payload {
        std::vector<uint8_t> bytes;
    };
    using Layer = std::variant<Vlan, Ipv4, Ipv6, ExtHdr, Tcp, Udp, Icmp, Arp, Payload>;

    template <typename T>
    T& last(const char* what);
    uint16_t ethertype_of(size_t layer) const;
    uint8_t ip_proto_of(size_t layer, uint8_t fallback) const;

    Mac dst_ = kDstMac, src_ = kSrcMac;
    std::optional<uint16_t> ethertype_;
    std::vector<Layer> layers_;
    std::optional<size_t> pad_to_;
    std::optional<size_t> truncate_;
    bool fit_lengths_ = false;
};

// The Internet checksum (RFC 1071) of bytes, folded and complemented.
uint16_t inet_checksum(const uint8_t* data, size_t len, uint32_t initial = 0);

}  // namespace xdpctl::net
