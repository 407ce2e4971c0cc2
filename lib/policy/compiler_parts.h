// The compiler's own parts, shared by its files (compiler.cpp: a policy compiled whole;
// compile_delta.cpp: a compile patched where rules changed). Not an interface of the library.
#pragma once

#include <bit>
#include <cstdint>
#include <vector>

#include "policy/compiled_policy.h"
#include "policy/hash_index.h"

namespace xdpctl::policy::compiler {

using Bits = std::vector<uint64_t>;

inline void set_bit(Bits& b, uint32_t i) { b[i / 64] |= 1ull << (i % 64); }
inline void clear_bit(Bits& b, uint32_t i) { b[i / 64] &= ~(1ull << (i % 64)); }

inline uint64_t xor_hash(const Bits& b)
{
    uint64_t h = 0;
    for (uint32_t w = 0; w < b.size(); w++)
        for (uint64_t x = b[w]; x; x &= x - 1)
            h ^= bit_key(w * 64 + uint32_t(std::countr_zero(x)));
    return h;
}

inline uint32_t popcount(const Bits& b)
{
    uint32_t n = 0;
    for (uint64_t w : b)
        n += uint32_t(std::popcount(w));
    return n;
}

// A direction's rules by rank: nullptr at a free rank (rank_gaps.h), which no row holds.
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
            if (ranked[r] && pred(*ranked[r]))
                set_bit(b, r);
        return b;
    }
};

// A prefix as integers (the address's bytes big-endian in two words, then the length):
// ordered as Prefix orders one family's prefixes, compared without memcmp. The compiler's
// sweep compares ~20 of them per set entry; with 1M entries that was a third of a commit.
struct PrefixKey {
    uint64_t hi = 0, lo = 0;
    uint8_t len = 0;

    PrefixKey() = default;
    explicit PrefixKey(const Prefix& p) : len(p.len)
    {
        for (int i = 0; i < 8; i++) {
            hi = hi << 8 | p.addr[i];
            lo = lo << 8 | p.addr[8 + i];
        }
    }
    Prefix prefix(Family fam) const
    {
        Prefix p;
        p.family = fam;
        p.len = len;
        for (int i = 0; i < 8; i++) {
            p.addr[i] = uint8_t(hi >> (56 - 8 * i));
            p.addr[8 + i] = uint8_t(lo >> (56 - 8 * i));
        }
        return p;
    }
    // `o` lies inside this prefix (or is it).
    bool contains(const PrefixKey& o) const
    {
        if (len > o.len)
            return false;
        const uint64_t mhi = len >= 64 ? ~0ull : len == 0 ? 0 : ~0ull << (64 - len);
        const uint64_t mlo = len <= 64 ? 0 : len >= 128 ? ~0ull : ~0ull << (128 - len);
        return (o.hi & mhi) == hi && (o.lo & mlo) == lo;
    }
    bool operator==(const PrefixKey&) const = default;
    bool operator<(const PrefixKey& o) const
    {
        return hi != o.hi ? hi < o.hi : lo != o.lo ? lo < o.lo : len < o.len;
    }
};


inline const AddrMatch& addr_of(const Rule& r, Field f) { return f == kFieldSrc ? r.src : r.dst; }
inline const AddrMatch kNoAddr{};  // what a free rank names

inline bool l4_rule_matches(const Rule& r, bool frag, uint8_t proto, uint8_t flags)
{
    if (r.proto && *r.proto != proto)
        return false;
    if (r.fragment && !frag)
        return false;
    if (!r.tcp_flags.any() && (frag || proto != 6 || (flags & r.tcp_flags.mask) != r.tcp_flags.value))
        return false;
    return true;
}

// Whether a rule names a value in a field (is not in every row of it).
inline bool names_field(const Rule& r, Field f)
{
    switch (f) {
    case kFieldSrc: return r.src.kind != AddrMatch::Kind::any;
    case kFieldDst: return r.dst.kind != AddrMatch::Kind::any;
    case kFieldSport: return !r.sport.any();
    case kFieldDport: return !r.dport.any();
    case kFieldVlan: return r.vlan.has_value();
    case kFieldIif: return !r.iif.empty();
    case kFieldL4: return r.proto.has_value() || r.fragment || !r.tcp_flags.any();
    default: return false;
    }
}

// Per field, the rules anchored there (compiled_policy.h): the first field of kAnchorOrder
// the rule names, or L4, where a rule that names nothing is in every row; and the rules that
// name nothing in it (its base). One pass, each rule's fields looked at once.
void anchor_and_unnamed(const DirRules& dr, std::vector<Bits>& anchored, std::vector<Bits>& unnamed);

// A field's row with no extra rule, written out (RowTable::base): `base`, the rules that name
// nothing in the field, with their aggregate bits and the anchor bits of those anchored here.
inline std::vector<uint64_t> field_base_row(uint32_t words, uint32_t agg_words, const Bits& base, const Bits& anchored)
{
    std::vector<uint64_t> row(2 * agg_words + words, 0);
    for (uint32_t w = 0; w < words; w++) {
        row[2 * agg_words + w] = base[w];
        if (base[w])
            row[w / 64] |= 1ull << (w % 64);
        if (base[w] & anchored[w])
            row[agg_words + w / 64] |= 1ull << (w % 64);
    }
    return row;
}

}  // namespace xdpctl::policy::compiler
