#include "lb/lb_model.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <vector>

#include "util/error.h"
#include "lb/maglev.h"

namespace xdpctl::lb {

namespace {

bool parse_u16(const std::string& s, uint16_t* out)
{
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || s.empty() || v > 65535)
        return false;
    *out = uint16_t(v);
    return true;
}

bool try_ip(const std::string& s, IpAddr* a)
{
    *a = IpAddr{};
    if (inet_pton(AF_INET, s.c_str(), &a->w[0]) == 1) {
        a->family = 4;
        return true;
    }
    if (inet_pton(AF_INET6, s.c_str(), a->w) == 1) {
        a->family = 6;
        return true;
    }
    return false;
}

// "ADDR:PORT" or "[ADDR]:PORT" -> address and port; `what` names the token in errors.
void split_addr_port(const std::string& s, const std::string& token, const char* what, IpAddr* a,
                     uint16_t* port)
{
    std::string addr, port_s;
    if (!s.empty() && s[0] == '[') {
        auto close = s.find(']');
        if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':')
            fail_usage("bad {} '{}': an IPv6 address is written [ADDR]:PORT", what, token);
        addr = s.substr(1, close - 1);
        port_s = s.substr(close + 2);
        if (!try_ip(addr, a) || a->family != 6)
            fail_usage("bad {} '{}': '{}' is not an IPv6 address", what, token, addr);
    } else {
        auto colon = s.rfind(':');
        if (colon == std::string::npos)
            fail_usage("bad {} '{}': expected ADDR:PORT ([ADDR]:PORT for IPv6)", what, token);
        addr = s.substr(0, colon);
        port_s = s.substr(colon + 1);
        if (!try_ip(addr, a) || a->family != 4)
            fail_usage("bad {} '{}': '{}' is not an IPv4 address (IPv6 is written [ADDR]:PORT)",
                       what, token, addr);
    }
    if (!parse_u16(port_s, port))
        fail_usage("bad {} '{}': '{}' is not a port (0-65535)", what, token, port_s);
}

uint8_t parse_proto(const std::string& s, const std::string& token, const char* what)
{
    if (s == "tcp")
        return IPPROTO_TCP;
    if (s == "udp")
        return IPPROTO_UDP;
    fail_usage("bad {} '{}': protocol '{}' is not tcp or udp", what, token, s);
}

}  // namespace

IpAddr parse_ip(const std::string& token)
{
    IpAddr a;
    if (!try_ip(token, &a))
        fail_usage("bad address '{}': not an IPv4 or IPv6 address", token);
    return a;
}

VipSpec parse_vip(const std::string& token)
{
    auto slash = token.rfind('/');
    if (slash == std::string::npos)
        fail_usage("bad VIP '{}': expected ADDR:PORT/tcp|udp ([ADDR]:PORT/... for IPv6)", token);
    VipSpec v;
    v.proto = parse_proto(token.substr(slash + 1), token, "VIP");
    split_addr_port(token.substr(0, slash), token, "VIP", &v.addr, &v.port);
    return v;
}

MacAddr parse_mac(const std::string& token)
{
    MacAddr m{};
    unsigned b[6];
    char extra;
    if (std::sscanf(token.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
                    &b[5], &extra) != 6 || token.size() != 17)
        fail_usage("bad MAC address '{}': expected six hex bytes like 02:00:00:00:00:01", token);
    for (int i = 0; i < 6; i++)
        m[i] = uint8_t(b[i]);
    return m;
}

void check_unicast(const IpAddr& a, const char* what)
{
    const auto* b = reinterpret_cast<const uint8_t*>(a.w);
    const char* why = nullptr;
    if (a.family == 4) {
        if (b[0] == 0)
            why = "an unspecified (0.0.0.0/8)";
        else if (b[0] == 127)
            why = "a loopback";
        else if ((b[0] & 0xf0) == 224)
            why = "a multicast";
        else if (a.w[0] == 0xffffffffu)
            why = "the broadcast";
    } else {
        static const uint8_t zero[16] = {};
        if (std::memcmp(b, zero, 16) == 0)
            why = "the unspecified";
        else if (std::memcmp(b, zero, 15) == 0 && b[15] == 1)
            why = "the loopback";
        else if (b[0] == 0xff)
            why = "a multicast";
    }
    if (why)
        fail_usage("{} {} is {} address: it must be a unicast address", what, format_ip(a), why);
}

void check_backend_address(const VipSpec& v, const IpAddr& backend, const MacAddr& mac)
{
    if (backend.family != v.addr.family)
        fail_usage("backend {} is not of the VIP {}'s IP version", format_ip(backend), format_vip(v));
    if (backend == v.addr)
        fail_usage("backend {} is the VIP's own address", format_ip(backend));
    check_unicast(backend, "backend");
    if (mac[0] & 1)
        fail_usage("backend {}: MAC {} is a multicast or broadcast address", format_ip(backend),
                   format_mac(mac));
    if (mac == MacAddr{})
        fail_usage("backend {}: MAC 00:00:00:00:00:00 is not an address", format_ip(backend));
}

void check_table_fits(const VipSpec& v, uint32_t ring_size, size_t n_backends)
{
    if (n_backends <= ring_size)
        return;
    uint32_t min = uint32_t(n_backends);
    while (!is_prime(min))
        min++;
    fail_usage("VIP {}: a Maglev table of {} entries cannot hold {} backends (each needs a "
               "position): the table size must be a prime of at least {}",
               format_vip(v), ring_size, n_backends, min);
}

FlowSpec parse_flow(const std::string& text)
{
    // "PROTO SRC:PORT -> DST:PORT"
    std::vector<std::string> tok;
    size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && text[i] == ' ')
            i++;
        size_t j = i;
        while (j < text.size() && text[j] != ' ')
            j++;
        if (j > i)
            tok.push_back(text.substr(i, j - i));
        i = j;
    }
    if (tok.size() != 4 || tok[2] != "->")
        fail_usage("bad flow '{}': expected 'tcp|udp SRC:PORT -> VIP:PORT'", text);
    FlowSpec f;
    f.proto = parse_proto(tok[0], text, "flow");
    split_addr_port(tok[1], tok[1], "flow source", &f.src, &f.sport);
    split_addr_port(tok[3], tok[3], "flow destination", &f.dst, &f.dport);
    if (f.src.family != f.dst.family)
        fail_usage("bad flow '{}': source and destination are of different IP versions", text);
    return f;
}

std::string format_ip(const IpAddr& a)
{
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(a.family == 6 ? AF_INET6 : AF_INET, a.w, buf, sizeof(buf));
    return buf;
}

std::string format_vip(const VipSpec& v)
{
    const char* p = v.proto == IPPROTO_TCP ? "tcp" : v.proto == IPPROTO_UDP ? "udp" : "?";
    return v.addr.family == 6 ? fmt::format("[{}]:{}/{}", format_ip(v.addr), v.port, p)
                              : fmt::format("{}:{}/{}", format_ip(v.addr), v.port, p);
}

std::string format_mac(const MacAddr& m)
{
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
}

xdpctl_lb_vip_key vip_key(const VipSpec& v)
{
    xdpctl_lb_vip_key k{};
    std::memcpy(k.addr, v.addr.w, sizeof(k.addr));
    k.port = htons(v.port);
    k.proto = v.proto;
    k.family = v.addr.family;
    return k;
}

VipSpec vip_spec(const xdpctl_lb_vip_key& k)
{
    VipSpec v;
    v.addr.family = k.family;
    std::memcpy(v.addr.w, k.addr, sizeof(k.addr));
    v.port = ntohs(k.port);
    v.proto = k.proto;
    return v;
}

}  // namespace xdpctl::lb
