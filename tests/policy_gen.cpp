#include "policy_gen.h"

#include <fmt/format.h>

namespace xdpctl::test {

using namespace xdpctl::policy;

uint32_t gen_ifindex(const std::string& name)
{
    if (name == "if1")
        return kGenIf1Index;
    if (name == "if2")
        return kGenIf2Index;
    return 0;  // "ifgone": a rule naming it matches nothing
}

Prefix Gen::make(Family f, unsigned len)
{
    Prefix p;
    p.family = f;
    p.len = uint8_t(len);
    if (f == Family::v4) {
        p.addr[0] = 198;
        p.addr[1] = uint8_t(18 + u(2));
        p.addr[2] = uint8_t(u(4));
        p.addr[3] = uint8_t(u(4));
    } else {
        p.addr[0] = 0x20;
        p.addr[1] = 0x01;
        p.addr[2] = 0x00;
        p.addr[3] = 0x02;
        p.addr[5] = uint8_t(u(3));
        p.addr[15] = uint8_t(u(4));
    }
    unsigned max = f == Family::v4 ? 32 : 128;
    for (unsigned bit = len; bit < max; bit++)
        p.addr[bit / 8] &= uint8_t(~(0x80 >> (bit % 8)));
    return p;
}

void Gen::make_pools()
{
    static const unsigned lens4[] = {0, 8, 15, 16, 22, 24, 30, 31, 32};
    static const unsigned lens6[] = {0, 32, 40, 47, 48, 64, 127, 128};
    for (int i = 0; i < 24; i++) {
        pool4.push_back(make(Family::v4, lens4[u(std::size(lens4))]));
        pool6.push_back(make(Family::v6, lens6[u(std::size(lens6))]));
    }
}

Prefix Gen::pick(Family f)
{
    return f == Family::v4 ? pool4[u(pool4.size())] : pool6[u(pool6.size())];
}

PortRange Gen::ports()
{
    static const uint16_t edges[] = {0, 1, 52, 53, 54, 80, 443, 1023, 1024, 8080, 65534, 65535};
    PortRange r;
    r.lo = edges[u(std::size(edges))];
    r.hi = coin(50) ? r.lo : edges[u(std::size(edges))];
    if (r.lo > r.hi)
        std::swap(r.lo, r.hi);
    return r;
}

Policy Gen::policy(int n_rules, int n_sets)
{
    Policy p;
    p.default_action = coin(50) ? ActionKind::drop : ActionKind::pass;
    for (int s = 0; s < n_sets; s++) {
        PrefixSet set;
        set.name = fmt::format("s{}", s);
        int n = 1 + int(u(8));
        for (int i = 0; i < n; i++)
            set.entries.push_back({pick(coin(60) ? Family::v4 : Family::v6), coin(25)});
        set.normalize();
        // a prefix may not be member and exception at once
        for (size_t i = 1; i < set.entries.size();)
            if (set.entries[i].prefix == set.entries[i - 1].prefix)
                set.entries.erase(set.entries.begin() + long(i));
            else
                i++;
        p.sets[set.name] = set;
    }
    for (int i = 0; i < n_rules; i++) {
        Rule r;
        r.id = uint32_t(i + 1);
        r.priority = uint32_t(u(20));
        r.dir = coin(80) ? Direction::ingress : Direction::egress;
        Family fam = coin(60) ? Family::v4 : Family::v6;
        auto addr = [&](AddrMatch& a) {
            int k = int(u(10));
            if (k < 4)
                return;
            if (k < 8 || n_sets == 0) {
                a.kind = AddrMatch::Kind::prefix;
                a.prefix = pick(fam);
            } else {
                a.kind = AddrMatch::Kind::set;
                a.set = fmt::format("s{}", u(n_sets));
            }
        };
        addr(r.src);
        addr(r.dst);
        int pk = int(u(10));
        if (pk < 3)
            r.proto = 6;
        else if (pk < 6)
            r.proto = 17;
        else if (pk == 6)
            r.proto = fam == Family::v4 ? 1 : 58;
        else if (pk == 7)
            r.proto = 47;
        if (r.proto && (*r.proto == 6 || *r.proto == 17)) {
            if (coin(30))
                r.sport = ports();
            if (coin(60))
                r.dport = ports();
        }
        if (r.proto && *r.proto == 6 && coin(25)) {
            r.tcp_flags.mask = uint8_t(0x12);
            r.tcp_flags.value = coin(50) ? 0x02 : 0x12;
        }
        if (r.sport.any() && r.dport.any() && r.tcp_flags.any() && coin(10))
            r.fragment = true;
        if (coin(15))
            r.vlan = uint16_t(10 + u(3));
        if (coin(10)) {
            static const char* ifs[] = {"if1", "if2", "ifgone"};
            r.iif = ifs[u(3)];
        }
        int a = int(u(10));
        r.action.kind = a < 4 ? ActionKind::drop : a < 7 ? ActionKind::pass
                        : a < 9 ? ActionKind::count : ActionKind::rate_limit;
        if (r.action.kind == ActionKind::rate_limit) {
            r.action.rate_pps = opts.rate_pps;
            r.action.burst = opts.burst;
        }
        p.rules.push_back(r);
    }
    return p;
}

std::array<uint8_t, 16> Gen::address(Family f)
{
    std::array<uint8_t, 16> a{};
    Prefix base = pick(f);
    a = base.addr;
    unsigned max = f == Family::v4 ? 32 : 128;
    // random host bits below the prefix, mostly near its start so nested prefixes hit
    for (unsigned bit = base.len; bit < max; bit++)
        if (coin(max - bit <= 8 ? 50 : 3))
            a[bit / 8] |= uint8_t(0x80 >> (bit % 8));
    return a;
}

PacketKey Gen::packet(uint32_t* ifindex)
{
    PacketKey k;
    static const char* ifs[] = {"if1", "if2", "lo"};
    int ifk = int(u(3));
    k.iif = ifs[ifk];
    *ifindex = ifk == 2 ? 1 : gen_ifindex(k.iif);
    k.dir = coin(80) ? Direction::ingress : Direction::egress;
    if (coin(15))
        k.vlan = uint16_t(10 + u(4));
    if (coin(3))
        return k;  // not IP
    Family f = coin(60) ? Family::v4 : Family::v6;
    k.family = f;
    k.src = address(f);
    k.dst = address(f);
    int pk = int(u(10));
    k.proto = pk < 4 ? 6 : pk < 8 ? 17 : pk == 8 ? (f == Family::v4 ? 1 : 58) : 47;
    k.later_fragment = coin(8);
    if (!k.later_fragment && (*k.proto == 6 || *k.proto == 17)) {
        k.has_ports = true;
        k.sport = ports().lo;
        k.dport = ports().hi;
    }
    if (!k.later_fragment && *k.proto == 6)
        k.tcp_flags = uint8_t(u(256));
    return k;
}

policy::ClassLayout layout_of(const policy::CompiledDirection& cd)
{
    policy::ClassLayout l;
    if (!cd.n_rules)
        return l;
    l.valid = true;
    l.words = cd.words;
    l.agg_words = cd.agg_words;
    l.n_rules = cd.n_rules;
    const std::vector<policy::RowPrint> prints = cd.rows.prints();
    for (int f = 0; f < policy::kFieldCount; f++)
        l.field[f].assign(prints.begin() + cd.row_base[f], prints.begin() + cd.row_base[f] + cd.n_classes[f]);
    for (const policy::RuleRecord& r : cd.ranked)
        l.ids.push_back(r.id);
    return l;
}

}  // namespace xdpctl::test
