#include "trace/event_decode.h"

#include <arpa/inet.h>

#include <cstring>

#include <fmt/core.h>

namespace xdpctl::trace {

namespace {

constexpr uint16_t kEthIpv4 = 0x0800, kEthIpv6 = 0x86dd, kEthVlan = 0x8100, kEthQinq = 0x88a8;

uint16_t be16(const uint8_t* p)
{
    return uint16_t(p[0] << 8 | p[1]);
}

std::string proto_text(uint8_t p)
{
    switch (p) {
    case 6:
        return "tcp";
    case 17:
        return "udp";
    case 1:
        return "icmp";
    case 58:
        return "icmpv6";
    default:
        return std::to_string(p);
    }
}

std::string addr_text(int family, const uint8_t* a)
{
    char buf[INET6_ADDRSTRLEN] = "";
    inet_ntop(family, a, buf, sizeof buf);
    return buf;
}

}  // namespace

EventHeaders decode_headers(const xdpctl_event& e)
{
    EventHeaders h;
    const uint8_t* d = e.data;
    const size_t n = std::min<size_t>(e.cap_len, XDPCTL_EVENT_SNAP);
    size_t off = 12;
    if (n < 14)
        return h;
    uint16_t type = be16(d + off);
    for (int tags = 0; tags < 2 && (type == kEthVlan || type == kEthQinq) && off + 6 <= n; tags++) {
        off += 4;
        type = be16(d + off);
    }
    h.ethertype = type;
    off += 2;
    uint8_t proto = 0;
    size_t l4 = 0;
    bool first_fragment = true;
    if (type == kEthIpv4 && off + 20 <= n) {
        const uint8_t* ip = d + off;
        proto = ip[9];
        h.src = addr_text(AF_INET, ip + 12);
        h.dst = addr_text(AF_INET, ip + 16);
        first_fragment = (be16(ip + 6) & 0x1fff) == 0;
        l4 = off + size_t(ip[0] & 0x0f) * 4;
    } else if (type == kEthIpv6 && off + 40 <= n) {
        const uint8_t* ip = d + off;
        proto = ip[6];
        h.src = addr_text(AF_INET6, ip + 8);
        h.dst = addr_text(AF_INET6, ip + 24);
        l4 = off + 40;
    } else {
        return h;
    }
    h.proto = proto_text(proto);
    if (!first_fragment || l4 + 4 > n)
        return h;
    if (proto == 6 || proto == 17) {
        h.sport = be16(d + l4);
        h.dport = be16(d + l4 + 2);
    } else if (proto == 1 || proto == 58) {
        h.sport = d[l4];
        h.dport = d[l4 + 1];
    }
    return h;
}

const char* hook_name(uint32_t hook)
{
    switch (hook) {
    case XDPCTL_HOOK_XDP:
        return "xdp";
    case XDPCTL_HOOK_TC_INGRESS:
        return "tc-ingress";
    case XDPCTL_HOOK_TC_EGRESS:
        return "tc-egress";
    default:
        return "?";
    }
}

namespace {
std::string endpoint(const std::string& addr, int port, bool v6)
{
    if (port < 0)
        return addr;
    return v6 ? fmt::format("[{}]:{}", addr, port) : fmt::format("{}:{}", addr, port);
}

const char* verdict_name(uint32_t v)
{
    return v == XDPCTL_ACT_DROP ? "drop" : "pass";
}
}  // namespace

std::string event_line(const xdpctl_event& e, const std::string& time, const std::string& iface)
{
    const EventHeaders h = decode_headers(e);
    std::string what;
    if (h.proto.empty())
        what = fmt::format("ethertype {:#06x}", h.ethertype);
    else if (h.proto == "icmp" || h.proto == "icmpv6")
        what = fmt::format("{} {} -> {}{}", h.proto, h.src, h.dst,
                           h.sport < 0 ? "" : fmt::format(" type {} code {}", h.sport, h.dport));
    else {
        const bool v6 = h.ethertype == kEthIpv6;
        const bool ports = h.proto == "tcp" || h.proto == "udp";
        what = fmt::format("{} {} -> {}", h.proto, endpoint(h.src, ports ? h.sport : -1, v6),
                           endpoint(h.dst, ports ? h.dport : -1, v6));
    }
    return fmt::format("{} {} {} rule {} {} {} len {}", time, iface, hook_name(e.hook), e.rule_id,
                       verdict_name(e.verdict), what, e.pkt_len);
}

nlohmann::json event_json(const xdpctl_event& e, uint64_t unix_ns, const std::string& iface)
{
    const EventHeaders h = decode_headers(e);
    nlohmann::json j = {{"time_ns", unix_ns},     {"iface", iface},          {"ifindex", e.ifindex},
                        {"hook", hook_name(e.hook)}, {"rule", e.rule_id},    {"verdict", verdict_name(e.verdict)},
                        {"len", e.pkt_len},       {"caplen", e.cap_len},     {"ethertype", h.ethertype}};
    if (!h.proto.empty()) {
        j["proto"] = h.proto;
        j["src"] = h.src;
        j["dst"] = h.dst;
        if (h.sport >= 0) {
            const bool icmp = h.proto == "icmp" || h.proto == "icmpv6";
            j[icmp ? "icmp_type" : "sport"] = h.sport;
            j[icmp ? "icmp_code" : "dport"] = h.dport;
        }
    }
    return j;
}

}  // namespace xdpctl::trace
