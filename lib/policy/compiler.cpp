// Policy -> CompiledPolicy: class tables per field and one bitmap row per class.
#include <algorithm>
#include <bit>
#include <cstring>
#include <string_view>
#include <unordered_map>

#include "error.h"
#include "policy/compiled_policy.h"
#include "policy/rule_parse.h"

namespace xdpctl::policy {

namespace {

using Bits = std::vector<uint64_t>;

void set_bit(Bits& b, uint32_t i) { b[i / 64] |= 1ull << (i % 64); }
void clear_bit(Bits& b, uint32_t i) { b[i / 64] &= ~(1ull << (i % 64)); }
void or_into(Bits& dst, const Bits& src)
{
    for (size_t i = 0; i < dst.size(); i++)
        dst[i] |= src[i];
}

// Gives equal bitmaps one class id: the number of classes is the number of distinct
// rule sets a field can select, whatever the number of table entries behind them.
class RowInterner {
public:
    explicit RowInterner(uint32_t words) : words_(words) {}
    uint32_t intern(const Bits& b)
    {
        std::string key(reinterpret_cast<const char*>(b.data()), b.size() * sizeof(uint64_t));
        auto [it, fresh] = ids_.try_emplace(std::move(key), uint32_t(rows_.size()));
        if (fresh) {
            if (rows_.size() >= 65535)
                fail_usage("the policy needs more than 65535 classes for one field");
            rows_.push_back(b);
        }
        return it->second;
    }
    const std::vector<Bits>& rows() const { return rows_; }

private:
    uint32_t words_;
    std::unordered_map<std::string, uint32_t> ids_;
    std::vector<Bits> rows_;
};

struct DirRules {
    std::vector<const Rule*> ranked;
    uint32_t words = 0;
    Bits empty() const { return Bits(words, 0); }
    // Bits of the rules for which `pred` holds.
    template <typename Pred>
    Bits select(Pred pred) const
    {
        Bits b = empty();
        for (uint32_t r = 0; r < ranked.size(); r++)
            if (pred(*ranked[r]))
                set_bit(b, r);
        return b;
    }
};

const AddrMatch& addr_of(const Rule& r, Field f) { return f == kFieldSrc ? r.src : r.dst; }

// The address classes of one family in one position (source or destination).
// Every prefix that a rule names or a used set holds is a node of one laminar family
// (two prefixes are nested or disjoint); sorted, they come in trie preorder, so one pass
// with a stack knows, at each node, which rule prefixes and which set memberships apply.
// The class of a node is (the deepest rule-prefix node above it, the set-membership
// mask): two numbers, however many prefixes a set holds.
AddrClassTable address_classes(const Policy& p, const DirRules& dr, Field pos, Family fam,
                               RowInterner& rows)
{
    Bits any = dr.select([&](const Rule& r) { return addr_of(r, pos).kind == AddrMatch::Kind::any; });

    std::map<Prefix, Bits> own_rules;                          // rule prefixes
    std::map<Prefix, std::vector<std::pair<int, bool>>> set_entries;  // (set index, except)
    std::vector<std::string> set_names;
    std::vector<Bits> set_rules;
    for (uint32_t r = 0; r < dr.ranked.size(); r++) {
        const AddrMatch& a = addr_of(*dr.ranked[r], pos);
        if (a.kind == AddrMatch::Kind::prefix && a.prefix.family == fam) {
            auto& b = own_rules.try_emplace(a.prefix, dr.empty()).first->second;
            set_bit(b, r);
        } else if (a.kind == AddrMatch::Kind::set) {
            auto it = std::find(set_names.begin(), set_names.end(), a.set);
            if (it == set_names.end()) {
                set_names.push_back(a.set);
                set_rules.push_back(dr.empty());
                it = set_names.end() - 1;
            }
            set_bit(set_rules[it - set_names.begin()], r);
        }
    }
    for (size_t s = 0; s < set_names.size(); s++)
        for (const auto& e : p.sets.at(set_names[s]).entries)
            if (e.prefix.family == fam)
                set_entries[e.prefix].push_back({int(s), e.except});

    std::vector<Prefix> nodes;
    for (const auto& [pfx, _] : own_rules)
        nodes.push_back(pfx);
    for (const auto& [pfx, _] : set_entries)
        nodes.push_back(pfx);
    std::sort(nodes.begin(), nodes.end());
    nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());

    // cumulative rule bits of each rule-prefix node (its own and every enclosing one)
    std::vector<Bits> cum;
    std::map<std::pair<int, uint32_t>, uint32_t> state_class;
    auto class_of = [&](int ran, uint32_t mask) {
        auto [it, fresh] = state_class.try_emplace({ran, mask}, 0);
        if (fresh) {
            Bits b = any;
            if (ran >= 0)
                or_into(b, cum[ran]);
            for (size_t s = 0; s < set_rules.size(); s++)
                if (mask & (1u << s))
                    or_into(b, set_rules[s]);
            it->second = rows.intern(b);
        }
        return it->second;
    };

    struct Frame {
        Prefix pfx;
        int ran;
        uint32_t mask;
    };
    std::vector<Frame> stack;
    AddrClassTable t;
    t.entries.reserve(nodes.size());
    for (const Prefix& n : nodes) {
        while (!stack.empty() &&
               !(stack.back().pfx.len <= n.len && stack.back().pfx.contains(fam, n.addr)))
            stack.pop_back();
        int ran = stack.empty() ? -1 : stack.back().ran;
        uint32_t mask = stack.empty() ? 0 : stack.back().mask;
        if (auto it = own_rules.find(n); it != own_rules.end()) {
            Bits b = it->second;
            if (ran >= 0)
                or_into(b, cum[ran]);
            cum.push_back(std::move(b));
            ran = int(cum.size() - 1);
        }
        if (auto it = set_entries.find(n); it != set_entries.end())
            for (auto [s, except] : it->second)
                mask = except ? mask & ~(1u << s) : mask | (1u << s);
        stack.push_back({n, ran, mask});
        t.entries.push_back({n, class_of(ran, mask)});
    }
    t.default_class = class_of(-1, 0);
    return t;
}

// Port classes over the elementary intervals that the rules' range ends cut 0-65535 into.
std::vector<uint16_t> port_classes(const DirRules& dr, Field f, RowInterner& rows,
                                   uint32_t* none_class)
{
    auto range = [f](const Rule& r) -> const PortRange& { return f == kFieldSport ? r.sport : r.dport; };
    Bits active = dr.select([&](const Rule& r) { return range(r).any(); });
    *none_class = rows.intern(active);
    // (port, +rank+1 opens / -(rank+1) closes)
    std::vector<std::pair<uint32_t, int64_t>> events;
    for (uint32_t r = 0; r < dr.ranked.size(); r++) {
        const PortRange& pr = range(*dr.ranked[r]);
        if (pr.any())
            continue;
        events.push_back({pr.lo, int64_t(r) + 1});
        events.push_back({uint32_t(pr.hi) + 1, -(int64_t(r) + 1)});
    }
    std::sort(events.begin(), events.end());
    std::vector<uint16_t> table(65536);
    size_t e = 0;
    uint32_t port = 0;
    while (port < 65536) {
        while (e < events.size() && events[e].first == port) {
            int64_t v = events[e++].second;
            if (v > 0)
                set_bit(active, uint32_t(v - 1));
            else
                clear_bit(active, uint32_t(-v - 1));
        }
        uint32_t next = e < events.size() ? std::min<uint32_t>(events[e].first, 65536) : 65536;
        uint16_t cls = uint16_t(rows.intern(active));
        std::fill(table.begin() + port, table.begin() + next, cls);
        port = next;
    }
    return table;
}

bool l4_rule_matches(const Rule& r, bool frag, uint8_t proto, uint8_t flags)
{
    if (r.proto && *r.proto != proto)
        return false;
    if (r.fragment && !frag)
        return false;
    if (!r.tcp_flags.any() && (frag || proto != 6 || (flags & r.tcp_flags.mask) != r.tcp_flags.value))
        return false;
    return true;
}

std::vector<uint16_t> l4_classes(const DirRules& dr, RowInterner& rows, uint32_t* nonip_class)
{
    *nonip_class = rows.intern(dr.select(
        [](const Rule& r) { return !r.proto && !r.fragment && r.tcp_flags.any(); }));
    std::vector<uint16_t> table(kL4TableSize);
    bool any_flag_rules = std::any_of(dr.ranked.begin(), dr.ranked.end(),
                                      [](const Rule* r) { return !r->tcp_flags.any(); });
    for (int frag = 0; frag < 2; frag++)
        for (int proto = 0; proto < 256; proto++) {
            bool per_flag = any_flag_rules && proto == 6 && !frag;
            uint16_t same = 0;
            for (int flags = 0; flags < 256; flags++) {
                if (per_flag || flags == 0)
                    same = uint16_t(rows.intern(dr.select([&](const Rule& r) {
                        return l4_rule_matches(r, frag, uint8_t(proto), uint8_t(flags));
                    })));
                table[l4_index(frag, uint8_t(proto), uint8_t(flags))] = same;
            }
        }
    return table;
}

std::vector<uint16_t> vlan_classes(const DirRules& dr, RowInterner& rows)
{
    std::vector<uint16_t> table(kVlanUntagged + 1);
    Bits untagged = dr.select([](const Rule& r) { return !r.vlan; });
    uint16_t other = uint16_t(rows.intern(untagged));
    std::fill(table.begin(), table.end(), other);
    std::map<uint16_t, Bits> tagged;
    for (uint32_t r = 0; r < dr.ranked.size(); r++)
        if (dr.ranked[r]->vlan) {
            auto& b = tagged.try_emplace(*dr.ranked[r]->vlan, untagged).first->second;
            set_bit(b, r);
        }
    for (const auto& [vid, b] : tagged)
        table[vid] = uint16_t(rows.intern(b));
    return table;
}

std::vector<uint16_t> iif_classes(const DirRules& dr, RowInterner& rows, IfindexResolver ifindex_of,
                                  uint32_t* other_class, std::map<std::string, uint32_t>& names)
{
    Bits anyif = dr.select([](const Rule& r) { return r.iif.empty(); });
    *other_class = rows.intern(anyif);
    std::vector<uint16_t> table(kIifTableSize, uint16_t(*other_class));
    std::map<uint32_t, Bits> by_index;
    for (uint32_t r = 0; r < dr.ranked.size(); r++) {
        const std::string& name = dr.ranked[r]->iif;
        if (name.empty())
            continue;
        uint32_t idx = ifindex_of(name);
        names[name] = idx;
        // An interface that does not exist (or has a huge index) matches nothing.
        if (idx == 0 || idx >= kIifTableSize)
            continue;
        set_bit(by_index.try_emplace(idx, anyif).first->second, r);
    }
    for (const auto& [idx, b] : by_index)
        table[idx] = uint16_t(rows.intern(b));
    return table;
}

CompiledDirection compile_direction(const Policy& p, Direction dir, IfindexResolver ifindex_of)
{
    DirRules dr;
    for (const Rule* r : evaluation_order(p))
        if (r->dir == dir)
            dr.ranked.push_back(r);
    CompiledDirection c;
    c.n_rules = uint32_t(dr.ranked.size());
    c.words = std::max<uint32_t>(1, (c.n_rules + 63) / 64);
    c.agg_words = (c.words + 63) / 64;
    dr.words = c.words;
    for (const Rule* r : dr.ranked)
        c.ranked.push_back({r->id, r->action.kind, r->action.rate_pps, r->action.burst});

    std::vector<RowInterner> rows(kFieldCount, RowInterner(c.words));
    c.src_v4 = address_classes(p, dr, kFieldSrc, Family::v4, rows[kFieldSrc]);
    c.src_v6 = address_classes(p, dr, kFieldSrc, Family::v6, rows[kFieldSrc]);
    c.src_nonip_class = rows[kFieldSrc].intern(
        dr.select([](const Rule& r) { return r.src.kind == AddrMatch::Kind::any; }));
    c.dst_v4 = address_classes(p, dr, kFieldDst, Family::v4, rows[kFieldDst]);
    c.dst_v6 = address_classes(p, dr, kFieldDst, Family::v6, rows[kFieldDst]);
    c.dst_nonip_class = rows[kFieldDst].intern(
        dr.select([](const Rule& r) { return r.dst.kind == AddrMatch::Kind::any; }));
    c.sport = port_classes(dr, kFieldSport, rows[kFieldSport], &c.sport_none_class);
    c.dport = port_classes(dr, kFieldDport, rows[kFieldDport], &c.dport_none_class);
    c.l4 = l4_classes(dr, rows[kFieldL4], &c.l4_nonip_class);
    c.vlan = vlan_classes(dr, rows[kFieldVlan]);
    c.iif = iif_classes(dr, rows[kFieldIif], ifindex_of, &c.iif_other_class, c.iif_index);

    uint32_t base = 0;
    for (int f = 0; f < kFieldCount; f++) {
        c.row_base[f] = base;
        c.n_classes[f] = uint32_t(rows[f].rows().size());
        base += c.n_classes[f];
    }
    c.rows.assign(size_t(base) * c.row_words(), 0);
    for (int f = 0; f < kFieldCount; f++)
        for (uint32_t k = 0; k < c.n_classes[f]; k++) {
            uint64_t* row = &c.rows[size_t(c.row_base[f] + k) * c.row_words()];
            const Bits& b = rows[f].rows()[k];
            for (uint32_t w = 0; w < c.words; w++) {
                row[c.agg_words + w] = b[w];
                if (b[w])
                    row[w / 64] |= 1ull << (w % 64);
            }
        }
    return c;
}

}  // namespace

uint32_t AddrClassTable::lookup(Family f, const std::array<uint8_t, 16>& a) const
{
    int best = -1;
    uint32_t cls = default_class;
    for (const auto& e : entries)
        if (int(e.prefix.len) > best && e.prefix.contains(f, a)) {
            best = e.prefix.len;
            cls = e.cls;
        }
    return cls;
}

CompiledPolicy compile_policy(const Policy& p, IfindexResolver ifindex_of)
{
    check_policy(p);
    CompiledPolicy c;
    c.default_action = p.default_action;
    c.dir[0] = compile_direction(p, Direction::ingress, ifindex_of);
    c.dir[1] = compile_direction(p, Direction::egress, ifindex_of);
    return c;
}

Verdict classify_compiled(const CompiledPolicy& cp, const PacketKey& k, uint32_t ifindex)
{
    const CompiledDirection& c = cp.dir[k.dir == Direction::egress ? 1 : 0];
    Verdict v;
    v.action = cp.default_action;
    if (c.n_rules == 0)
        return v;
    uint32_t cls[kFieldCount];
    if (!k.family) {
        cls[kFieldSrc] = c.src_nonip_class;
        cls[kFieldDst] = c.dst_nonip_class;
        cls[kFieldL4] = c.l4_nonip_class;
    } else {
        bool v4 = *k.family == Family::v4;
        cls[kFieldSrc] = (v4 ? c.src_v4 : c.src_v6).lookup(*k.family, k.src);
        cls[kFieldDst] = (v4 ? c.dst_v4 : c.dst_v6).lookup(*k.family, k.dst);
        cls[kFieldL4] = c.l4[l4_index(k.later_fragment, k.proto.value_or(0), k.tcp_flags.value_or(0))];
    }
    cls[kFieldSport] = k.has_ports ? c.sport[k.sport] : c.sport_none_class;
    cls[kFieldDport] = k.has_ports ? c.dport[k.dport] : c.dport_none_class;
    cls[kFieldVlan] = c.vlan[k.vlan ? *k.vlan : kVlanUntagged];
    cls[kFieldIif] = ifindex < kIifTableSize ? c.iif[ifindex] : c.iif_other_class;

    const uint64_t* row[kFieldCount];
    for (int f = 0; f < kFieldCount; f++)
        row[f] = &c.rows[size_t(c.row_base[f] + cls[f]) * c.row_words()];
    for (uint32_t a = 0; a < c.agg_words; a++) {
        uint64_t agg = ~0ull;
        for (int f = 0; f < kFieldCount; f++)
            agg &= row[f][a];
        while (agg) {
            uint32_t w = a * 64 + uint32_t(std::countr_zero(agg));
            agg &= agg - 1;
            uint64_t word = ~0ull;
            for (int f = 0; f < kFieldCount; f++)
                word &= row[f][c.agg_words + w];
            while (word) {
                uint32_t rank = w * 64 + uint32_t(std::countr_zero(word));
                word &= word - 1;
                const RuleRecord& r = c.ranked[rank];
                if (r.action == ActionKind::count || r.action == ActionKind::rate_limit) {
                    v.counted.push_back(r.id);
                    continue;
                }
                v.action = r.action;
                v.rule_id = r.id;
                return v;
            }
        }
    }
    return v;
}

}  // namespace xdpctl::policy
