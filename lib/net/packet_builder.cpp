#include "net/packet_builder.h"

#include <algorithm>
#include <stdexcept>

namespace xdpctl::net {

namespace {

constexpr uint16_t kEthIpv4 = 0x0800;
constexpr uint16_t kEthIpv6 = 0x86dd;
constexpr uint16_t kEthArp = 0x0806;
constexpr uint16_t kEthExperimental = 0x88b5;
constexpr uint8_t kProtoTcp = 6, kProtoUdp = 17, kProtoIcmp = 1, kProtoIcmpv6 = 58;
constexpr uint8_t kProtoReserved = 255, kProtoNoNext = 59;

void put8(std::vector<uint8_t>& b, uint8_t v) { b.push_back(v); }
void put16(std::vector<uint8_t>& b, uint16_t v)
{
    b.push_back(uint8_t(v >> 8));
    b.push_back(uint8_t(v));
}
void put32(std::vector<uint8_t>& b, uint32_t v)
{
    put16(b, uint16_t(v >> 16));
    put16(b, uint16_t(v));
}
template <size_t N>
void put(std::vector<uint8_t>& b, const std::array<uint8_t, N>& a)
{
    b.insert(b.end(), a.begin(), a.end());
}
void set16(std::vector<uint8_t>& b, size_t off, uint16_t v)
{
    b[off] = uint8_t(v >> 8);
    b[off + 1] = uint8_t(v);
}

uint16_t clamp16(long v) { return uint16_t(std::clamp<long>(v, 0, 0xffff)); }

uint32_t sum16(const uint8_t* data, size_t len, uint32_t acc)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        acc += uint32_t(data[i]) << 8 | data[i + 1];
    if (len & 1)
        acc += uint32_t(data[len - 1]) << 8;
    return acc;
}

template <typename... Ts>
struct Overloaded : Ts... {
    using Ts::operator()...;
};
// Spelled out for clang 14 (the fuzz build), which does not deduce it for an aggregate.
template <typename... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace

uint16_t inet_checksum(const uint8_t* data, size_t len, uint32_t initial)
{
    uint32_t acc = sum16(data, len, initial);
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return uint16_t(~acc);
}

template <typename T>
T& PacketBuilder::last(const char* what)
{
    for (auto it = layers_.rbegin(); it != layers_.rend(); ++it)
        if (auto* l = std::get_if<T>(&*it))
            return *l;
    throw std::logic_error(std::string("packet builder: no ") + what + " header to modify");
}

PacketBuilder& PacketBuilder::eth(const Mac& dst, const Mac& src)
{
    dst_ = dst;
    src_ = src;
    return *this;
}

PacketBuilder& PacketBuilder::vlan(uint16_t vid, uint16_t tpid)
{
    layers_.emplace_back(Vlan{tpid, vid});
    return *this;
}

PacketBuilder& PacketBuilder::qinq(uint16_t outer_vid, uint16_t inner_vid)
{
    return vlan(outer_vid, kTpid8021AD).vlan(inner_vid, kTpid8021Q);
}

PacketBuilder& PacketBuilder::ethertype(uint16_t type)
{
    ethertype_ = type;
    return *this;
}

PacketBuilder& PacketBuilder::ipv4(const Ipv4Opts& o)
{
    if (o.options_len % 4 || o.options_len > 40)
        throw std::invalid_argument("IPv4 options: a multiple of 4, at most 40 bytes");
    layers_.emplace_back(Ipv4{o, {}, {}, {}});
    return *this;
}

PacketBuilder& PacketBuilder::ipv6(const Ipv6Opts& o)
{
    layers_.emplace_back(Ipv6{o, {}, {}});
    return *this;
}

PacketBuilder& PacketBuilder::ext(Ext kind, size_t len)
{
    if (len == 0)
        len = kind == Ext::ah ? 16 : 8;
    switch (kind) {
    case Ext::fragment:
        return ext_fragment(0, false);
    case Ext::ah:
        if (len % 4 || len < 12 || len / 4 - 2 > 255)
            throw std::invalid_argument("AH: a multiple of 4 bytes, 12 to 1028");
        break;
    default:
        if (len % 8 || len < 8 || len / 8 - 1 > 255)
            throw std::invalid_argument("extension header: a multiple of 8 bytes, 8 to 2048");
        break;
    }
    layers_.emplace_back(ExtHdr{kind, len, 0, false, 0, {}});
    return *this;
}

PacketBuilder& PacketBuilder::ext_fragment(uint16_t offset, bool more, uint32_t id,
                                          std::optional<uint8_t> next_header)
{
    if (offset > 0x1fff)
        throw std::invalid_argument("fragment offset: 13 bits");
    layers_.emplace_back(ExtHdr{Ext::fragment, 8, offset, more, id, next_header});
    return *this;
}

PacketBuilder& PacketBuilder::tcp(const TcpOpts& o)
{
    if (o.options_len % 4 || o.options_len > 40)
        throw std::invalid_argument("TCP options: a multiple of 4, at most 40 bytes");
    layers_.emplace_back(Tcp{o, {}});
    return *this;
}

PacketBuilder& PacketBuilder::udp(uint16_t sport, uint16_t dport)
{
    layers_.emplace_back(Udp{sport, dport});
    return *this;
}

PacketBuilder& PacketBuilder::icmp_echo(uint16_t id, uint16_t seq)
{
    layers_.emplace_back(Icmp{false, id, seq});
    return *this;
}

PacketBuilder& PacketBuilder::icmpv6_echo(uint16_t id, uint16_t seq)
{
    layers_.emplace_back(Icmp{true, id, seq});
    return *this;
}

PacketBuilder& PacketBuilder::arp_request(const Ipv4Addr& sender, const Ipv4Addr& target)
{
    layers_.emplace_back(Arp{sender, target});
    return *this;
}

PacketBuilder& PacketBuilder::payload(size_t n, uint8_t first)
{
    std::vector<uint8_t> bytes(n);
    for (size_t i = 0; i < n; i++)
        bytes[i] = uint8_t(first + i);
    return payload(bytes);
}

PacketBuilder& PacketBuilder::payload(const std::vector<uint8_t>& bytes)
{
    layers_.emplace_back(Payload{bytes});
    return *this;
}

PacketBuilder& PacketBuilder::ip_version(uint8_t version)
{
    for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) {
        if (auto* v4 = std::get_if<Ipv4>(&*it)) {
            v4->version = version;
            return *this;
        }
        if (auto* v6 = std::get_if<Ipv6>(&*it)) {
            v6->version = version;
            return *this;
        }
    }
    throw std::logic_error("packet builder: no IP header to modify");
}

PacketBuilder& PacketBuilder::ihl(uint8_t ihl)
{
    last<Ipv4>("IPv4").ihl = ihl;
    return *this;
}

PacketBuilder& PacketBuilder::ipv4_total_length(uint16_t len)
{
    last<Ipv4>("IPv4").tot_len = len;
    return *this;
}

PacketBuilder& PacketBuilder::ipv6_payload_length(uint16_t len)
{
    last<Ipv6>("IPv6").payload_len = len;
    return *this;
}

PacketBuilder& PacketBuilder::tcp_doff(uint8_t doff)
{
    last<Tcp>("TCP").doff = doff;
    return *this;
}

PacketBuilder& PacketBuilder::pad_to(size_t len)
{
    pad_to_ = len;
    return *this;
}

PacketBuilder& PacketBuilder::truncate(size_t n, bool fit_lengths)
{
    truncate_ = n;
    fit_lengths_ = fit_lengths;
    return *this;
}

uint16_t PacketBuilder::ethertype_of(size_t layer) const
{
    if (layer < layers_.size() && std::holds_alternative<Vlan>(layers_[layer]))
        return std::get<Vlan>(layers_[layer]).tpid;
    if (ethertype_)
        return *ethertype_;
    if (layer >= layers_.size())
        return kEthExperimental;
    return std::visit(Overloaded{
                          [](const Ipv4&) { return kEthIpv4; },
                          [](const Ipv6&) { return kEthIpv6; },
                          [](const Arp&) { return kEthArp; },
                          [](const auto&) { return kEthExperimental; },
                      },
                      layers_[layer]);
}

uint8_t PacketBuilder::ip_proto_of(size_t layer, uint8_t fallback) const
{
    if (layer >= layers_.size())
        return fallback;
    return std::visit(Overloaded{
                          [](const ExtHdr& e) { return uint8_t(e.kind); },
                          [](const Tcp&) { return kProtoTcp; },
                          [](const Udp&) { return kProtoUdp; },
                          [](const Icmp& i) { return i.v6 ? kProtoIcmpv6 : kProtoIcmp; },
                          [&](const auto&) { return fallback; },
                      },
                      layers_[layer]);
}

Frame PacketBuilder::build_frame() const
{
    Frame f;
    std::vector<uint8_t>& b = f.bytes;
    std::vector<size_t> offs(layers_.size());

    put(b, dst_);
    put(b, src_);
    put16(b, ethertype_of(0));
    f.l3_off = b.size();

    // First pass: every header with the fields that depend on nothing after it.
    for (size_t i = 0; i < layers_.size(); i++) {
        offs[i] = b.size();
        std::visit(
            Overloaded{
                [&](const Vlan& v) {
                    put16(b, v.vid & 0x0fff);
                    put16(b, ethertype_of(i + 1));
                    f.l3_off = b.size();
                },
                [&](const Ipv4& ip) {
                    size_t hlen = 20 + ip.o.options_len;
                    put8(b, uint8_t(ip.version.value_or(4) << 4 | (ip.ihl.value_or(hlen / 4) & 0xf)));
                    put8(b, 0);
                    put16(b, 0);  // total length, second pass
                    put16(b, ip.o.id);
                    put16(b, uint16_t((ip.o.more_fragments ? 0x2000 : 0) | (ip.o.frag_offset & 0x1fff)));
                    put8(b, ip.o.ttl);
                    put8(b, ip.o.protocol.value_or(ip_proto_of(i + 1, kProtoReserved)));
                    put16(b, 0);  // checksum, second pass
                    put(b, ip.o.src);
                    put(b, ip.o.dst);
                    b.insert(b.end(), ip.o.options_len, 1);  // NOP options
                },
                [&](const Ipv6& ip) {
                    put32(b, uint32_t(ip.version.value_or(6)) << 28);
                    put16(b, 0);  // payload length, second pass
                    put8(b, ip.o.next_header.value_or(ip_proto_of(i + 1, kProtoNoNext)));
                    put8(b, ip.o.hop_limit);
                    put(b, ip.o.src);
                    put(b, ip.o.dst);
                },
                [&](const ExtHdr& e) {
                    f.ext_offs.push_back(b.size());
                    put8(b, ip_proto_of(i + 1, e.next_header.value_or(kProtoNoNext)));
                    switch (e.kind) {
                    case Ext::fragment:
                        put8(b, 0);
                        put16(b, uint16_t(e.frag_offset << 3 | (e.more ? 1 : 0)));
                        put32(b, e.id);
                        break;
                    case Ext::ah:
                        put8(b, uint8_t(e.len / 4 - 2));
                        put16(b, 0);
                        put32(b, 0x100);  // SPI
                        put32(b, 1);      // sequence number
                        b.insert(b.end(), e.len - 12, 0);  // ICV
                        break;
                    case Ext::routing:
                        put8(b, uint8_t(e.len / 8 - 1));
                        put8(b, 253);  // RFC 4727 experimental type: no address list to fake
                        put8(b, 0);    // segments left: nothing for a router to do
                        b.insert(b.end(), e.len - 4, 0);
                        break;
                    default:
                        // Hop-by-hop and destination options: one PadN option fills the rest,
                        // so the header is valid for a real stack too.
                        put8(b, uint8_t(e.len / 8 - 1));
                        put8(b, 1);
                        put8(b, uint8_t(e.len - 4));
                        b.insert(b.end(), e.len - 4, 0);
                        break;
                    }
                },
                [&](const Tcp& t) {
                    f.l4_off = b.size();
                    size_t hlen = 20 + t.o.options_len;
                    put16(b, t.o.sport);
                    put16(b, t.o.dport);
                    put32(b, t.o.seq);
                    put32(b, t.o.ack);
                    put8(b, uint8_t(t.doff.value_or(hlen / 4) << 4));
                    put8(b, t.o.flags);
                    put16(b, 65535);
                    put16(b, 0);  // checksum, second pass
                    put16(b, 0);
                    b.insert(b.end(), t.o.options_len, 1);  // NOP options
                },
                [&](const Udp& u) {
                    f.l4_off = b.size();
                    put16(b, u.sport);
                    put16(b, u.dport);
                    put16(b, 0);  // length and checksum, second pass
                    put16(b, 0);
                },
                [&](const Icmp& ic) {
                    f.l4_off = b.size();
                    put8(b, ic.v6 ? 128 : 8);  // echo request
                    put8(b, 0);
                    put16(b, 0);
                    put16(b, ic.id);
                    put16(b, ic.seq);
                },
                [&](const Arp& a) {
                    put16(b, 1);  // Ethernet
                    put16(b, kEthIpv4);
                    put8(b, 6);
                    put8(b, 4);
                    put16(b, 1);  // request
                    put(b, src_);
                    put(b, a.sender);
                    put(b, Mac{});
                    put(b, a.target);
                },
                [&](const Payload& p) { b.insert(b.end(), p.bytes.begin(), p.bytes.end()); },
            },
            layers_[i]);
    }

    // Second pass, innermost first: lengths, then the checksums that cover them. With
    // fit_lengths the packet ends where the frame will be cut.
    size_t end = b.size();
    if (truncate_ && fit_lengths_)
        end = std::min(end, *truncate_);
    f.l3_end = end;
    auto covered = [&](size_t off) { return off < end ? end - off : 0; };

    const Ipv4* ip4 = nullptr;
    const Ipv6* ip6 = nullptr;
    for (size_t i = 0; i < layers_.size(); i++) {
        // An L4 checksum needs the addresses of the IP header it follows.
        if (auto* v4 = std::get_if<Ipv4>(&layers_[i])) {
            ip4 = v4;
            ip6 = nullptr;
        } else if (auto* v6 = std::get_if<Ipv6>(&layers_[i])) {
            ip6 = v6;
            ip4 = nullptr;
        }
        const size_t off = offs[i];
        const size_t l4_len = covered(off);
        auto pseudo = [&](uint8_t proto) -> uint32_t {
            std::vector<uint8_t> ph;
            if (ip4) {
                put(ph, ip4->o.src);
                put(ph, ip4->o.dst);
                put8(ph, 0);
                put8(ph, proto);
                put16(ph, clamp16(long(l4_len)));
            } else if (ip6) {
                put(ph, ip6->o.src);
                put(ph, ip6->o.dst);
                put32(ph, uint32_t(l4_len));
                put32(ph, proto);
            }
            return sum16(ph.data(), ph.size(), 0);
        };
        auto l4_sum = [&](size_t csum_off, uint8_t proto, bool with_pseudo) {
            if (csum_off + 2 > end)
                return;
            uint16_t c = inet_checksum(&b[off], l4_len, with_pseudo ? pseudo(proto) : 0);
            // UDP sends a computed 0 as 0xffff: 0 means "no checksum".
            if (proto == kProtoUdp && c == 0)
                c = 0xffff;
            set16(b, csum_off, c);
        };
        std::visit(Overloaded{
                       [&](const Tcp&) { l4_sum(off + 16, kProtoTcp, true); },
                       [&](const Udp&) {
                           if (off + 6 <= b.size())
                               set16(b, off + 4, clamp16(long(l4_len)));
                           l4_sum(off + 6, kProtoUdp, true);
                       },
                       [&](const Icmp& ic) {
                           l4_sum(off + 2, ic.v6 ? kProtoIcmpv6 : kProtoIcmp, ic.v6);
                       },
                       [](const auto&) {},
                   },
                   layers_[i]);
    }

    for (size_t i = 0; i < layers_.size(); i++) {
        const size_t off = offs[i];
        if (auto* v4 = std::get_if<Ipv4>(&layers_[i])) {
            set16(b, off + 2, v4->tot_len.value_or(clamp16(long(covered(off)))));
            size_t hlen = 20 + v4->o.options_len;
            set16(b, off + 10, inet_checksum(&b[off], hlen));
        } else if (auto* v6 = std::get_if<Ipv6>(&layers_[i])) {
            set16(b, off + 4, v6->payload_len.value_or(clamp16(long(covered(off)) - 40)));
        }
    }

    if (pad_to_ && b.size() < *pad_to_)
        b.resize(*pad_to_, 0);
    if (truncate_ && b.size() > *truncate_)
        b.resize(*truncate_);
    return f;
}

}  // namespace xdpctl::net
