#include "flow_range.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "util/error.h"

namespace xdpctl::pktgen {

namespace {

bool parse_addr(const std::string& s, bool& ipv6, std::array<uint8_t, 16>& out)
{
    out = {};
    if (inet_pton(AF_INET, s.c_str(), out.data()) == 1) {
        ipv6 = false;
        return true;
    }
    if (inet_pton(AF_INET6, s.c_str(), out.data()) == 1) {
        ipv6 = true;
        return true;
    }
    return false;
}

uint32_t load_be32(const uint8_t* p)
{
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}

size_t low32_off(bool ipv6)
{
    return ipv6 ? 12 : 0;
}

std::string addr_str(bool ipv6, const std::array<uint8_t, 16>& a)
{
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(ipv6 ? AF_INET6 : AF_INET, a.data(), buf, sizeof buf);
    return buf;
}

bool parse_uint(const std::string& s, uint64_t max, uint64_t& out)
{
    if (s.empty())
        return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size() && out <= max;
}

}  // namespace

uint32_t AddrRange::low32() const
{
    return load_be32(base.data() + low32_off(ipv6));
}

std::string AddrRange::str() const
{
    if (count == 1)
        return addr_str(ipv6, base);
    std::array<uint8_t, 16> last = base;
    uint32_t hi = low32() + uint32_t(count - 1);
    uint8_t* p = last.data() + low32_off(ipv6);
    p[0] = hi >> 24, p[1] = hi >> 16, p[2] = hi >> 8, p[3] = hi;
    return addr_str(ipv6, base) + "-" + addr_str(ipv6, last);
}

std::string PortRange::str() const
{
    return count == 1 ? fmt::format("{}", first) : fmt::format("{}-{}", first, first + count - 1);
}

AddrRange parse_addr_range(const std::string& text, const char* what)
{
    AddrRange r;
    if (auto slash = text.find('/'); slash != std::string::npos) {
        if (!parse_addr(text.substr(0, slash), r.ipv6, r.base))
            fail_usage("{} '{}': '{}' is not an IPv4 or IPv6 address", what, text,
                       text.substr(0, slash));
        const unsigned bits = r.ipv6 ? 128 : 32;
        uint64_t plen;
        if (!parse_uint(text.substr(slash + 1), bits, plen))
            fail_usage("{} '{}': the prefix length must be 0 to {}", what, text, bits);
        const unsigned host_bits = bits - unsigned(plen);
        if (host_bits > 32)
            fail_usage("{} '{}': at most 2^32 addresses (the last 32 bits vary); use a prefix "
                       "of /{} or longer",
                       what, text, bits - 32);
        r.count = uint64_t(1) << host_bits;
        // Host bits set are more often a typo than a wish (as for xdpctl's prefix sets):
        // name the prefix instead of guessing.
        std::array<uint8_t, 16> net = r.base;
        for (unsigned i = 0; i < bits / 8; i++) {
            const int keep = int(plen) - int(i * 8);
            if (keep <= 0)
                net[i] = 0;
            else if (keep < 8)
                net[i] &= uint8_t(0xff << (8 - keep));
        }
        if (net != r.base)
            fail_usage("{} '{}': host bits are set; the prefix is {}/{}", what, text,
                       addr_str(r.ipv6, net), plen);
        return r;
    }
    if (auto dash = text.find('-'); dash != std::string::npos) {
        AddrRange last;
        if (!parse_addr(text.substr(0, dash), r.ipv6, r.base) ||
            !parse_addr(text.substr(dash + 1), last.ipv6, last.base))
            fail_usage("{} '{}': expected FIRST-LAST, two addresses of one family", what, text);
        if (r.ipv6 != last.ipv6)
            fail_usage("{} '{}': both ends must be IPv4 or both IPv6", what, text);
        const size_t off = low32_off(r.ipv6);
        if (std::memcmp(r.base.data(), last.base.data(), off) != 0)
            fail_usage("{} '{}': the ends may differ only in their last 32 bits", what, text);
        if (last.low32() < r.low32())
            fail_usage("{} '{}': the last address is below the first", what, text);
        r.count = uint64_t(last.low32()) - r.low32() + 1;
        return r;
    }
    if (!parse_addr(text, r.ipv6, r.base))
        fail_usage("{} '{}': not an IPv4 or IPv6 address, CIDR prefix or FIRST-LAST range", what,
                   text);
    return r;
}

PortRange parse_port_range(const std::string& text, const char* what)
{
    PortRange r;
    uint64_t first, last;
    const auto dash = text.find('-');
    const std::string a = text.substr(0, dash);
    const std::string b = dash == std::string::npos ? a : text.substr(dash + 1);
    if (!parse_uint(a, 65535, first) || !parse_uint(b, 65535, last))
        fail_usage("{} '{}': expected a port (0-65535) or a range FIRST-LAST", what, text);
    if (last < first)
        fail_usage("{} '{}': the last port is below the first", what, text);
    r.first = uint16_t(first);
    r.count = uint32_t(last - first + 1);
    return r;
}

bool in_benchmark_ranges(const AddrRange& r)
{
    const uint8_t* b = r.base.data();
    if (!r.ipv6) {
        // 198.18.0.0/15: first and last address both inside (the range is contiguous).
        const uint32_t first = r.low32(), last = first + uint32_t(r.count - 1);
        return (first >> 17) == (0xc6120000u >> 17) && (last >> 17) == (0xc6120000u >> 17) &&
               last >= first;
    }
    // 2001:2::/48; the varying last 32 bits never reach the prefix.
    return b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x00 && b[3] == 0x02 && b[4] == 0 && b[5] == 0;
}

}  // namespace xdpctl::pktgen
