#include "explain/packet_spec.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <sstream>

#include "util/error.h"
#include "attach/iface_ref.h"
#include "net/packet_builder.h"

namespace xdpctl::explain {

namespace {

constexpr uint8_t kTcp = 6, kUdp = 17, kIcmp = 1, kIcmpv6 = 58;
// A later fragment's offset, in 8-byte units: any non-zero value makes it one.
constexpr uint16_t kLaterFragmentOffset = 185;

bool parse_uint(std::string_view s, uint64_t max, uint64_t& out)
{
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return !s.empty() && ec == std::errc{} && p == s.data() + s.size() && out <= max;
}

struct Endpoint {
    bool ipv6 = false;
    std::array<uint8_t, 16> addr{};
    std::optional<uint16_t> port;
};

// 198.18.0.2, 198.18.0.2:1234, 2001:2::1, [2001:2::1]:1234
Endpoint parse_endpoint(const std::string& tok)
{
    std::string host = tok, port;
    if (!tok.empty() && tok[0] == '[') {
        auto close = tok.find(']');
        if (close == std::string::npos)
            fail_usage("'{}': missing ']' (IPv6 with a port is [ADDR]:PORT)", tok);
        host = tok.substr(1, close - 1);
        std::string rest = tok.substr(close + 1);
        if (!rest.empty()) {
            if (rest[0] != ':')
                fail_usage("'{}': expected ':PORT' after ']'", tok);
            port = rest.substr(1);
            if (port.empty())
                fail_usage("'{}': the port after ':' is missing", tok);
        }
    } else if (std::count(tok.begin(), tok.end(), ':') == 1) {
        host = tok.substr(0, tok.find(':'));
        port = tok.substr(tok.find(':') + 1);
        if (port.empty())
            fail_usage("'{}': the port after ':' is missing", tok);
    }
    Endpoint e;
    if (inet_pton(AF_INET, host.c_str(), e.addr.data()) == 1) {
        e.ipv6 = false;
    } else if (inet_pton(AF_INET6, host.c_str(), e.addr.data()) == 1) {
        e.ipv6 = true;
    } else {
        fail_usage("'{}': not an IPv4 or IPv6 address", host.empty() ? tok : host);
    }
    if (!port.empty()) {
        uint64_t v = 0;
        if (!parse_uint(port, 65535, v))
            fail_usage("'{}': port '{}' is not a number 0-65535", tok, port);
        e.port = uint16_t(v);
    }
    return e;
}

uint8_t parse_flags(const std::string& tok)
{
    static const std::pair<std::string_view, uint8_t> names[] = {
        {"fin", 0x01}, {"syn", 0x02}, {"rst", 0x04}, {"psh", 0x08},
        {"ack", 0x10}, {"urg", 0x20}, {"ece", 0x40}, {"cwr", 0x80}};
    uint8_t flags = 0;
    std::stringstream ss(tok);
    std::string item;
    while (std::getline(ss, item, ',')) {
        auto it = std::find_if(std::begin(names), std::end(names),
                               [&](const auto& n) { return n.first == item; });
        if (it == std::end(names))
            fail_usage("flags '{}': unknown flag '{}' (fin, syn, rst, psh, ack, urg, ece, cwr; "
                       "'none' for no flag)",
                       tok, item);
        flags |= it->second;
    }
    return flags;
}

// Splits on spaces, and around "->" written without spaces.
std::vector<std::string> tokens_of(const std::vector<std::string>& words)
{
    std::string all;
    for (const auto& w : words)
        all += w + " ";
    for (size_t p = 0; (p = all.find("->", p)) != std::string::npos; p += 4)
        all.replace(p, 2, " -> ");
    std::vector<std::string> out;
    std::stringstream ss(all);
    for (std::string t; ss >> t;)
        out.push_back(t);
    return out;
}

}  // namespace

PacketSpec parse_packet_spec(const std::vector<std::string>& words)
{
    const std::vector<std::string> t = tokens_of(words);
    PacketSpec s;
    size_t i = 0;
    auto next = [&](const std::string& what) -> const std::string& {
        if (i >= t.size())
            fail_usage("packet: {} is missing (e.g. 'tcp 198.18.0.2:1234 -> 198.19.0.1:80')", what);
        return t[i++];
    };

    const std::string proto = next("the protocol (tcp, udp, icmp, icmpv6 or proto N)");
    if (proto == "tcp")
        s.proto = kTcp;
    else if (proto == "udp")
        s.proto = kUdp;
    else if (proto == "icmp")
        s.proto = kIcmp;
    else if (proto == "icmpv6")
        s.proto = kIcmpv6;
    else if (proto == "proto") {
        const std::string& n = next("the number after 'proto'");
        uint64_t v = 0;
        if (!parse_uint(n, 255, v))
            fail_usage("proto '{}': expected a protocol number 0-255", n);
        s.proto = uint8_t(v);
    } else {
        fail_usage("'{}': expected the protocol first: tcp, udp, icmp, icmpv6 or proto N", proto);
    }

    const std::string src_tok = next("the source address");
    Endpoint src = parse_endpoint(src_tok);
    const std::string& arrow = next("'->'");
    if (arrow != "->")
        fail_usage("'{}': expected '->' between the source and the destination", arrow);
    const std::string dst_tok = next("the destination address");
    Endpoint dst = parse_endpoint(dst_tok);
    if (src.ipv6 != dst.ipv6)
        fail_usage("'{}' and '{}': the source and the destination must be of one family",
                   src_tok, dst_tok);
    s.ipv6 = src.ipv6;
    s.src = src.addr;
    s.dst = dst.addr;
    s.sport = src.port;
    s.dport = dst.port;
    bool ports = s.proto == kTcp || s.proto == kUdp;
    if ((s.sport || s.dport) && !ports)
        fail_usage("'{}': a port needs tcp or udp", s.sport ? src_tok : dst_tok);
    if (s.proto == kIcmp && s.ipv6)
        fail_usage("icmp: IPv6 addresses need icmpv6");
    if (s.proto == kIcmpv6 && !s.ipv6)
        fail_usage("icmpv6: IPv4 addresses need icmp");

    std::string flags_tok;
    while (i < t.size()) {
        const std::string word = t[i++];
        if (word == "vlan") {
            const std::string& v = next("the VLAN ID after 'vlan'");
            uint64_t id = 0;
            if (!parse_uint(v, 4095, id))
                fail_usage("vlan '{}': expected a VLAN ID 0-4095", v);
            if (s.vlans.size() == 2)
                fail_usage("vlan {}: at most two tags (802.1ad outside 802.1Q)", v);
            s.vlans.push_back(uint16_t(id));
        } else if (word == "iif") {
            s.iif = next("the interface after 'iif'");
            validate_ifname(s.iif);
        } else if (word == "flags") {
            flags_tok = next("the flags after 'flags'");
            if (s.proto != kTcp)
                fail_usage("flags '{}': TCP flags need tcp", flags_tok);
            s.tcp_flags = flags_tok == "none" ? 0 : parse_flags(flags_tok);
        } else if (word == "fragment") {
            s.fragment = true;
        } else if (word == "len") {
            const std::string& v = next("the length after 'len'");
            uint64_t n = 0;
            if (!parse_uint(v, kMaxSpecFrame, n))
                fail_usage("len '{}': expected a frame length in bytes, at most {}", v, kMaxSpecFrame);
            s.len = size_t(n);
        } else {
            fail_usage("'{}': unknown word (vlan ID, iif IFACE, flags LIST, fragment, len N)", word);
        }
    }
    if (s.fragment && (s.sport || s.dport))
        fail_usage("fragment: a non-first fragment carries no L4 header, so no port ('{}')",
                   s.sport ? src_tok : dst_tok);
    if (s.fragment && s.tcp_flags)
        fail_usage("fragment: a non-first fragment carries no L4 header, so no flags ('{}')",
                   flags_tok);
    if (s.len) {
        PacketSpec bare = s;
        bare.len.reset();
        size_t min = build_frame(bare).size();
        if (*s.len < min)
            fail_usage("len {}: the headers alone take {} bytes", *s.len, min);
    }
    return s;
}

std::vector<uint8_t> build_frame(const PacketSpec& s)
{
    using namespace xdpctl::net;
    PacketBuilder b;
    if (s.vlans.size() == 2)
        b.qinq(s.vlans[0], s.vlans[1]);
    else if (s.vlans.size() == 1)
        b.vlan(s.vlans[0]);
    if (s.ipv6) {
        Ipv6Opts o;
        std::copy_n(s.src.begin(), 16, o.src.begin());
        std::copy_n(s.dst.begin(), 16, o.dst.begin());
        if (!s.fragment && s.proto != kTcp && s.proto != kUdp && s.proto != kIcmpv6)
            o.next_header = s.proto;
        b.ipv6(o);
        if (s.fragment)
            b.ext_fragment(kLaterFragmentOffset, false, 0xabcd, s.proto);
    } else {
        Ipv4Opts o;
        std::copy_n(s.src.begin(), 4, o.src.begin());
        std::copy_n(s.dst.begin(), 4, o.dst.begin());
        o.protocol = s.proto;
        if (s.fragment)
            o.frag_offset = kLaterFragmentOffset;
        b.ipv4(o);
    }
    if (!s.fragment) {
        if (s.proto == kTcp) {
            TcpOpts t;
            t.sport = s.sport.value_or(t.sport);
            t.dport = s.dport.value_or(t.dport);
            t.flags = s.tcp_flags.value_or(tcp_flags::syn);
            b.tcp(t);
        } else if (s.proto == kUdp) {
            b.udp(s.sport.value_or(40000), s.dport.value_or(53));
        } else if (s.proto == kIcmp) {
            b.icmp_echo();
        } else if (s.proto == kIcmpv6) {
            b.icmpv6_echo();
        }
    }
    if (s.fragment)
        b.payload(8);  // a fragment's data: 8 bytes, the smallest unit of an offset
    std::vector<uint8_t> frame = b.build();
    if (s.len && *s.len > frame.size()) {
        b.payload(*s.len - frame.size());
        frame = b.build();
    }
    return frame;
}

}  // namespace xdpctl::explain
