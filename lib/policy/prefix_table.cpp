#include "policy/prefix_table.h"

#include "util/heap_pages.h"

#include <arpa/inet.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>

#include <bpf/bpf.h>

#include "util/error.h"

namespace xdpctl {

TableLayout table_layout(uint32_t abi)
{
    return abi >= 4 ? TableLayout::sparse16 : abi >= 2 ? TableLayout::sparse : TableLayout::chunks;
}

uint32_t mask4(unsigned len)
{
    return len == 0 ? 0 : ~uint32_t(0) << (32 - len);
}

Ip6 mask6(unsigned len)
{
    const uint64_t ones = ~uint64_t(0);
    if (len == 0)
        return {0, 0};
    if (len <= 64)
        return {ones << (64 - len), 0};
    return {ones, ones << (128 - len)};
}

namespace {

// Tables of up to this many sparse lines (a policy's own /24s: 10,000 rules of /32s hold
// ~7,000) place them with room between (PrefixTable::build).
constexpr uint64_t kPlacedSparseMax = 1 << 16;
// And of up to this many chunks of 1 KiB (10,000 rules of /32s hold ~7,000), their chunks.
constexpr uint64_t kPlacedChunksMax = 1 << 15;

// The chunk slots of a table that places its chunks: 6-20% over their number, in steps of
// an eighth of a power of two, so that the commits that add or remove a few chunks keep the
// slots, and with them where each chunk's home is.
uint64_t chunk_slots_for(uint64_t chunks)
{
    const uint64_t want = chunks + chunks / 16 + 1;
    const int e = std::max(0, int(std::bit_width(want)) - 4);
    return (want + (uint64_t(1) << e) - 1) >> e << e;
}

// Places `keys` (ascending) in `slots` slots in their order, each at its share of the slots
// (key * slots >> key_bits) or the nearest free one after it, or before it at the end: a key
// more or fewer moves only the keys next to it up to a free slot. `slots` >= keys.size().
std::vector<uint32_t> place_in_order(const std::vector<uint64_t>& keys, unsigned key_bits, uint64_t slots)
{
    std::vector<uint32_t> at(keys.size());
    uint64_t next = 0;
    for (size_t i = 0; i < keys.size(); i++) {
        at[i] = uint32_t(std::max(keys[i] * slots >> key_bits, next));
        next = at[i] + 1;
    }
    for (size_t i = keys.size(); i-- > 0;) {  // what ran past the end, back before it
        const uint64_t limit = i + 1 < keys.size() ? at[i + 1] - 1 : slots - 1;
        if (at[i] <= limit)
            break;
        at[i] = uint32_t(limit);
    }
    return at;
}

// Last address of the prefix: with the prefix's first address, its range in the order of
// addresses, in which prefixes nest (any two are disjoint or one contains the other).
Ip6 last6(const Prefix6& p)
{
    const Ip6 m = mask6(p.len);
    return {p.addr.hi | ~m.hi, p.addr.lo | ~m.lo};
}

Ip6 ip6_from_bytes(const uint8_t* b)
{
    Ip6 a;
    for (int i = 0; i < 8; i++) {
        a.hi = (a.hi << 8) | b[i];
        a.lo = (a.lo << 8) | b[8 + i];
    }
    return a;
}

bool valid_value(uint32_t v)
{
    return (v >= 1 && v <= XDPCTL_PFX_VALUE_MAX) || v == XDPCTL_PFX_EXCEPTED;
}

std::string value_str(uint32_t v)
{
    return v == XDPCTL_PFX_EXCEPTED ? std::string("excepted") : std::to_string(v);
}

void check_entry(const PrefixEntry4& e)
{
    if (e.prefix.len > 32)
        fail_usage("IPv4 prefix length {} is over 32", e.prefix.len);
    if (e.prefix.addr & ~mask4(e.prefix.len))
        fail_usage("{}: host bits set", to_string(Prefix4{e.prefix.addr & mask4(e.prefix.len), e.prefix.len}));
    if (!valid_value(e.value))
        fail_usage("{}: value {} out of range", to_string(e.prefix), e.value);
}

void check_entry(const PrefixEntry6& e)
{
    if (e.prefix.len > 128)
        fail_usage("IPv6 prefix length {} is over 128", e.prefix.len);
    if ((e.prefix.addr & mask6(e.prefix.len)) != e.prefix.addr)
        fail_usage("{}: host bits set", to_string(Prefix6{e.prefix.addr & mask6(e.prefix.len), e.prefix.len}));
    if (!valid_value(e.value))
        fail_usage("{}: value {} out of range", to_string(e.prefix), e.value);
}

// Sorted by (length, address), one entry per prefix. Sorting by length first is also the
// painting order of the DIR levels: a longer prefix overwrites what a shorter one wrote.
template <typename Entry>
std::vector<Entry> sorted_unique(std::span<const Entry> in)
{
    for (const Entry& e : in)
        check_entry(e);
    // By length (a stable counting sort: one pass), then by address within each length,
    // which input sorted by address (a normalized set, an address class table) already is.
    std::array<size_t, 130> at{};
    for (const Entry& e : in)
        at[e.prefix.len + 1]++;
    for (size_t len = 1; len < at.size(); len++)
        at[len] += at[len - 1];
    std::vector<Entry> v(in.size());
    for (const Entry& e : in)
        v[at[e.prefix.len]++] = e;
    const auto by_addr = [](const Entry& a, const Entry& b) { return a.prefix.addr < b.prefix.addr; };
    for (size_t begin = 0; begin < v.size();) {
        size_t end = begin;
        while (end < v.size() && v[end].prefix.len == v[begin].prefix.len)
            end++;
        if (!std::is_sorted(v.begin() + ptrdiff_t(begin), v.begin() + ptrdiff_t(end), by_addr))
            std::sort(v.begin() + ptrdiff_t(begin), v.begin() + ptrdiff_t(end), by_addr);
        begin = end;
    }
    size_t out = 0;
    for (size_t i = 0; i < v.size(); i++) {
        if (out > 0 && v[out - 1].prefix == v[i].prefix) {
            if (v[out - 1].value != v[i].value)
                fail_usage("{} is given twice, as {} and as {}", to_string(v[i].prefix),
                           value_str(v[out - 1].value), value_str(v[i].value));
            continue;
        }
        v[out++] = v[i];
    }
    v.resize(out);
    return v;
}

// ---- IPv6 plan: everything but the final placement in lines -------------------------------

struct V6Plan {
    std::vector<uint32_t> l1;  // XDPCTL_PFX6_L1_STRIDE words per /16; empty without IPv6
    std::array<uint8_t, XDPCTL_PFX6_TREE_NODES> tree{};  // heap-ordered lengths
    std::vector<xdpctl_pfx_line> buckets;
    size_t hashed = 0;
    size_t markers = 0;
    size_t slots_used = 0;
    size_t displaced = 0;
    unsigned lengths = 0;
    unsigned depth = 0;
};

// The search tree over the distinct lengths: an optimal binary search tree, weighted by how
// many prefixes have each length and limited to XDPCTL_PFX6_TREE_DEPTH levels. A lookup
// whose longest match has nothing below it stops at that prefix's node, so putting the
// common lengths (/48, /32 in real tables) near the root saves whole probes, each a cache
// miss. n <= 112 lengths: the O(depth * n^3) table takes milliseconds.
void build_tree(const std::vector<std::pair<unsigned, uint64_t>>& len_weight, V6Plan& plan)
{
    const size_t n = len_weight.size();
    plan.lengths = unsigned(n);
    if (n == 0)
        return;
    constexpr int D = XDPCTL_PFX6_TREE_DEPTH;
    constexpr uint64_t inf = std::numeric_limits<uint64_t>::max() / 4;
    std::vector<uint64_t> prefix_w(n + 1, 0);
    for (size_t i = 0; i < n; i++)
        prefix_w[i + 1] = prefix_w[i] + len_weight[i].second;
    auto idx = [n](int d, size_t i, size_t j) { return (size_t(d) * (n + 1) + i) * (n + 1) + j; };
    std::vector<uint64_t> cost(size_t(D + 1) * (n + 1) * (n + 1), inf);
    std::vector<uint8_t> root(cost.size(), 0);
    for (int d = 0; d <= D; d++)
        for (size_t i = 0; i <= n; i++)
            cost[idx(d, i, i)] = 0;
    for (int d = 1; d <= D; d++) {
        const size_t fits = (size_t(1) << d) - 1;
        for (size_t span = 1; span <= std::min(n, fits); span++) {
            for (size_t i = 0; i + span <= n; i++) {
                const size_t j = i + span;
                uint64_t best = inf;
                size_t best_r = i;
                for (size_t r = i; r < j; r++) {
                    const uint64_t c = cost[idx(d - 1, i, r)] + cost[idx(d - 1, r + 1, j)];
                    if (c < best) {
                        best = c;
                        best_r = r;
                    }
                }
                if (best < inf) {
                    cost[idx(d, i, j)] = best + prefix_w[j] - prefix_w[i];
                    root[idx(d, i, j)] = uint8_t(best_r);
                }
            }
        }
    }
    // Lay it out in heap order: node k's children are 2k (shorter) and 2k+1 (longer).
    auto place = [&](auto&& self, unsigned node, int d, size_t i, size_t j, unsigned level) -> void {
        if (i == j)
            return;
        const size_t r = root[idx(d, i, j)];
        plan.tree[node] = uint8_t(len_weight[r].first);
        plan.depth = std::max(plan.depth, level);
        self(self, 2 * node, d - 1, i, r, level + 1);
        self(self, 2 * node + 1, d - 1, r + 1, j, level + 1);
    };
    place(place, 1, D, 0, n, 1);
}

struct Item6 {
    Ip6 addr;
    uint32_t value;  // a prefix's own; for a marker, the best match covering it
    uint8_t len;
    bool real;       // a prefix (else a marker)
    uint8_t min_below = 255;  // lengths of the prefixes strictly inside, 255/0 = none yet
    uint8_t max_below = 0;
};

// Marks in a map of the 2^nbits parts of a prefix of length `len` the parts that (child,
// child_len) overlaps, with the lookup's bit extraction.
template <typename Map>
void mark_parts(Map& map, unsigned len, unsigned nbits, Ip6 child, unsigned child_len)
{
    const uint32_t first = xdpctl_pfx6_bits_after(child.hi, child.lo, len, nbits);
    const unsigned spanned = child_len >= len + nbits ? 0 : len + nbits - child_len;
    for (uint32_t i = 0; i < (1u << spanned); i++)
        map |= Map(1) << (first + i);
}

// An entry to place: one slot, or two for a prefix longer than /64 (the second slot holds
// the address's bits 64-127).
struct Entry6 {
    xdpctl_pfx6_slot head;
    uint64_t lo = 0;
    bool wide() const { return head.len > 64; }
    uint64_t hash() const { return xdpctl_pfx6_hash(head.hi, wide() ? lo : 0, head.len); }
};

// Bucketed cuckoo hashing with two choices (Pagh and Rodler; buckets of four slots, seen as
// two halves so that a long entry's two slots stay together). An entry goes to its first
// bucket whenever it can, and a first bucket whose entry had to go to its second is
// flagged: a lookup reads the second bucket only behind that flag. Returns false when the
// random walk runs too long (the caller grows the table).
class Cuckoo {
public:
    explicit Cuckoo(std::vector<xdpctl_pfx_line>& buckets)
        : b_(buckets), nb_(uint32_t(buckets.size()))
    {
        std::fill(b_.begin(), b_.end(), xdpctl_pfx_line{});
    }

    bool insert(const Entry6& e)
    {
        std::vector<Entry6> pending{e};
        uint32_t from = std::numeric_limits<uint32_t>::max();
        for (int kick = 0; !pending.empty(); kick++) {
            Entry6 cur = pending.back();
            pending.pop_back();
            const uint64_t h = cur.hash();
            const uint32_t b1 = xdpctl_pfx6_bucket(uint32_t(h), nb_);
            const uint32_t b2 = xdpctl_pfx6_bucket(uint32_t(h >> 32), nb_);
            if (put(b1, cur) || put(b2, cur))
                continue;
            if (kick > max_kicks)
                return false;
            // Evict one half of one of its buckets (not the one it was just pushed out of).
            const uint64_t r = next_rand();
            uint32_t b = (r & 1) ? b1 : b2;
            if (b == from)
                b = (b == b1) ? b2 : b1;
            const unsigned half = unsigned(r >> 1) & 1;
            for (unsigned k = 2 * half; k < 2 * half + 2; k++) {
                xdpctl_pfx6_slot& sl = b_[b].slot[k];
                if (sl.len == 0)
                    continue;
                Entry6 out{sl, 0};
                if (out.wide() && k + 1 < XDPCTL_PFX6_SLOTS) {
                    out.lo = b_[b].slot[k + 1].hi;
                    b_[b].slot[k + 1] = xdpctl_pfx6_slot{};
                }
                sl = xdpctl_pfx6_slot{};
                pending.push_back(out);
            }
            if (!put(b, cur))
                return false;  // cannot happen: the half is free
            from = b;
        }
        return true;
    }

    bool put_first(const Entry6& e) { return put(first(e), e); }

    // Kicks leave entries in their second bucket while their first has room again; then
    // flag the first buckets of those that stay. Returns how many stay.
    size_t settle()
    {
        for (uint32_t b = 0; b < nb_; b++)
            for (unsigned k = 0; k < XDPCTL_PFX6_SLOTS; k++) {
                const Entry6 e = at(b, k);
                if (e.head.len == 0 || first(e) == b)
                    continue;
                if (put(first(e), e))
                    clear(b, k);
            }
        size_t displaced = 0;
        for (auto& line : b_)
            line.slot[0].flags &= uint8_t(~XDPCTL_PFX6_F_DISPLACED);
        for (uint32_t b = 0; b < nb_; b++)
            for (unsigned k = 0; k < XDPCTL_PFX6_SLOTS; k++) {
                const Entry6 e = at(b, k);
                if (e.head.len != 0 && first(e) != b) {
                    b_[first(e)].slot[0].flags |= XDPCTL_PFX6_F_DISPLACED;
                    displaced++;
                }
            }
        return displaced;
    }

private:
    static constexpr int max_kicks = 4000;

    uint32_t first(const Entry6& e) const { return xdpctl_pfx6_bucket(uint32_t(e.hash()), nb_); }

    Entry6 at(uint32_t b, unsigned k) const
    {
        Entry6 e{b_[b].slot[k], 0};
        if (e.head.len != 0 && e.wide() && k + 1 < XDPCTL_PFX6_SLOTS)
            e.lo = b_[b].slot[k + 1].hi;
        return e;
    }

    void clear(uint32_t b, unsigned k)
    {
        const bool wide = b_[b].slot[k].len > 64;
        const uint8_t keep = k == 0 ? (b_[b].slot[0].flags & XDPCTL_PFX6_F_DISPLACED) : 0;
        b_[b].slot[k] = xdpctl_pfx6_slot{};
        b_[b].slot[k].flags = keep;
        if (wide && k + 1 < XDPCTL_PFX6_SLOTS)
            b_[b].slot[k + 1] = xdpctl_pfx6_slot{};
    }

    bool free_slot(uint32_t b, unsigned k) const
    {
        return b_[b].slot[k].len == 0 && !(b_[b].slot[k].flags & XDPCTL_PFX6_F_TAIL);
    }

    bool put(uint32_t b, const Entry6& e)
    {
        for (unsigned k = 0; k < XDPCTL_PFX6_SLOTS; k += e.wide() ? 2 : 1) {
            if (!free_slot(b, k) || (e.wide() && (k + 1 >= XDPCTL_PFX6_SLOTS || !free_slot(b, k + 1))))
                continue;
            const uint8_t keep = k == 0 ? (b_[b].slot[0].flags & XDPCTL_PFX6_F_DISPLACED) : 0;
            b_[b].slot[k] = e.head;
            b_[b].slot[k].flags = keep;
            if (e.wide() && k + 1 < XDPCTL_PFX6_SLOTS) {
                b_[b].slot[k + 1] = xdpctl_pfx6_slot{};
                b_[b].slot[k + 1].hi = e.lo;
                b_[b].slot[k + 1].flags = XDPCTL_PFX6_F_TAIL;
            }
            return true;
        }
        return false;
    }

    uint64_t next_rand()
    {
        rng_ ^= rng_ << 13;
        rng_ ^= rng_ >> 7;
        rng_ ^= rng_ << 17;
        return rng_;
    }

    std::vector<xdpctl_pfx_line>& b_;
    uint32_t nb_;
    uint64_t rng_ = 0x2545f4914f6cdd1dULL;
};

V6Plan plan_v6(const std::vector<PrefixEntry6>& v6)
{
    V6Plan plan;
    if (v6.empty())
        return plan;

    // Level 1: /0-/16 painted shortest first (v6 is sorted by length), then every /16
    // under which a longer prefix lives gets the REF bit, the range of those lengths and
    // the map of the 64ths of the /16 they lie in (an address in an empty 64th is done).
    constexpr unsigned W = XDPCTL_PFX6_L1_STRIDE;
    plan.l1.assign(W * XDPCTL_PFX_L1_ENTRIES, 0);
    std::vector<uint8_t> shortest(XDPCTL_PFX_L1_ENTRIES, 255), longest(XDPCTL_PFX_L1_ENTRIES, 0);
    std::vector<uint64_t> map(XDPCTL_PFX_L1_ENTRIES, 0);
    std::array<uint64_t, 129> per_len{};  // by length
    for (const PrefixEntry6& e : v6) {
        const unsigned top = unsigned(e.prefix.addr.hi >> 48);
        if (e.prefix.len <= 16) {
            for (unsigned k = 0; k < (1u << (16 - e.prefix.len)); k++)
                plan.l1[W * (top + k)] = e.value;
            continue;
        }
        plan.l1[W * top] |= XDPCTL_PFX_REF;
        shortest[top] = std::min<uint8_t>(shortest[top], e.prefix.len);
        longest[top] = std::max<uint8_t>(longest[top], e.prefix.len);
        mark_parts(map[top], 16, 6, e.prefix.addr, e.prefix.len);
        per_len[e.prefix.len]++;
        plan.hashed++;
    }
    for (unsigned top = 0; top < XDPCTL_PFX_L1_ENTRIES; top++) {
        if (!longest[top])
            continue;
        plan.l1[W * top + 1] = shortest[top] | uint32_t(longest[top]) << 8;
        plan.l1[W * top + 2] = uint32_t(map[top]);
        plan.l1[W * top + 3] = uint32_t(map[top] >> 32);
    }
    if (plan.hashed == 0)
        return plan;

    std::vector<std::pair<unsigned, uint64_t>> len_weight;
    for (unsigned len = 17; len <= 128; len++)
        if (per_len[len])
            len_weight.emplace_back(len, per_len[len]);
    build_tree(len_weight, plan);

    // Every prefix, plus a marker at each tree node where the search for the prefix's own
    // length turns to longer lengths: without it, a search for an address under the prefix
    // would miss there and turn the wrong way.
    std::vector<Item6> items;
    items.reserve(v6.size() * 2);
    for (const PrefixEntry6& e : v6) {
        items.push_back({e.prefix.addr, e.value, e.prefix.len, true});
        if (e.prefix.len <= 16)
            continue;
        unsigned node = 1;
        while (node < XDPCTL_PFX6_TREE_NODES && plan.tree[node] != 0 && plan.tree[node] != e.prefix.len) {
            const unsigned nl = plan.tree[node];
            if (e.prefix.len > nl) {
                items.push_back({e.prefix.addr & mask6(nl), XDPCTL_PFX_NONE, uint8_t(nl), false});
                node = 2 * node + 1;
            } else {
                node = 2 * node;
            }
        }
    }
    // Address order, shorter first on a tie: a prefix then comes before everything inside
    // it, and what encloses an item is a stack of still-open ranges.
    std::sort(items.begin(), items.end(), [](const Item6& a, const Item6& b) {
        return a.addr != b.addr ? a.addr < b.addr : a.len < b.len;
    });
    size_t out = 0;
    for (size_t i = 0; i < items.size(); i++) {
        if (out > 0 && items[out - 1].addr == items[i].addr && items[out - 1].len == items[i].len) {
            if (items[i].real)
                items[out - 1] = items[i];
            continue;
        }
        items[out++] = items[i];
    }
    items.resize(out);

    // One sweep: a marker answers with the longest prefix enclosing it (Waldvogel's
    // precomputed "bmp", so a search that a marker led into longer lengths still ends
    // right), and each item learns the lengths inside it as its children close.
    std::vector<size_t> open;
    auto close_top = [&] {
        const Item6& c = items[open.back()];
        open.pop_back();
        if (open.empty())
            return;
        Item6& parent = items[open.back()];
        parent.min_below = std::min({parent.min_below, c.min_below, c.real ? c.len : uint8_t(255)});
        parent.max_below = std::max({parent.max_below, c.max_below, c.real ? c.len : uint8_t(0)});
    };
    for (size_t k = 0; k < items.size(); k++) {
        while (!open.empty() && last6({items[open.back()].addr, items[open.back()].len}) < items[k].addr)
            close_top();
        if (!items[k].real)
            items[k].value = open.empty() ? XDPCTL_PFX_NONE : items[open.back()].value;
        open.push_back(k);
    }
    while (!open.empty())
        close_top();

    std::vector<Entry6> entries;
    entries.reserve(items.size());
    size_t slots = 0;
    for (const Item6& it : items) {
        if (it.len <= 16)
            continue;
        Entry6 en;
        en.head.hi = it.addr.hi;
        en.head.value = it.value;
        en.head.len = it.len;
        en.head.min_below = it.max_below ? it.min_below : 0;
        en.head.max_below = it.max_below;
        en.lo = it.addr.lo;
        entries.push_back(en);
        slots += en.wide() ? 2 : 1;
        if (!it.real)
            plan.markers++;
    }
    plan.slots_used = slots;

    // Slots ~3/4 full: four-slot buckets with two choices fill past 95% before the random
    // walk fails, but the fuller they are the more entries miss their first bucket, which
    // costs a lookup a second read. Bucket counts need not be powers of two, so memory
    // follows the entries: ~21 bytes an entry.
    uint64_t nb = std::max<uint64_t>(1, (slots + 2) / 3);
    for (;; nb += nb / 8 + 1) {
        if (nb > std::numeric_limits<uint32_t>::max() / 2)
            fail_usage("IPv6 prefix hash cannot be built ({} entries)", entries.size());
        plan.buckets.resize(nb);
        Cuckoo c(plan.buckets);
        // First every entry that finds room in its first bucket, then the rest: the random
        // walk then moves as few entries out of their first bucket as it can.
        std::vector<const Entry6*> rest;
        for (const Entry6& en : entries)
            if (!c.put_first(en))
                rest.push_back(&en);
        bool ok = true;
        for (const Entry6* en : rest)
            if (!(ok = c.insert(*en)))
                break;
        if (!ok)
            continue;
        plan.displaced = c.settle();
        break;
    }
    return plan;
}

// The lines of a table being built: memory of its own, or a map's through windows. Past
// the head (level 1, IPv6), the build writes 1 KiB chunks and sparse lines in a few
// ascending streams (build: chunks are painted one /16 after the other, new chunks and
// sparse lines made in order), so 16 windows of 1 MiB, the least recently used one
// unmapped first, hold what it touches. A window unmapped loses nothing (the lines are in
// the map) and is mapped again when needed; should that happen often, windows are no
// longer unmapped until the end (as if the map were mapped whole, which would make all of
// it resident in this process: the kernel maps an array's pages at mmap time).
class LineSpace {
public:
    explicit LineSpace(std::span<xdpctl_pfx_line> own) : all_(own.data()), head_(own.data()) {}
    // Lines [0, head_lines) stay mapped throughout.
    LineSpace(int map_fd, uint64_t lines, uint64_t head_lines)
        : fd_(map_fd), map_bytes_(page_up(lines * sizeof(xdpctl_pfx_line))),
          head_bytes_(page_up(std::max<uint64_t>(head_lines, 1) * sizeof(xdpctl_pfx_line))),
          base_of_((lines + kWindowLines - 1) / kWindowLines, nullptr), used_of_(base_of_.size(), 0),
          seen_(base_of_.size(), false)
    {
        head_ = static_cast<xdpctl_pfx_line*>(map(0, head_bytes_));
    }
    ~LineSpace()
    {
        if (all_)
            return;
        munmap(head_, head_bytes_);
        for (const uint64_t k : mapped_)
            munmap(base_of_[k], window_bytes(k));
    }
    LineSpace(const LineSpace&) = delete;
    LineSpace& operator=(const LineSpace&) = delete;

    // Lines [0, head_lines): IPv4 and IPv6 level 1, the tree, the buckets.
    xdpctl_pfx_line* head() const { return head_; }
    uint32_t* head_words() const { return head_->word; }
    // Line `i`, and those after it up to the next multiple of 16 (a chunk is never split).
    // Stays valid over the next call (its window is then not the least recently used).
    xdpctl_pfx_line* line(uint64_t i)
    {
        if (all_)
            return all_ + i;
        const uint64_t k = i / kWindowLines;
        xdpctl_pfx_line* base = base_of_[k];
        if (!base) [[unlikely]]
            base = map_window(k);
        used_of_[k] = ++clock_;
        return base + (i - k * kWindowLines);
    }

private:
    static constexpr uint64_t kWindowBytes = uint64_t(1) << 20;
    static constexpr uint64_t kWindowLines = kWindowBytes / sizeof(xdpctl_pfx_line);
    static_assert(kWindowLines % XDPCTL_PFX_CHUNK_LINES == 0);
    static uint64_t page_up(uint64_t bytes)
    {
        const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
        return (bytes + page - 1) / page * page;
    }
    // Maps window `k`, unmapping the least recently used one if as many as allowed are.
    [[gnu::noinline]] xdpctl_pfx_line* map_window(uint64_t k)
    {
        if (seen_[k] && ++remapped_ > base_of_.size() / 4 + 4)
            max_windows_ = base_of_.size();  // thrashing: keep what is mapped
        seen_[k] = true;
        if (mapped_.size() >= max_windows_) {
            size_t v = 0;
            for (size_t j = 1; j < mapped_.size(); j++)
                if (used_of_[mapped_[j]] < used_of_[mapped_[v]])
                    v = j;
            munmap(base_of_[mapped_[v]], window_bytes(mapped_[v]));
            base_of_[mapped_[v]] = nullptr;
            mapped_[v] = mapped_.back();
            mapped_.pop_back();
        }
        base_of_[k] = static_cast<xdpctl_pfx_line*>(map(k * kWindowBytes, window_bytes(k)));
        mapped_.push_back(k);
        return base_of_[k];
    }
    uint64_t window_bytes(uint64_t k) const { return std::min(kWindowBytes, map_bytes_ - k * kWindowBytes); }
    void* map(uint64_t at, uint64_t bytes) const
    {
        void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, off_t(at));
        if (p == MAP_FAILED)
            fail("cannot map {} KiB of a prefix table's map at {} KiB: {}", bytes >> 10, at >> 10, errno_str(errno));
        return p;
    }

    xdpctl_pfx_line* all_ = nullptr;  // memory of the table's own, or null
    int fd_ = -1;
    uint64_t map_bytes_ = 0, head_bytes_ = 0;
    xdpctl_pfx_line* head_ = nullptr;
    // By window index: where it is mapped (null: not), when last used, whether it was before.
    std::vector<xdpctl_pfx_line*> base_of_;
    std::vector<uint64_t> used_of_;
    std::vector<bool> seen_;
    std::vector<uint64_t> mapped_;  // the indexes of the windows mapped
    // At least two: the build holds a reference into one window while it reaches into
    // another. Sixteen: a stream for chunks first made at each of /17-/24, the new chunks,
    // the sparse lines, and room to spare.
    size_t max_windows_ = 16;
    size_t remapped_ = 0;
    uint64_t clock_ = 0;
};

}  // namespace

namespace {

// A sparse line over the last `bits` address bits (8: a sparse /24, XDPCTL_PFX_SPARSE; 16: a
// sparse /16, XDPCTL_PFX_SPARSE16_STARTS) of `group`'s prefixes (in length order), under
// what the level above says, `parent`: the line, and how many runs follow the first (0: the
// whole range is `value`, which the level above then holds).
struct SparseRuns {
    xdpctl_pfx_line line{};
    unsigned runs = 0;
    uint32_t value = 0;
};

SparseRuns sparse_runs(std::span<const PrefixEntry4> group, unsigned bits, uint32_t parent)
{
    const bool wide = bits == 16;
    const uint32_t mask = (uint32_t(1) << bits) - 1;
    const unsigned n_starts = wide ? XDPCTL_PFX_SPARSE16_STARTS : XDPCTL_PFX_SPARSE_STARTS;
    const unsigned value_word = wide ? XDPCTL_PFX_SPARSE16_VALUE_WORD : XDPCTL_PFX_SPARSE_VALUE_WORD;
    const unsigned n_runs = wide ? XDPCTL_PFX_SPARSE16_RUNS : XDPCTL_PFX_SPARSE_RUNS;
    // A run can start only where a prefix starts or ends: the value at each such address is
    // the longest prefix covering it (the last, in length order), else the parent's.
    std::array<uint32_t, 2 * std::max(XDPCTL_PFX_SPARSE_PREFIXES, XDPCTL_PFX_SPARSE16_PREFIXES) + 1> starts;
    size_t n = 0;
    starts[n++] = 0;
    for (const PrefixEntry4& e : group) {
        const uint32_t lo = e.prefix.addr & mask, hi = lo + (uint32_t(1) << (32 - e.prefix.len));
        starts[n++] = lo;
        if (hi <= mask)
            starts[n++] = hi;
    }
    for (size_t i = 1; i < n; i++)  // insertion sort: at most 13
        for (size_t j = i; j > 0 && starts[j - 1] > starts[j]; j--)
            std::swap(starts[j - 1], starts[j]);
    SparseRuns out;
    auto set_start = [&](unsigned k, uint32_t start) {
        if (wide)
            out.line.half[k] = uint16_t(start);
        else
            out.line.byte[k] = uint8_t(start);
    };
    for (unsigned k = 0; k < n_starts; k++)
        set_start(k, mask);  // past the last run (only the last address counts these: the words past the last run repeat its value)
    for (size_t j = 0; j < n; j++) {
        uint32_t v = parent;
        for (const PrefixEntry4& e : group)
            if (const uint32_t lo = e.prefix.addr & mask; starts[j] >= lo && starts[j] - lo < (uint32_t(1) << (32 - e.prefix.len)))
                v = e.value;
        if (j == 0) {
            out.value = v;
            out.line.word[value_word] = v;
        } else if (v != out.value) {
            out.runs++;  // at most 2 * the prefixes a line holds
            set_start(out.runs - 1, starts[j]);
            out.line.word[value_word + out.runs] = out.value = v;
        }
    }
    for (unsigned r = out.runs + 1; r < n_runs; r++)  // past the last run, its value again
        out.line.word[value_word + r] = out.value;
    return out;
}

}  // namespace

PrefixTable PrefixTable::build(std::span<const PrefixEntry4> v4_in, std::span<const PrefixEntry6> v6_in,
                               const PrefixTableLimits& limits, const PrefixLineSink& sink)
{
    const std::vector<PrefixEntry4> v4 = sorted_unique(v4_in);
    const std::vector<PrefixEntry6> v6 = sorted_unique(v6_in);
    PrefixTable t;
    PrefixTableStats& st = t.stats_;
    st.v4_prefixes = v4.size();
    st.v6_prefixes = v6.size();

    const auto past24 = std::partition_point(v4.begin(), v4.end(), [](const PrefixEntry4& e) { return e.prefix.len <= 24; });
    const auto past16 = std::partition_point(v4.begin(), past24, [](const PrefixEntry4& e) { return e.prefix.len <= 16; });
    // The /16s that are one sparse line each (abi: XDPCTL_PFX_SPARSE16_STARTS): those with
    // at most XDPCTL_PFX_SPARSE16_PREFIXES longer prefixes. Their prefixes (by /16, by
    // length within it) make no chunk and no /24 line.
    std::vector<uint64_t> sparse16_bits;
    std::vector<PrefixEntry4> in16;
    if (limits.sparse16) {
        std::vector<uint8_t> longer(XDPCTL_PFX_L1_ENTRIES, 0);  // saturating past the limit
        for (auto it = past16; it != v4.end(); ++it)
            if (uint8_t& c = longer[it->prefix.addr >> 16]; c <= XDPCTL_PFX_SPARSE16_PREFIXES)
                c++;
        sparse16_bits.assign(XDPCTL_PFX_L1_ENTRIES / 64, 0);
        for (uint32_t x = 0; x < XDPCTL_PFX_L1_ENTRIES; x++)
            if (longer[x] && longer[x] <= XDPCTL_PFX_SPARSE16_PREFIXES) {
                sparse16_bits[x >> 6] |= uint64_t(1) << (x & 63);
                st.v4_sparse16++;
            }
    }
    const auto is_sparse16 = [&](uint32_t addr) {
        return !sparse16_bits.empty() && (sparse16_bits[addr >> 22] >> ((addr >> 16) & 63) & 1);
    };
    if (st.v4_sparse16) {
        for (auto it = past16; it != v4.end(); ++it)
            if (is_sparse16(it->prefix.addr))
                in16.push_back(*it);
        std::stable_sort(in16.begin(), in16.end(), [](const PrefixEntry4& a, const PrefixEntry4& b) {
            return (a.prefix.addr >> 16) < (b.prefix.addr >> 16);
        });
    }
    // The prefixes past /24 (of the other /16s) by their /24 (and by length within it, as
    // sorted): each /24's third level is painted on its own, dense or sparse.
    // Sorted by length then address, they are grouped by /24 already when all are of one
    // length (a block list of /32s): then no copy.
    const auto by_24 = [](const PrefixEntry4& a, const PrefixEntry4& b) { return (a.prefix.addr >> 8) < (b.prefix.addr >> 8); };
    std::vector<PrefixEntry4> regrouped;
    std::span<const PrefixEntry4> by24(past24, v4.end());
    if (st.v4_sparse16) {
        for (const PrefixEntry4& e : by24)
            if (!is_sparse16(e.prefix.addr))
                regrouped.push_back(e);
        by24 = regrouped;
    }
    if (!std::is_sorted(by24.begin(), by24.end(), by_24)) {
        if (by24.data() != regrouped.data())
            regrouped.assign(by24.begin(), by24.end());
        std::stable_sort(regrouped.begin(), regrouped.end(), by_24);
        by24 = regrouped;
    }
    // Where each /24's prefixes begin in by24 (4 bytes a group: there may be a million).
    // A /24 with few of them is a sparse line (abi: XDPCTL_PFX_SPARSE).
    const auto sparse_group = [&](size_t prefixes) { return limits.sparse && prefixes <= XDPCTL_PFX_SPARSE_PREFIXES; };
    std::vector<uint32_t> group_at;
    for (size_t i = 0; i < by24.size();) {
        size_t j = i;
        while (j < by24.size() && (by24[j].prefix.addr >> 8) == (by24[i].prefix.addr >> 8))
            j++;
        group_at.push_back(uint32_t(i));
        (sparse_group(j - i) ? st.v4_sparse_chunks : st.v4_l3_chunks)++;
        i = j;
    }
    group_at.push_back(uint32_t(by24.size()));
    // Where each sparse line goes, from the table's first sparse line (by group; dense
    // groups have none). A table a commit refills in place (one of up to
    // kPlacedSparseMax lines: the rules' own /32s) has them in address order, each at its
    // /24's share of a span with room (`cap`, a power of two, ~1.25-2.5 times their number),
    // or the first free line after it: one /24 more or fewer moves only the lines up to
    // the next gap, where packed lines moved every line after it and the level-2 word of
    // each (a new /32 among 10,000 rewrote ~1.7-4 MiB of a 9.4 MiB table). The layout is
    // a function of the /24s alone, so a build from scratch makes the same lines. Larger
    // tables (a set's) keep them packed: room would cost them up to as much again.
    // Sparse /16s among them, in address order at the place of their first /24.
    std::vector<uint32_t> sparse_at(group_at.size() - 1, 0);
    std::vector<std::pair<uint32_t, uint32_t>> sparse16_at;  // (/16, line), ascending
    uint64_t sparse_span = 0;
    const uint64_t sparse_lines = st.v4_sparse_chunks + st.v4_sparse16;
    const uint64_t cap = sparse_lines <= kPlacedSparseMax ? std::bit_ceil(sparse_lines * 5 / 4 + 1) : 0;
    {
        const auto place = [&](uint64_t key24) {
            const uint64_t at = std::max(cap ? key24 * cap >> 24 : 0, sparse_span);
            sparse_span = at + 1;
            return uint32_t(at);
        };
        size_t next16 = 0;  // in in16
        const auto sparse16_upto = [&](uint64_t key24) {
            for (; next16 < in16.size() && uint64_t(in16[next16].prefix.addr >> 16) << 8 < key24;) {
                const uint32_t x = in16[next16].prefix.addr >> 16;
                sparse16_at.emplace_back(x, place(uint64_t(x) << 8));
                while (next16 < in16.size() && in16[next16].prefix.addr >> 16 == x)
                    next16++;
            }
        };
        for (size_t gi = 0; gi + 1 < group_at.size(); gi++) {
            if (!sparse_group(group_at[gi + 1] - group_at[gi]))
                continue;
            const uint64_t key24 = by24[group_at[gi]].prefix.addr >> 8;
            sparse16_upto(key24);
            sparse_at[gi] = place(key24);
        }
        sparse16_upto(uint64_t(1) << 24);
    }
    // Count the level-2 chunks first, so the lines are allocated once, at their final size.
    std::vector<uint64_t> has16(XDPCTL_PFX_L1_ENTRIES / 64, 0);  // the /16s with a chunk
    {
        for (const PrefixEntry4& e : v4) {
            const uint32_t a = e.prefix.addr;
            if (e.prefix.len > 16 && !is_sparse16(a)) {
                uint64_t& w = has16[a >> 22];
                st.v4_l2_chunks += !(w & (uint64_t(1) << ((a >> 16) & 63)));
                w |= uint64_t(1) << ((a >> 16) & 63);
            }
        }
    }
    const V6Plan p6 = plan_v6(v6);
    const uint64_t v4_chunks = st.v4_l2_chunks + st.v4_l3_chunks;
    // Where each chunk goes. A table a commit refills in place (a policy's: up to
    // kPlacedChunksMax chunks) has them in address order (a /16's level 2 before its /24s'
    // third levels), each at its share of chunk_slots_for() slots or the nearest free slot
    // after it, the way its sparse lines are placed: a new /16 or dense /24 moves the chunks
    // up to the next free slot, where packed chunks moved every chunk after it, the sparse
    // lines after them all, and the level-2 words naming those (a /32 in a new /16 among
    // 10,000 rules rewrote ~9.9 MiB of a 10 MiB table). Other tables number them as they
    // are made, packed.
    const bool place_chunks = v4_chunks <= kPlacedChunksMax && st.v4_sparse_chunks <= kPlacedSparseMax;
    const uint64_t chunk_slots = place_chunks ? chunk_slots_for(v4_chunks) : v4_chunks;
    std::vector<uint32_t> l2_slot, l3_slot;  // by /16; by /24 group (dense ones)
    if (place_chunks) {
        // Keys in /24 units, doubled: a /16's level 2 just before the third level of its
        // first /24.
        std::vector<uint64_t> keys;
        std::vector<int64_t> whose;  // >= 0: the /16; < 0: -1 - the group
        keys.reserve(v4_chunks);
        whose.reserve(v4_chunks);
        size_t gi = 0;
        auto dense_groups_upto = [&](uint64_t key) {
            for (; gi + 1 < group_at.size(); gi++) {
                if (sparse_group(group_at[gi + 1] - group_at[gi]))
                    continue;
                const uint64_t k = uint64_t(by24[group_at[gi]].prefix.addr >> 8) * 2 + 1;
                if (k > key)
                    return;
                keys.push_back(k);
                whose.push_back(-1 - int64_t(gi));
            }
        };
        for (uint32_t wi = 0; wi < has16.size(); wi++)
            for (uint64_t bits = has16[wi]; bits; bits &= bits - 1) {
                const uint32_t x = wi * 64 + uint32_t(std::countr_zero(bits));
                const uint64_t k = uint64_t(x) << 9;
                dense_groups_upto(k);
                keys.push_back(k);
                whose.push_back(x);
            }
        dense_groups_upto(UINT64_MAX);
        const std::vector<uint32_t> at = place_in_order(keys, 25, chunk_slots);
        l2_slot.assign(XDPCTL_PFX_L1_ENTRIES, 0);
        l3_slot.assign(group_at.size(), 0);
        for (size_t i = 0; i < keys.size(); i++)
            (whose[i] >= 0 ? l2_slot[size_t(whose[i])] : l3_slot[size_t(-1 - whose[i])]) = at[i];
    }
    // The sparse lines right after the IPv6 buckets, in a span of their own (placed: all of
    // `cap`), then the chunks: a chunk more or fewer moves no sparse line. (Chunks first, a
    // policy of a few chunks and many sparse /16s had every line and level-1 word move each
    // time its chunk slots grew: 1.25 MiB written by a `rule add` at 10,000 rules.)
    const uint64_t sparse_line = XDPCTL_PFX6_BUCKET_LINE + p6.buckets.size();
    const uint64_t chunk_line = (sparse_line + std::max(cap, sparse_span) + XDPCTL_PFX_CHUNK_LINES - 1) /
                                XDPCTL_PFX_CHUNK_LINES * XDPCTL_PFX_CHUNK_LINES;
    const uint64_t first_chunk = chunk_line / XDPCTL_PFX_CHUNK_LINES;
    const uint64_t lines = chunk_line + chunk_slots * XDPCTL_PFX_CHUNK_LINES;
    st.bytes = lines * XDPCTL_PFX_LINE_BYTES;
    if (st.bytes > limits.max_bytes || first_chunk + chunk_slots > XDPCTL_PFX_CHUNK_MASK ||
        (st.v4_sparse_chunks + st.v4_sparse16 && lines > XDPCTL_PFX_CHUNK_MASK) ||
        lines > std::numeric_limits<uint32_t>::max())
        fail_usage("the prefix table would take {} MiB, over the {} MiB limit ({} IPv4 chunks of 1 KiB, "
                   "{} of 64 bytes, {} IPv6 buckets of 64 bytes)",
                   st.bytes >> 20, limits.max_bytes >> 20, v4_chunks, st.v4_sparse_chunks, p6.buckets.size());
    st.v6_hashed = p6.hashed;
    st.v6_markers = p6.markers;
    st.v6_buckets = p6.buckets.size();
    st.v6_displaced = p6.displaced;
    st.v6_lengths = p6.lengths;
    st.v6_tree_depth = p6.depth;

    // All words XDPCTL_PFX_NONE (0): value-initialised, or a sink's new map.
    const int sink_fd = sink ? sink(lines) : -1;
    if (sink_fd < 0)
        t.lines_.resize(lines);
    t.sunk_ = sink_fd >= 0;
    std::optional<LineSpace> space;
    if (t.sunk_)
        space.emplace(sink_fd, lines, sparse_line);
    else
        space.emplace(std::span<xdpctl_pfx_line>(t.lines_));
    // The head as one flat run of words (the union's word view), as the lookup sees them;
    // a chunk's words likewise.
    uint32_t* w = space->head_words();
    auto chunk_words = [&](uint32_t c) { return space->line(uint64_t(c) * XDPCTL_PFX_CHUNK_LINES)->word; };

    // IPv4, shortest first: a prefix overwrites the part of its range that shorter ones
    // painted (controlled prefix expansion), and a chunk created under an entry starts as
    // a copy of that entry's leaf, so what the shorter prefixes said is inherited.
    uint32_t next_chunk = uint32_t(first_chunk);
    const auto new_l2 = [&](uint32_t x) { return place_chunks ? uint32_t(first_chunk + l2_slot[x]) : next_chunk++; };
    const auto new_l3 = [&](size_t gi) { return place_chunks ? uint32_t(first_chunk + l3_slot[gi]) : next_chunk++; };
    // The chunk `entry` refers to, made by `make` (from what `entry` said) if none.
    auto chunk_under = [&](uint32_t& entry, auto&& make) -> uint32_t {
        if (entry & XDPCTL_PFX_REF)
            return entry & XDPCTL_PFX_CHUNK_MASK;
        const uint32_t c = make();
        std::fill_n(chunk_words(c), XDPCTL_PFX_CHUNK_WORDS, entry);
        entry = XDPCTL_PFX_REF | c;
        return c;
    };
    for (auto it = v4.begin(); it != past16; ++it)
        std::fill_n(w + XDPCTL_PFX4_L1_WORD + (it->prefix.addr >> 16), size_t(1) << (16 - it->prefix.len), it->value);
    // /17-/24: their chunks are numbered in (length, address) order, the layout's, but
    // painted one /16 after the other (each in length order, so the result is the same),
    // in step with the /24 groups below: painting length after length would sweep every
    // chunk made so far once a length, and a table built in its map would need all of it
    // mapped (LineSpace).
    std::vector<uint32_t> leaf(chunk_slots);  // chunk - first_chunk -> the level-1 entry it replaced
    std::vector<uint32_t> at16(XDPCTL_PFX_L1_ENTRIES + 1, 0);
    for (auto it = past16; it != past24; ++it) {
        if (is_sparse16(it->prefix.addr))
            continue;
        uint32_t& entry = w[XDPCTL_PFX4_L1_WORD + (it->prefix.addr >> 16)];
        if (!(entry & XDPCTL_PFX_REF)) {
            const uint32_t c = new_l2(it->prefix.addr >> 16);
            leaf[c - first_chunk] = entry;
            entry = XDPCTL_PFX_REF | c;
        }
        at16[(it->prefix.addr >> 16) + 1]++;
    }
    for (size_t h = 1; h < at16.size(); h++)
        at16[h] += at16[h - 1];
    std::vector<uint32_t> by16(at16.back());  // indexes from past16, stable
    for (auto it = past16; it != past24; ++it)
        if (!is_sparse16(it->prefix.addr))
            by16[at16[it->prefix.addr >> 16]++] = uint32_t(it - past16);
    // A level whose 256 words are one leaf says no more than that leaf one level up, where
    // the lookup then stops: one dependent read sooner, and in a table behind an inner map
    // (a set's) one call fewer. A set's members inside a member (a block list's aggregate and
    // the routes under it: the 1M-prefix row's /8s) leave such levels. A chunk so replaced
    // stays where it was counted, unreferenced.
    // /16 `x`, painted whole (its /24s' third levels too): its level 1 the leaf its chunk
    // holds everywhere, if one.
    const auto settle16 = [&](size_t x) {
        uint32_t& e = w[XDPCTL_PFX4_L1_WORD + x];
        if (!(e & XDPCTL_PFX_REF))
            return;
        const std::span<const uint32_t, XDPCTL_PFX_CHUNK_WORDS> chunk(chunk_words(e & XDPCTL_PFX_CHUNK_MASK),
                                                                       XDPCTL_PFX_CHUNK_WORDS);
        if (const std::optional<uint32_t> v = one_leaf(chunk)) {
            e = *v;
            st.v4_settled++;
        }
    };
    // at16[h] is now where /16 h's prefixes end. Paints the /16s up to `last`, and settles
    // them but `last` when /24s of it get their third level next (`deeper`).
    size_t painted16 = 0, painted = 0;
    auto paint_upto = [&](size_t last, bool deeper) {
        for (; painted16 <= last && painted16 < XDPCTL_PFX_L1_ENTRIES; painted16++) {
            if (painted == at16[painted16])
                continue;
            const uint32_t c2 = w[XDPCTL_PFX4_L1_WORD + painted16] & XDPCTL_PFX_CHUNK_MASK;
            uint32_t* chunk = chunk_words(c2);
            std::fill_n(chunk, XDPCTL_PFX_CHUNK_WORDS, leaf[c2 - first_chunk]);
            for (; painted < at16[painted16]; painted++) {
                const PrefixEntry4& e = past16[by16[painted]];
                std::fill_n(chunk + ((e.prefix.addr >> 8) & 0xff), size_t(1) << (24 - e.prefix.len), e.value);
            }
            if (painted16 != last || !deeper)
                settle16(painted16);
        }
    };
    // Each /24's third level, painted in a scratch chunk that starts as its level-2 leaf.
    std::array<uint32_t, XDPCTL_PFX_CHUNK_WORDS> scratch;
    size_t open16 = XDPCTL_PFX_L1_ENTRIES;  // the /16 of the /24s painted last: settled after them
    // The level-2 word of /24 `y` of /16 `x`, creating the /16's chunk if it has none. What a
    // /24 whose third level is one leaf, `v`, writes: `v`, unless its /16 says `v` already.
    const auto l2_word = [&](uint32_t x, uint32_t y) -> uint32_t& {
        return chunk_words(chunk_under(w[XDPCTL_PFX4_L1_WORD + x], [&] { return new_l2(x); }))[y];
    };
    const auto settle24 = [&](uint32_t x, uint32_t y, uint32_t parent, uint32_t v) {
        if (v != parent)
            l2_word(x, y) = v;
        st.v4_settled++;
    };
    for (size_t gi = 0; gi + 1 < group_at.size(); gi++) {
        const struct {
            size_t begin, end;
            bool sparse;
        } g{group_at[gi], group_at[gi + 1], sparse_group(group_at[gi + 1] - group_at[gi])};
        const uint32_t a24 = by24[g.begin].prefix.addr, x = a24 >> 16, y = (a24 >> 8) & 0xff;
        if (x != open16) {
            if (open16 < XDPCTL_PFX_L1_ENTRIES)
                settle16(open16);
            open16 = x;
        }
        paint_upto(x, true);
        // What the /16 says for this /24 (its leaf, or its chunk's word): what the /24's third
        // level starts as.
        const uint32_t l1e = w[XDPCTL_PFX4_L1_WORD + x];
        const uint32_t parent = l1e & XDPCTL_PFX_REF ? chunk_words(l1e & XDPCTL_PFX_CHUNK_MASK)[y] : l1e;
        if (!g.sparse) {
            scratch.fill(parent);
            for (size_t i = g.begin; i < g.end; i++)
                std::fill_n(scratch.begin() + (by24[i].prefix.addr & 0xff), size_t(1) << (32 - by24[i].prefix.len),
                            by24[i].value);
            if (const std::optional<uint32_t> v = one_leaf(scratch)) {
                settle24(x, y, parent, *v);
                continue;
            }
            uint32_t& entry = l2_word(x, y);
            const uint32_t c3 = chunk_under(entry, [&] { return new_l3(gi); });
            std::copy(scratch.begin(), scratch.end(), chunk_words(c3));
            continue;
        }
        const SparseRuns r = sparse_runs(by24.subspan(g.begin, g.end - g.begin), 8, parent);
        if (r.runs == 0) {
            settle24(x, y, parent, r.value);
            continue;
        }
        *space->line(sparse_line + sparse_at[gi]) = r.line;
        l2_word(x, y) = XDPCTL_PFX_REF | XDPCTL_PFX_SPARSE | uint32_t(sparse_line + sparse_at[gi]);
    }
    if (open16 < XDPCTL_PFX_L1_ENTRIES)
        settle16(open16);
    paint_upto(XDPCTL_PFX_L1_ENTRIES - 1, false);

    // The sparse /16s: runs over the last 16 address bits, as a sparse /24's over its last 8,
    // starting from what the /16's level-1 word says (the prefixes up to /16).
    for (size_t i = 0, k = 0; i < in16.size(); k++) {
        const uint32_t x = in16[i].prefix.addr >> 16;
        size_t end = i;
        while (end < in16.size() && in16[end].prefix.addr >> 16 == x)
            end++;
        uint32_t& l1 = w[XDPCTL_PFX4_L1_WORD + x];
        const SparseRuns r = sparse_runs(std::span<const PrefixEntry4>(in16).subspan(i, end - i), 16, l1);
        i = end;
        if (sparse16_at[k].first != x)
            fail("prefix table: sparse /16 {} out of order", x);
        if (r.runs == 0) {  // one value for the whole /16: level 1 holds it
            l1 = r.value;
            st.v4_settled++;
            continue;
        }
        *space->line(sparse_line + sparse16_at[k].second) = r.line;
        l1 = XDPCTL_PFX_REF | XDPCTL_PFX_SPARSE | uint32_t(sparse_line + sparse16_at[k].second);
    }

    // IPv6: level 1, the bucket count and the tree, the buckets.
    if (!p6.l1.empty())
        std::copy(p6.l1.begin(), p6.l1.end(), w + XDPCTL_PFX6_L1_WORD);
    xdpctl_pfx_line* out = space->head();
    uint8_t* tree = out[XDPCTL_PFX6_TREE_LINE].byte;  // three lines, one byte string
    const uint32_t nbuckets = uint32_t(p6.buckets.size());
    std::memcpy(tree, &nbuckets, sizeof(nbuckets));
    for (unsigned n = 1; n < XDPCTL_PFX6_TREE_NODES; n++)
        tree[XDPCTL_PFX6_TREE_POS(n)] = p6.tree[n];
    tree[XDPCTL_PFX6_TREE_POS(0)] = 1;  // the lookup multiplies node numbers by it
    std::copy(p6.buckets.begin(), p6.buckets.end(), out + XDPCTL_PFX6_BUCKET_LINE);

    xdpctl_pfx_header& h = out[XDPCTL_PFX_HDR_LINE].hdr;
    h.magic = XDPCTL_PFX_MAGIC;
    h.lines = uint32_t(lines);
    h.v4_prefixes = uint32_t(v4.size());
    h.v6_prefixes = uint32_t(v6.size());
    h.v4_chunks = uint32_t(chunk_slots);
    h.v6_buckets = nbuckets;
    h.v6_slots_used = uint32_t(p6.slots_used);
    if (t.sunk_)
        t.sunk_l1_.assign(w + XDPCTL_PFX4_L1_WORD, w + XDPCTL_PFX4_L1_WORD + XDPCTL_PFX_L1_ENTRIES);
    return t;
}

std::optional<uint32_t> one_leaf(std::span<const uint32_t, XDPCTL_PFX_CHUNK_WORDS> words)
{
    if (words[0] & XDPCTL_PFX_REF ||
        std::any_of(words.begin() + 1, words.end(), [&](uint32_t v) { return v != words[0]; }))
        return std::nullopt;
    return words[0];
}

// ---- parsing -------------------------------------------------------------------------------

Cidr parse_cidr(std::string_view text)
{
    Cidr c;
    std::string_view t = text;
    if (!t.empty() && t.front() == '!') {
        c.except = true;
        t.remove_prefix(1);
    }
    const size_t slash = t.find('/');
    const std::string addr(t.substr(0, slash));
    int len = -1;  // none given: the whole address
    if (slash != std::string_view::npos) {
        const std::string_view ls = t.substr(slash + 1);
        unsigned n = 0;  // unsigned: from_chars then refuses a sign
        const auto [end, ec] = std::from_chars(ls.data(), ls.data() + ls.size(), n);
        if (ls.empty() || ls.size() > 3 || ec != std::errc() || end != ls.data() + ls.size())
            fail_usage("'{}': bad prefix length", text);
        len = int(n);
    }
    if (addr.find(':') != std::string::npos) {
        uint8_t b[16];
        if (inet_pton(AF_INET6, addr.c_str(), b) != 1)
            fail_usage("'{}': not an IPv6 address", text);
        if (len < 0)
            len = 128;
        if (len > 128)
            fail_usage("'{}': prefix length over 128", text);
        c.v6 = true;
        c.p6 = {ip6_from_bytes(b), uint8_t(len)};
        const Prefix6 net{c.p6.addr & mask6(unsigned(len)), uint8_t(len)};
        if (net.addr != c.p6.addr)
            fail_usage("'{}': host bits set (the prefix would be {})", text, to_string(net));
    } else {
        in_addr a;
        if (inet_pton(AF_INET, addr.c_str(), &a) != 1)
            fail_usage("'{}': not an IPv4 address", text);
        if (len < 0)
            len = 32;
        if (len > 32)
            fail_usage("'{}': prefix length over 32", text);
        c.p4 = {ntohl(a.s_addr), uint8_t(len)};
        const Prefix4 net{c.p4.addr & mask4(unsigned(len)), uint8_t(len)};
        if (net.addr != c.p4.addr)
            fail_usage("'{}': host bits set (the prefix would be {})", text, to_string(net));
    }
    return c;
}

std::string to_string(const Prefix4& p)
{
    in_addr a{htonl(p.addr)};
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, buf, sizeof(buf));
    return fmt::format("{}/{}", buf, p.len);
}

std::string to_string(const Prefix6& p)
{
    uint8_t b[16];
    for (int i = 0; i < 8; i++) {
        b[i] = uint8_t(p.addr.hi >> (56 - 8 * i));
        b[8 + i] = uint8_t(p.addr.lo >> (56 - 8 * i));
    }
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, b, buf, sizeof(buf));
    return fmt::format("{}/{}", buf, p.len);
}

// ---- maps ----------------------------------------------------------------------------------

namespace {

// The map's info; throws unless it is an mmapable array.
bpf_map_info mmapable_array_info(int map_fd)
{
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_map_get_info_by_fd(map_fd, &info, &len) != 0)
        fail("cannot read map info: {}", errno_str(errno));
    if (info.type != BPF_MAP_TYPE_ARRAY || !(info.map_flags & BPF_F_MMAPABLE))
        fail("map '{}' is not an mmapable array", info.name);
    return info;
}

}  // namespace

MappedMap::MappedMap(int map_fd)
{
    const bpf_map_info info = mmapable_array_info(map_fd);
    // Array elements are 8-byte aligned: a 4-byte value still takes 8 bytes.
    value_size_ = (info.value_size + 7) & ~7u;
    entries_ = info.max_entries;
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    bytes_ = (size_t(value_size_) * entries_ + page - 1) / page * page;
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
    if (p == MAP_FAILED)
        fail("cannot mmap map '{}': {}", info.name, errno_str(errno));
    data_ = p;
}

MappedMap::MappedMap(int map_fd, uint32_t first, uint32_t count, size_t bytes)
{
    const bpf_map_info info = mmapable_array_info(map_fd);
    value_size_ = (info.value_size + 7) & ~7u;
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    if (value_size_ % page || uint64_t(first) + count > info.max_entries)
        fail("cannot map values {}-{} of map '{}'", first, uint64_t(first) + count, info.name);
    entries_ = count;
    bytes_ = size_t(value_size_) * count;
    if (bytes)
        bytes_ = std::min(bytes_, (bytes + page - 1) / page * page);
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, off_t(first) * value_size_);
    if (p == MAP_FAILED)
        fail("cannot mmap map '{}': {}", info.name, errno_str(errno));
    data_ = p;
}

MappedMap::MappedMap(int map_fd, Parts parts)
    : fd_(map_fd), parts_(parts.n), lock_(std::make_unique<std::mutex>())
{
    const bpf_map_info info = mmapable_array_info(map_fd);
    value_size_ = (info.value_size + 7) & ~7u;
    entries_ = info.max_entries;
    if (parts_ == 0 || parts_ > 32 || entries_ % parts_)
        fail("cannot map map '{}' of {} values in {} parts", info.name, entries_, parts_);
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    bytes_ = (size_t(value_size_) * entries_ + page - 1) / page * page;
    // Address space only: nothing is mapped or resident until part().
    void* p = mmap(nullptr, bytes_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        fail("cannot reserve {} bytes for map '{}': {}", bytes_, info.name, errno_str(errno));
    data_ = p;
}

const MappedMap& MappedMap::part(uint32_t p) const
{
    if (parts_ == 0)
        return *this;
    std::lock_guard hold(*lock_);
    if (p >= parts_)
        fail("part {} of a map of {} parts", p, parts_);
    if (mapped_ >> p & 1)
        return *this;
    // The pages that hold the part: a part need not start or end on a page, and a page
    // shared with the next part is mapped again with it (the same memory).
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    const size_t per = size_t(entries_ / parts_) * value_size_;
    const size_t first = p * per / page * page;
    const size_t end = std::min(bytes_, ((p + 1) * per + page - 1) / page * page);
    void* at = mmap(static_cast<char*>(data_) + first, end - first, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
                    fd_, off_t(first));
    if (at == MAP_FAILED)
        fail("cannot mmap part {} of a policy map: {}", p, errno_str(errno));
    mapped_ |= 1u << p;
    return *this;
}

MappedMap::~MappedMap()
{
    if (data_)
        munmap(data_, bytes_);
}

namespace {

// Writes `lines` to the start of the mmapable array of lines `map_fd` and zeroes the rest,
// through windows of 4 MiB: mapping the whole array would make all of it resident in this
// process at once (the kernel maps an array's pages at mmap time). `release(at, n)` runs
// after each window, to give back the source lines just copied.
template <typename Release>
void write_lines(int map_fd, std::span<const xdpctl_pfx_line> lines, Release release)
{
    const bpf_map_info info = mmapable_array_info(map_fd);
    if (info.value_size != sizeof(xdpctl_pfx_line))
        fail("map value size {} is not a prefix-table line", info.value_size);
    if (info.max_entries < lines.size())
        fail("map of {} lines is too small for a table of {}", info.max_entries, lines.size());
    constexpr size_t kWindow = size_t(4) << 20, kLines = kWindow / sizeof(xdpctl_pfx_line);
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    for (size_t at = 0; at < info.max_entries; at += kLines) {
        const size_t n = std::min<size_t>(kLines, info.max_entries - at);
        const size_t bytes = (n * sizeof(xdpctl_pfx_line) + page - 1) / page * page;
        void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, off_t(at * sizeof(xdpctl_pfx_line)));
        if (p == MAP_FAILED)
            fail("cannot mmap map '{}': {}", info.name, errno_str(errno));
        auto* dst = static_cast<xdpctl_pfx_line*>(p);
        const size_t copy = at < lines.size() ? std::min(n, lines.size() - at) : 0;
        // The map may hold the table of two commits ago: what is equal is not written.
        write_changed(dst, lines.data() + std::min(at, lines.size()), copy * sizeof(xdpctl_pfx_line));
        zero_changed(dst + copy, (n - copy) * sizeof(xdpctl_pfx_line));
        munmap(p, bytes);
        if (copy)
            release(at, copy);
    }
}

}  // namespace

void fill_prefix_table_map(int map_fd, const PrefixTable& table)
{
    fill_prefix_table_map(map_fd, table.lines());
}

void fill_prefix_table_map(int map_fd, std::span<const xdpctl_pfx_line> lines)
{
    write_lines(map_fd, lines, [](size_t, size_t) {});
}

void fill_prefix_table_map(int map_fd, PrefixTable&& table)
{
    table.fill_map_and_release(map_fd);
}

void PrefixTable::fill_map_and_release(int map_fd)
{
    if (sunk_)
        fail("a prefix table built in its map has no lines of its own to copy");
    constexpr size_t kBlock = HugePageAllocator<xdpctl_pfx_line>::kHuge;
    // Blocks of the huge-page allocator are 2 MiB-aligned (a small table is on the heap and
    // goes at the end); a window is two of them.
    const bool aligned = reinterpret_cast<uintptr_t>(lines_.data()) % kBlock == 0 && !in_huge_heap(lines_.data());
    write_lines(map_fd, lines_, [&](size_t at, size_t n) {
        if (aligned && n * sizeof(xdpctl_pfx_line) % kBlock == 0)
            madvise(&lines_[at], n * sizeof(xdpctl_pfx_line), MADV_DONTNEED);  // a hint: fine if refused
    });
    decltype(lines_)().swap(lines_);
}

UniqueFd create_prefix_table_map(const PrefixTable& table)
{
    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE | BPF_F_INNER_MAP);
    const int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "xdpctl_pfx", sizeof(__u32), sizeof(xdpctl_pfx_line),
                                  uint32_t(table.lines().size()), &opts);
    if (fd < 0)
        fail("cannot create a prefix table map of {} MiB: {}", table.stats().bytes >> 20, errno_str(errno));
    UniqueFd owned(fd);
    fill_prefix_table_map(fd, table);
    return owned;
}

void install_prefix_table(int outer_fd, uint32_t slot, int table_fd)
{
    if (bpf_map_update_elem(outer_fd, &slot, &table_fd, BPF_ANY) != 0)
        fail("cannot install the prefix table in slot {}: {}", slot, errno_str(errno));
}

// ---- reference -----------------------------------------------------------------------------

PrefixReference::PrefixReference(std::span<const PrefixEntry4> v4, std::span<const PrefixEntry6> v6)
{
    std::array<std::unordered_map<uint32_t, uint32_t>, 33> by4;
    std::array<std::unordered_map<Ip6, uint32_t, Ip6Hash>, 129> by6;
    std::array<bool, 33> has4{};
    std::array<bool, 129> has6{};
    for (const PrefixEntry4& e : v4) {
        by4[e.prefix.len][e.prefix.addr] = e.value;
        has4[e.prefix.len] = true;
    }
    for (const PrefixEntry6& e : v6) {
        by6[e.prefix.len][e.prefix.addr] = e.value;
        has6[e.prefix.len] = true;
    }
    for (int len = 32; len >= 0; len--)
        if (has4[len])
            v4_.emplace_back(unsigned(len), std::move(by4[len]));
    for (int len = 128; len >= 0; len--)
        if (has6[len])
            v6_.emplace_back(unsigned(len), std::move(by6[len]));
}

uint32_t PrefixReference::lookup4(uint32_t addr) const
{
    for (const auto& [len, m] : v4_)
        if (auto it = m.find(addr & mask4(len)); it != m.end())
            return it->second;
    return XDPCTL_PFX_NONE;
}

uint32_t PrefixReference::lookup6(Ip6 addr) const
{
    for (const auto& [len, m] : v6_)
        if (auto it = m.find(addr & mask6(len)); it != m.end())
            return it->second;
    return XDPCTL_PFX_NONE;
}

}  // namespace xdpctl
