#include "workloads.h"

#include <algorithm>
#include <set>
#include <unordered_set>

namespace xdpctl::bench {

using namespace xdpctl::policy;
using Rng = std::mt19937_64;

Prefix prefix4(uint32_t addr, unsigned len)
{
    Prefix p;
    p.family = Family::v4;
    addr &= len ? ~uint32_t(0) << (32 - len) : 0;
    p.addr[0] = uint8_t(addr >> 24);
    p.addr[1] = uint8_t(addr >> 16);
    p.addr[2] = uint8_t(addr >> 8);
    p.addr[3] = uint8_t(addr);
    p.len = uint8_t(len);
    return p;
}

Policy rule_mix(size_t n, Rng& rng, std::optional<uint32_t> drop_src)
{
    Policy p;
    p.rules.reserve(n);
    for (size_t i = 0; i < n; i++) {
        Rule r;
        r.id = uint32_t(i + 1);
        r.priority = uint32_t(rng() % 1000);
        r.action.kind = rng() % 4 ? ActionKind::drop : ActionKind::pass;
        const size_t kind = i % 10;
        if (kind < 7) {
            r.src = {AddrMatch::Kind::prefix, prefix4(uint32_t(rng()), 32), ""};
            r.proto = 6;
            const uint16_t port = uint16_t(1 + rng() % 65535);
            r.dport = {port, port};
        } else if (kind < 9) {
            r.src = {AddrMatch::Kind::prefix, prefix4(uint32_t(rng()), unsigned(8 + rng() % 23)), ""};
        } else {
            r.proto = 6;
            const uint16_t lo = uint16_t(rng() % 60000);
            r.dport = {lo, uint16_t(lo + rng() % 2000)};
        }
        if (drop_src && r.src.kind == AddrMatch::Kind::prefix &&
            r.src.prefix == prefix4(*drop_src, r.src.prefix.len))
            r.action.kind = ActionKind::drop;
        p.rules.push_back(r);
    }
    return p;
}

// A BGP table's shape (2024 IPv4 tables: ~60% /24, most of the rest /16-/23), with a few
// more-specifics past /24 and short prefixes down to /8 so that every level is used.
std::vector<PrefixEntry4> bgp_like4(size_t n, uint64_t seed)
{
    struct Band {
        double share;
        unsigned lo, hi;
    };
    static const Band bands[] = {{60, 24, 24}, {9, 23, 23}, {11, 22, 22}, {5, 21, 21}, {4.5, 20, 20},
                                 {3, 19, 19},  {1.5, 18, 18}, {1, 17, 17}, {2, 16, 16}, {1, 8, 15},
                                 {2, 25, 32}};
    std::vector<double> w;
    for (const Band& b : bands)
        w.push_back(b.share);
    std::discrete_distribution<size_t> band(w.begin(), w.end());
    Rng rng(seed);
    std::unordered_set<uint64_t> seen;
    std::vector<PrefixEntry4> v;
    v.reserve(n);
    while (v.size() < n) {
        const Band& b = bands[band(rng)];
        const unsigned len = b.lo + unsigned(rng() % (b.hi - b.lo + 1));
        // Unicast space, 1.0.0.0 - 223.255.255.255.
        const uint32_t a = uint32_t(0x01000000u + rng() % (0xe0000000u - 0x01000000u)) & mask4(len);
        if (!seen.insert((uint64_t(a) << 8) | len).second)
            continue;
        v.push_back({{a, uint8_t(len)}, uint32_t(1 + v.size() % 100000)});
    }
    return v;
}

std::vector<PrefixEntry4> random_hosts4(size_t n, uint64_t seed)
{
    Rng rng(seed);
    std::unordered_set<uint32_t> seen;
    std::vector<PrefixEntry4> v;
    v.reserve(n);
    while (v.size() < n) {
        const uint32_t a = uint32_t(0x01000000u + rng() % (0xe0000000u - 0x01000000u));
        if (seen.insert(a).second)
            v.push_back({{a, 32}, uint32_t(1 + v.size() % 100000)});
    }
    return v;
}

// A real IPv6 table's shape: allocations (/19-/32) spread over 2000::/3, and the longer
// prefixes (mostly /36-/48) mostly inside them; a few /49-/64 and a handful up to /128.
std::vector<PrefixEntry6> real_like6(size_t n, uint64_t seed)
{
    struct Band {
        double share;
        unsigned lo, hi;
    };
    static const Band bands[] = {{5, 19, 31}, {15, 32, 32}, {4, 33, 35}, {6, 36, 36}, {3, 40, 43},
                                 {9, 40, 40}, {3, 44, 47},  {7, 44, 44}, {45, 48, 48}, {2.9, 49, 64},
                                 {0.1, 65, 128}};
    std::vector<double> w;
    for (const Band& b : bands)
        w.push_back(b.share);
    std::discrete_distribution<size_t> band(w.begin(), w.end());
    Rng rng(seed);
    std::vector<unsigned> lens(n);
    for (unsigned& l : lens) {
        const Band& b = bands[band(rng)];
        l = b.lo + unsigned(rng() % (b.hi - b.lo + 1));
    }
    std::sort(lens.begin(), lens.end());  // allocations first, so longer ones can nest
    std::set<Prefix6> seen;
    std::vector<Prefix6> allocs;
    std::vector<PrefixEntry6> v;
    v.reserve(n);
    for (size_t i = 0; i < lens.size(); i++) {
        const unsigned len = lens[i];
        Ip6 a{(uint64_t(1) << 61) | (rng() >> 3), rng()};  // 2000::/3
        if (len > 32 && !allocs.empty() && rng() % 5 != 0) {
            const Prefix6& outer = allocs[rng() % allocs.size()];
            const Ip6 m = mask6(outer.len);
            a = {outer.addr.hi | (a.hi & ~m.hi), outer.addr.lo | (a.lo & ~m.lo)};
        }
        const Prefix6 p{a & mask6(len), uint8_t(len)};
        if (!seen.insert(p).second) {
            lens.push_back(len);  // draw again
            continue;
        }
        if (len <= 32)
            allocs.push_back(p);
        v.push_back({p, uint32_t(1 + v.size() % 100000)});
    }
    return v;
}

}  // namespace xdpctl::bench
