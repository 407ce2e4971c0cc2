#include "policy/reference_classifier.h"

namespace xdpctl::policy {

namespace {
bool addr_matches(const Policy& p, const AddrMatch& m, const PacketKey& k,
                  const std::array<uint8_t, 16>& a)
{
    switch (m.kind) {
    case AddrMatch::Kind::any:
        return true;
    case AddrMatch::Kind::prefix:
        return k.family && m.prefix.contains(*k.family, a);
    case AddrMatch::Kind::set: {
        auto it = p.sets.find(m.set);
        return k.family && it != p.sets.end() && it->second.contains(*k.family, a);
    }
    }
    return false;
}
}  // namespace

bool rule_matches(const Policy& p, const Rule& r, const PacketKey& k)
{
    if (r.dir != k.dir)
        return false;
    if (!addr_matches(p, r.src, k, k.src) || !addr_matches(p, r.dst, k, k.dst))
        return false;
    if (r.proto && (!k.proto || *k.proto != *r.proto))
        return false;
    // Ports and flags exist only where the L4 header does: never on later fragments.
    if (!r.sport.any() && (!k.has_ports || !r.sport.contains(k.sport)))
        return false;
    if (!r.dport.any() && (!k.has_ports || !r.dport.contains(k.dport)))
        return false;
    if (!r.tcp_flags.any() &&
        (!k.tcp_flags || (*k.tcp_flags & r.tcp_flags.mask) != r.tcp_flags.value))
        return false;
    if (r.vlan && (!k.vlan || *k.vlan != *r.vlan))
        return false;
    if (!r.iif.empty() && r.iif != k.iif)
        return false;
    if (r.fragment && !k.later_fragment)
        return false;
    return true;
}

Verdict classify(const Policy& p, const PacketKey& k)
{
    Verdict v;
    for (const Rule* r : evaluation_order(p)) {
        if (!rule_matches(p, *r, k))
            continue;
        if (r->action.kind == ActionKind::count || r->action.kind == ActionKind::rate_limit) {
            v.counted.push_back(r->id);
            continue;
        }
        v.action = r->action.kind;
        v.rule_id = r->id;
        return v;
    }
    v.action = p.default_action;
    return v;
}

}  // namespace xdpctl::policy
