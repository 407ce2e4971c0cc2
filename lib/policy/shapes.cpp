#include "policy/shapes.h"

#include "policy/compiled_policy.h"

#include <cstring>

namespace xdpctl::policy {

namespace {

// The prefix as value and mask words, network order, as the parser stores addresses.
void put_prefix(const Prefix& pf, __u32* value, __u32* mask)
{
    uint8_t m[16] = {};
    for (unsigned bit = 0; bit < pf.len && bit < 128; bit++)
        m[bit / 8] |= uint8_t(0x80u >> (bit % 8));
    uint8_t v[16] = {};
    for (int i = 0; i < 16; i++)
        v[i] = pf.addr[i] & m[i];
    std::memcpy(value, v, 16);
    std::memcpy(mask, m, 16);
}

uint8_t family_number(Family f)
{
    return f == Family::v4 ? 4 : 6;
}

}  // namespace

std::optional<std::vector<xdpctl_pol_small_rule>> small_rules(const std::vector<const Rule*>& ranked)
{
    if (ranked.size() > XDPCTL_POL_SMALL_MAX)
        return std::nullopt;
    std::vector<xdpctl_pol_small_rule> out;
    for (const Rule* r : ranked) {
        if (r->src.kind == AddrMatch::Kind::set || r->dst.kind == AddrMatch::Kind::set || !r->iif.empty())
            return std::nullopt;
        xdpctl_pol_small_rule s{};
        if (r->src.kind == AddrMatch::Kind::prefix) {
            s.family = family_number(r->src.prefix.family);
            put_prefix(r->src.prefix, s.src, s.src_mask);
        }
        if (r->dst.kind == AddrMatch::Kind::prefix) {
            const uint8_t f = family_number(r->dst.prefix.family);
            if (s.family && s.family != f)
                return std::nullopt;
            s.family = f;
            put_prefix(r->dst.prefix, s.dst, s.dst_mask);
        }
        if (r->proto) {
            s.flags |= XDPCTL_SMALL_F_PROTO;
            s.proto = *r->proto;
        }
        if (!r->sport.any()) {
            s.flags |= XDPCTL_SMALL_F_SPORT;
            s.sport_lo = r->sport.lo;
            s.sport_hi = r->sport.hi;
        }
        if (!r->dport.any()) {
            s.flags |= XDPCTL_SMALL_F_DPORT;
            s.dport_lo = r->dport.lo;
            s.dport_hi = r->dport.hi;
        }
        if (!r->tcp_flags.any()) {
            s.flags |= XDPCTL_SMALL_F_TCP_FLAGS;
            s.tcp_mask = r->tcp_flags.mask;
            s.tcp_value = r->tcp_flags.value;
        }
        if (r->vlan) {
            s.flags |= XDPCTL_SMALL_F_VLAN;
            s.vlan = *r->vlan;
        }
        if (r->fragment)
            s.flags |= XDPCTL_SMALL_F_FRAGMENT;
        out.push_back(s);
    }
    return out;
}

int one_address_field(const std::vector<const Rule*>& ranked)
{
    int field = -1;
    for (const Rule* r : ranked) {
        const bool src = r->src.kind != AddrMatch::Kind::any, dst = r->dst.kind != AddrMatch::Kind::any;
        if (src == dst || r->proto || !r->sport.any() || !r->dport.any() || !r->tcp_flags.any() || r->vlan ||
            !r->iif.empty() || r->fragment ||
            (r->action.kind != ActionKind::drop && r->action.kind != ActionKind::pass))
            return -1;
        const int f = src ? kFieldSrc : kFieldDst;
        if (field != -1 && field != f)
            return -1;
        field = f;
    }
    return field;
}

}  // namespace xdpctl::policy
