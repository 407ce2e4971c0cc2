#include "policy/shapes.h"

#include "policy/compiled_policy.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace xdpctl::policy {

namespace {

// The prefix as value and mask words, network order, as the parser stores addresses.
void put_prefix(const Prefix& pf, __u32* value, __u32* mask)
{
    // Whole bytes, then the partial one: a loop over the bits cost ~0.7 ms of a 10,000-rule
    // compile (two 128-bit masks a rule).
    uint8_t m[16] = {};
    const unsigned len = std::min<unsigned>(pf.len, 128);
    std::memset(m, 0xff, len / 8);
    if (len % 8)
        m[len / 8] = uint8_t(0xff00u >> (len % 8));
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

// Whether a rule names a set or an interface: no small rule for it.
bool names_set_or_iif(const Rule* r)
{
    return r->src.kind == AddrMatch::Kind::set || r->dst.kind == AddrMatch::Kind::set || !r->iif.empty();
}

// A rule as the compares of the small path and of the anchor lists take it; nullopt when it
// names a set or an interface, or addresses of two IP versions.
std::optional<xdpctl_pol_small_rule> small_rule(const Rule* r)
{
    if (names_set_or_iif(r))
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
    return s;
}

// The rules as small rules, in evaluation order, or (`rank_of` not empty) each at its rank
// among `slots`, the free ranks zero: one vector of fresh memory, not a second to copy into
// (~1.3 MiB at 10,000 rules, ~15 us a page where the hypervisor tracks page tables).
std::optional<std::vector<xdpctl_pol_small_rule>> compared_rules(const std::vector<const Rule*>& ranked,
                                                                 const std::vector<uint32_t>& rank_of = {},
                                                                 uint32_t slots = 0)
{
    const bool by_rank = !rank_of.empty();
    if (by_rank && (rank_of.size() != ranked.size() || slots < ranked.size()))
        return std::nullopt;
    // A rule on a set (a 1M-prefix set's, beside 10,000 others) makes none: known before the
    // vector is made and filled (~1-3 ms of faults and copies a commit at 10,000 rules).
    if (std::any_of(ranked.begin(), ranked.end(), names_set_or_iif))
        return std::nullopt;
    std::vector<xdpctl_pol_small_rule> out(by_rank ? slots : ranked.size());
    for (size_t i = 0; i < ranked.size(); i++) {
        const auto s = small_rule(ranked[i]);
        if (!s || (by_rank && rank_of[i] >= slots))
            return std::nullopt;
        out[by_rank ? rank_of[i] : i] = *s;
    }
    return out;
}

// The ranks of row r that are anchored at its field, ascending, into `out`; `base_anchored`:
// those of the field's base (every row of the field holds them).
void anchored_ranks(const RowTable& rt, size_t r, const std::vector<uint32_t>& base_anchored,
                    std::vector<uint32_t>& out)
{
    const RowTable::Row& row = rt.rows[r];
    const uint64_t* anch = rt.anchored[row.field].data();
    out.clear();
    if (row.dense) {
        const uint64_t* b = rt.base[row.field].data() + 2 * rt.agg_words;
        for (uint32_t w = 0; w < rt.words; w++)
            for (uint64_t x = (b[w] | rt.dense[row.off + w]) & anch[w]; x; x &= x - 1)
                out.push_back(w * 64 + uint32_t(std::countr_zero(x)));
        return;
    }
    // The row's own ranks are not in its field's base: two sorted lists to merge.
    size_t i = 0;
    for (uint32_t k = 0; k < row.len; k++) {
        const uint32_t rank = rt.ranks[row.off + k];
        if (!(anch[rank / 64] >> (rank % 64) & 1))
            continue;
        while (i < base_anchored.size() && base_anchored[i] < rank)
            out.push_back(base_anchored[i++]);
        out.push_back(rank);
    }
    out.insert(out.end(), base_anchored.begin() + long(i), base_anchored.end());
}

}  // namespace

std::optional<std::vector<xdpctl_pol_small_rule>> small_rules(const std::vector<const Rule*>& ranked)
{
    if (ranked.size() > XDPCTL_POL_SMALL_MAX)
        return std::nullopt;
    return compared_rules(ranked);
}

std::optional<std::vector<xdpctl_pol_small_rule>> anchor_rules(const std::vector<const Rule*>& ranked,
                                                               const std::vector<uint32_t>& rank_of, uint32_t slots)
{
    for (const Rule* r : ranked)
        if (r->action.kind != ActionKind::drop && r->action.kind != ActionKind::pass)
            return std::nullopt;
    return compared_rules(ranked, rank_of, slots);
}

std::optional<AnchorLists> anchor_lists(const CompiledDirection& cd)
{
    const RowTable& rt = cd.rows;
    if (!cd.anchor_rules || !cd.n_rules || cd.anchor_rules->size() != cd.n_rules || !rt.well_formed())
        return std::nullopt;
    AnchorLists out;
    std::vector<uint32_t> base_anchored, list, prev;
    bool have_prev = false;
    for (int f = 0; f < kFieldCount; f++) {
        out.base[f] = XDPCTL_POL_ANC_NONE;
        const std::vector<uint64_t>& anch = rt.anchored[f];
        if (anch.size() != rt.words || std::all_of(anch.begin(), anch.end(), [](uint64_t w) { return w == 0; })) {
            if (XDPCTL_POL_SKIP_FIELDS & (1u << f))
                out.unanchored |= 1u << f;
            continue;
        }
        base_anchored.clear();
        if (rt.base[f].size() == rt.row_words()) {
            const uint64_t* b = rt.base[f].data() + 2 * rt.agg_words;
            for (uint32_t w = 0; w < rt.words; w++)
                for (uint64_t x = b[w] & anch[w]; x; x &= x - 1)
                    base_anchored.push_back(w * 64 + uint32_t(std::countr_zero(x)));
        }
        // Class c of the field is row row_base[f] + c; its rows are contiguous.
        out.base[f] = uint32_t(out.idx.size());
        for (size_t r = cd.row_base[f]; r < rt.count() && rt.rows[r].field == uint32_t(f); r++) {
            anchored_ranks(rt, r, base_anchored, list);
            if (list.size() > XDPCTL_POL_ANC_LIST_MAX || out.idx.size() >= XDPCTL_POL_ANC_IDX_ENTRIES)
                return std::nullopt;
            // Neighbouring classes often hold the same list (a port range's intervals).
            if (!have_prev || list != prev) {
                if (out.ranks.size() + list.size() > XDPCTL_POL_ANC_LIST_ENTRIES)
                    return std::nullopt;
                prev = list;
                have_prev = true;
                out.idx.push_back(list.empty() ? 0 : uint32_t(out.ranks.size()) << 8 | uint32_t(list.size()));
                out.ranks.insert(out.ranks.end(), list.begin(), list.end());
            } else {
                out.idx.push_back(out.idx.back());
            }
        }
    }
    return out;
}

int edge_rule_field(const Rule& r)
{
    const bool src = r.src.kind == AddrMatch::Kind::set, dst = r.dst.kind == AddrMatch::Kind::set;
    if (src == dst || r.src.kind == AddrMatch::Kind::prefix || r.dst.kind == AddrMatch::Kind::prefix ||
        r.proto || !r.sport.any() || !r.dport.any() || !r.tcp_flags.any() || r.vlan || !r.iif.empty() ||
        r.fragment || r.log_rate || (r.action.kind != ActionKind::drop && r.action.kind != ActionKind::pass))
        return -1;
    return src ? kFieldSrc : kFieldDst;
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
