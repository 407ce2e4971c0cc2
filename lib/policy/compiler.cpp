// Policy -> CompiledPolicy: class tables per field and one bitmap row per class.
#include <algorithm>
#include <bit>
#include <cstring>
#include <iterator>
#include <string_view>
#include <unordered_map>

#include "util/error.h"
#include "util/task_pool.h"
#include "policy/compile_cache.h"
#include "policy/compile_delta.h"
#include "policy/compiled_policy.h"
#include "policy/compiler_parts.h"
#include "policy/policy_binary.h"
#include "policy/hash_index.h"
#include "policy/rank_gaps.h"
#include "policy/shapes.h"
#include "policy/rule_parse.h"

namespace xdpctl::policy {

using namespace compiler;

namespace {

// From this many rules in a direction, the address fields compile in a thread of their own
// (and from this many rules in all, the shapes: compile_policy).
constexpr uint32_t kParallelCompileRules = 512;

// The rows of some fields in the compact form of RowTable: a row is kept only when its
// field's interner has not seen it (two stores are built in two threads, then joined).
class RowStore {
public:
    // A field has at most about one class per rule end (ports) or rule prefix (addresses).
    RowStore(uint32_t words, uint32_t agg_words, size_t expect_rows)
    {
        t_.words = words, t_.agg_words = agg_words;
        t_.rows.reserve(expect_rows);
        t_.ranks.reserve(expect_rows);
    }
    uint32_t count() const { return uint32_t(t_.rows.size()); }
    uint32_t words() const { return t_.words; }
    const RowTable::Row& at(uint32_t row) const { return t_.rows[row]; }
    const uint32_t* ranks(const RowTable::Row& r) const { return &t_.ranks[r.off]; }
    const uint64_t* dense(const RowTable::Row& r) const { return &t_.dense[r.off]; }
    // The field's base (the rules that name no value in it) and the rules anchored there.
    void set_base(Field f, const Bits& base, const Bits& anchored)
    {
        t_.base[f] = field_base_row(t_.words, t_.agg_words, base, anchored);
        t_.anchored[f] = anchored;
    }
    void add_sparse(Field f, const uint32_t* r, uint32_t n)
    {
        t_.rows.push_back({uint32_t(f), n, t_.ranks.size(), false});
        t_.ranks.insert(t_.ranks.end(), r, r + n);
    }
    void add_dense(Field f, const uint64_t* b)
    {
        t_.rows.push_back({uint32_t(f), 0, t_.dense.size(), true});
        t_.dense.insert(t_.dense.end(), b, b + t_.words);
    }
    RowTable take() { return std::move(t_); }

private:
    RowTable t_;
};

// Gives equal rows of one field one class id: the number of classes is the number of
// distinct rule sets a field can select, whatever the number of table entries behind them.
// A field's ids count from the rows it adds to the store. Rows are given as their extra
// rules (those not in the field's base): as ranks, or as a bitmap of `words` words; a set
// of up to `words` ranks is kept as ranks, a larger one as a bitmap, so each set has one
// form and equal sets compare equal. Hashes are xor_hash's, whichever the form.
class RowInterner {
public:
    // `expect`: about how many classes the field will have.
    RowInterner(RowStore& store, Field f, const Bits& base, size_t expect)
        : store_(store), f_(f), base_(store.count()), words_(store.words()), field_base_(base), ids_(expect)
    {
    }
    uint32_t base() const { return base_; }
    uint32_t size() const { return store_.count() - base_; }

    // `ranks`: distinct, in any order (sorted here).
    uint32_t intern_ranks(std::vector<uint32_t>& ranks)
    {
        uint64_t h = 0;
        for (uint32_t r : ranks)
            h ^= bit_key(r);
        return intern_ranks(ranks, h);
    }
    // The same with their xor_hash.
    uint32_t intern_ranks(std::vector<uint32_t>& ranks, uint64_t h)
    {
        std::sort(ranks.begin(), ranks.end());
        return intern_sorted(ranks, h);
    }
    // The same, sorted already.
    uint32_t intern_sorted(const std::vector<uint32_t>& ranks, uint64_t h)
    {
        if (ranks.size() > words_) {
            scratch_.assign(words_, 0);
            for (uint32_t r : ranks)
                set_bit(scratch_, r);
            return intern_dense(scratch_, h);
        }
        const uint32_t found = ids_.find(h, [&](uint32_t id) {
            const RowTable::Row& row = store_.at(base_ + id);
            return !row.dense && row.len == ranks.size() && std::equal(ranks.begin(), ranks.end(), store_.ranks(row));
        });
        if (found != UINT32_MAX)
            return found;
        const uint32_t id = next_id();
        store_.add_sparse(f_, ranks.data(), uint32_t(ranks.size()));
        ids_.add(h, id);
        return id;
    }
    // `extra`: the extra rules as a bitmap (none of the base), its xor_hash and popcount.
    uint32_t intern_bits(const Bits& extra, uint64_t h, uint32_t pop)
    {
        if (pop > words_)
            return intern_dense(extra, h);
        const uint32_t found = ids_.find(h, [&](uint32_t id) {
            const RowTable::Row& row = store_.at(base_ + id);
            if (row.dense || row.len != pop)
                return false;
            const uint32_t* r = store_.ranks(row);
            for (uint32_t i = 0; i < pop; i++)
                if (!(extra[r[i] / 64] >> (r[i] % 64) & 1))
                    return false;
            return true;
        });
        if (found != UINT32_MAX)
            return found;
        sparse_.clear();
        for (uint32_t w = 0; w < words_; w++)
            for (uint64_t x = extra[w]; x; x &= x - 1)
                sparse_.push_back(w * 64 + uint32_t(std::countr_zero(x)));
        const uint32_t id = next_id();
        store_.add_sparse(f_, sparse_.data(), uint32_t(sparse_.size()));
        ids_.add(h, id);
        return id;
    }
    // A whole row (base included).
    uint32_t intern(const Bits& row)
    {
        scratch_.resize(words_);
        for (uint32_t w = 0; w < words_; w++)
            scratch_[w] = row[w] & ~field_base_[w];
        return intern_bits(scratch_, xor_hash(scratch_), popcount(scratch_));
    }

private:
    uint32_t intern_dense(const Bits& extra, uint64_t h)
    {
        const uint32_t found = ids_.find(h, [&](uint32_t id) {
            const RowTable::Row& row = store_.at(base_ + id);
            return row.dense && std::memcmp(store_.dense(row), extra.data(), words_ * sizeof(uint64_t)) == 0;
        });
        if (found != UINT32_MAX)
            return found;
        const uint32_t id = next_id();
        store_.add_dense(f_, extra.data());
        ids_.add(h, id);
        return id;
    }
    uint32_t next_id() const
    {
        const uint32_t id = size();
        if (id >= 65535)
            fail_usage("the policy needs more than 65535 classes for one field");
        return id;
    }

    RowStore& store_;
    Field f_;
    uint32_t base_, words_;
    const Bits& field_base_;
    Bits scratch_;
    std::vector<uint32_t> sparse_;
    HashIndex ids_;  // row hash -> classes
};

// The address classes of one family in one position (source or destination).
// Every prefix that a rule names or a used set holds is a node of one laminar family
// (two prefixes are nested or disjoint); sorted, they come in trie preorder, so one pass
// with a stack knows, at each node, which rule prefixes and which set memberships apply.
// The class of a node is (the deepest rule-prefix node above it, the set-membership
// mask): two numbers, however many prefixes a set holds. Its row's extra rules (beyond the
// rules with no address here, in every row) are the ranks of the rule prefixes on the
// stack, kept as one path of ranks, and those of the sets in the mask.
// `split`: the sets' entries stay out of the sweep (AddrClassTable::split); each rule-prefix
// node gets the classes of every mask instead, so the work is the rules' prefixes times
// 2^sets, whatever the sets hold.
AddrClassTable address_classes(const Policy& p, const DirRules& dr, Field pos, Family fam,
                               RowInterner& rows, bool split)
{
    // One event per (prefix, what it brings): a rule's own prefix (set = -1, rank) or a set
    // entry (set index, except); sorted by prefix, equal prefixes next to each other.
    struct Event {
        PrefixKey key;
        int set;
        uint32_t arg;  // rank (set == -1) or except
        bool operator<(const Event& o) const { return key < o.key; }
    };
    std::vector<Event> events;
    std::vector<std::string> set_names;
    std::vector<std::vector<uint32_t>> set_ranks;
    for (uint32_t r = 0; r < dr.ranked.size(); r++) {
        if (!dr.ranked[r])
            continue;
        const AddrMatch& a = addr_of(*dr.ranked[r], pos);
        if (a.kind == AddrMatch::Kind::prefix && a.prefix.family == fam) {
            events.push_back({PrefixKey(a.prefix), -1, r});
        } else if (a.kind == AddrMatch::Kind::set) {
            auto it = std::find(set_names.begin(), set_names.end(), a.set);
            if (it == set_names.end()) {
                set_names.push_back(a.set);
                set_ranks.emplace_back();
                it = set_names.end() - 1;
            }
            set_ranks[it - set_names.begin()].push_back(r);
        }
    }
    // The rules' prefixes are sorted; each set's entries are sorted already (normalize())
    // and merged in: a stable sort of a 1M-prefix set's events took ~0.2 s of every commit,
    // a merge is one pass. Equal prefixes stay in the order a stable sort gives: the rules'
    // first, then set 0's, set 1's, ...
    std::stable_sort(events.begin(), events.end());
    std::vector<Event> set_events, merged;
    std::vector<SetEntry> scratch;  // a set left undecoded (a rule command's) merged into the classes
    for (size_t s = 0; s < (split ? 0 : set_names.size()); s++) {
        set_events.clear();
        for (const auto& e : set_entries(p.sets.at(set_names[s]), scratch))
            if (e.prefix.family == fam)
                set_events.push_back({PrefixKey(e.prefix), int(s), e.except});
        if (!std::is_sorted(set_events.begin(), set_events.end()))  // a set not normalized (tests)
            std::stable_sort(set_events.begin(), set_events.end());
        merged.clear();
        merged.reserve(events.size() + set_events.size());
        std::merge(events.begin(), events.end(), set_events.begin(), set_events.end(), std::back_inserter(merged));
        events.swap(merged);
    }
    std::vector<Event>().swap(set_events);  // before the classes are built: ~28 MiB each at 1M
    std::vector<Event>().swap(merged);

    struct Frame {
        PrefixKey pfx;
        int ran;        // the deepest rule-prefix node at or above this one, -1: none
        uint32_t plen;  // its rule ranks: path[0, plen)
        uint32_t mask;  // set memberships
    };
    std::vector<Frame> stack;
    // The ranks of the rule prefixes on the stack, outermost first: a frame's are a prefix
    // of it, and a new node cuts it back to its parent's before adding its own.
    std::vector<uint32_t> path;
    std::vector<uint32_t> extra;
    // States are as many as rule prefixes times set masks, not as set entries: a set's
    // neighbouring entries mostly share one, which the last lookup remembers.
    std::unordered_map<uint64_t, uint32_t> state_class;  // (ran + 1, mask) -> class
    uint64_t last_state = UINT64_MAX;
    uint32_t last_class = 0;
    auto class_of = [&](int ran, uint32_t plen, uint32_t mask) {
        const uint64_t state = uint64_t(uint32_t(ran + 1)) << 32 | mask;
        if (state == last_state)
            return last_class;
        auto [it, fresh] = state_class.try_emplace(state, 0);
        if (fresh) {
            extra.assign(path.begin(), path.begin() + plen);
            for (size_t s = 0; s < set_ranks.size(); s++)
                if (mask & (1u << s))
                    extra.insert(extra.end(), set_ranks[s].begin(), set_ranks[s].end());
            it->second = rows.intern_ranks(extra);
        }
        last_state = state;
        last_class = it->second;
        return last_class;
    };

    AddrClassTable t;
    t.entries.reserve(events.size());
    const uint32_t masks = 1u << set_names.size();
    if (split) {
        t.sets = set_names;
        for (uint32_t m = 0; m < masks; m++)  // node 0: under no rule prefix
            t.node_class.push_back(class_of(-1, 0, m));
    }
    int nodes = 0;
    for (size_t i = 0; i < events.size();) {
        const PrefixKey n = events[i].key;
        while (!stack.empty() && !stack.back().pfx.contains(n))
            stack.pop_back();
        Frame f{n, -1, 0, 0};
        if (!stack.empty())
            f = {n, stack.back().ran, stack.back().plen, stack.back().mask};
        bool own = false;
        for (; i < events.size() && events[i].key == n; i++) {
            const Event& e = events[i];
            if (e.set >= 0) {
                f.mask = e.arg ? f.mask & ~(1u << e.set) : f.mask | (1u << e.set);
                continue;
            }
            if (!own) {  // this node's ranks follow the enclosing rule prefixes'
                own = true;
                path.resize(f.plen);
                f.ran = nodes++;
            }
            path.push_back(e.arg);
        }
        if (own)
            f.plen = uint32_t(path.size());
        stack.push_back(f);
        if (split) {  // every event is a rule's: this is node f.ran + 1, numbered in order
            for (uint32_t m = 0; m < masks; m++)
                t.node_class.push_back(class_of(f.ran, f.plen, m));
            t.entries.push_back({n.prefix(fam), uint32_t(f.ran + 1)});
            continue;
        }
        t.entries.push_back({n.prefix(fam), class_of(f.ran, f.plen, f.mask)});
    }
    t.default_class = split ? 0 : class_of(-1, 0, 0);
    return t;
}

// Port events (port << 32 | ...) in ascending order of port, 0-65536: two passes of a radix
// sort on the port's 17 bits. A port's events may come in any order (all are applied before
// its interval is interned); std::sort of the ~20,000 events of 10,000 rules was ~0.3 ms a
// field on the compile's main thread.
void sort_by_port(std::vector<uint64_t>& events)
{
    std::vector<uint64_t> tmp(events.size());
    auto pass = [](const std::vector<uint64_t>& in, std::vector<uint64_t>& out, int shift, uint32_t buckets) {
        std::vector<uint32_t> at(buckets + 1);
        for (uint64_t e : in)
            at[(e >> shift & (buckets - 1)) + 1]++;
        for (uint32_t b = 0; b < buckets; b++)
            at[b + 1] += at[b];
        for (uint64_t e : in)
            out[at[e >> shift & (buckets - 1)]++] = e;
    };
    pass(events, tmp, 32, 256);  // port bits 0-7
    pass(tmp, events, 40, 512);  // bits 8-16 (65536: one past the last port)
}

// Port classes over the elementary intervals that the rules' range ends cut 0-65535 into.
std::vector<uint16_t> port_classes(const DirRules& dr, Field f, RowInterner& rows,
                                   uint32_t* none_class)
{
    auto range = [f](const Rule& r) -> const PortRange& { return f == kFieldSport ? r.sport : r.dport; };
    // The rules whose range holds the port (the rules with no port are the field's base),
    // as a sorted list (a rule enters and leaves it by a binary search; most ports are in a
    // few ranges) and as a bitmap when there are too many for a list to be the cheaper form.
    std::vector<uint32_t> active;
    Bits bits = dr.empty();
    uint64_t h = 0;
    *none_class = rows.intern_ranks(active, 0);
    // port << 32 | rank << 1 | opens: one integer sort (the order of a port's events does
    // not matter, all are applied before its interval is interned).
    std::vector<uint64_t> events;
    for (uint32_t r = 0; r < dr.ranked.size(); r++) {
        if (!dr.ranked[r])
            continue;
        const PortRange& pr = range(*dr.ranked[r]);
        if (pr.any())
            continue;
        events.push_back(uint64_t(pr.lo) << 32 | uint64_t(r) << 1 | 1);
        events.push_back((uint64_t(pr.hi) + 1) << 32 | uint64_t(r) << 1);
    }
    sort_by_port(events);
    std::vector<uint16_t> table(65536);
    size_t e = 0;
    uint32_t port = 0;
    while (port < 65536) {
        while (e < events.size() && uint32_t(events[e] >> 32) == port) {
            const uint64_t v = events[e++];
            const uint32_t rank = uint32_t(v) >> 1;
            const auto at = std::lower_bound(active.begin(), active.end(), rank);
            if (v & 1) {
                set_bit(bits, rank);
                active.insert(at, rank);
            } else {
                clear_bit(bits, rank);
                active.erase(at);
            }
            h ^= bit_key(rank);
        }
        uint32_t next = e < events.size() ? std::min<uint32_t>(uint32_t(events[e] >> 32), 65536) : 65536;
        uint16_t cls;
        if (active.size() > dr.words)
            cls = uint16_t(rows.intern_bits(bits, h, uint32_t(active.size())));
        else
            cls = uint16_t(rows.intern_sorted(active, h));
        std::fill(table.begin() + port, table.begin() + next, cls);
        port = next;
    }
    return table;
}

// Rows differ only by the protocols rules name (and, for TCP, by flags when a rule names
// flags): every other protocol shares one row, computed once.
std::vector<uint16_t> l4_classes(const DirRules& dr, RowInterner& rows, uint32_t* nonip_class)
{
    *nonip_class = rows.intern(dr.select(
        [](const Rule& r) { return !r.proto && !r.fragment && r.tcp_flags.any(); }));
    std::vector<uint16_t> table(kL4TableSize);
    std::vector<bool> named(256, false);
    std::vector<uint32_t> flag_rules;  // ranks of the rules that name TCP flags
    for (uint32_t r = 0; r < dr.ranked.size(); r++) {
        if (!dr.ranked[r])
            continue;
        if (dr.ranked[r]->proto)
            named[*dr.ranked[r]->proto] = true;
        if (!dr.ranked[r]->tcp_flags.any())
            flag_rules.push_back(r);
    }
    named[6] = named[6] || !flag_rules.empty();
    for (int frag = 0; frag < 2; frag++) {
        int unnamed_cls = -1;
        for (int proto = 0; proto < 256; proto++) {
            if (!named[proto] && unnamed_cls >= 0) {
                std::fill_n(table.begin() + l4_index(frag, uint8_t(proto), 0), 256, uint16_t(unnamed_cls));
                continue;
            }
            // The rules without flags decide alone unless this is TCP and flag rules exist.
            Bits base = dr.select([&](const Rule& r) {
                return r.tcp_flags.any() && l4_rule_matches(r, frag, uint8_t(proto), 0);
            });
            bool per_flag = !flag_rules.empty() && proto == 6 && !frag;
            uint16_t same = uint16_t(rows.intern(base));
            for (int flags = 0; flags < 256; flags++) {
                if (per_flag) {
                    Bits b = base;
                    for (uint32_t r : flag_rules)
                        if (l4_rule_matches(*dr.ranked[r], frag, uint8_t(proto), uint8_t(flags)))
                            set_bit(b, r);
                    same = uint16_t(rows.intern(b));
                }
                table[l4_index(frag, uint8_t(proto), uint8_t(flags))] = same;
            }
            if (!named[proto])
                unnamed_cls = same;
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
        if (dr.ranked[r] && dr.ranked[r]->vlan) {
            auto& b = tagged.try_emplace(*dr.ranked[r]->vlan, untagged).first->second;
            set_bit(b, r);
        }
    for (const auto& [vid, b] : tagged)
        table[vid] = uint16_t(rows.intern(b));
    return table;
}

std::vector<uint16_t> iif_classes(const DirRules& dr, RowInterner& rows, const RuleIfindexResolver& ifindex_of,
                                  uint32_t* other_class, std::map<std::string, uint32_t>& names)
{
    Bits anyif = dr.select([](const Rule& r) { return r.iif.empty(); });
    *other_class = rows.intern(anyif);
    std::vector<uint16_t> table(kIifTableSize, uint16_t(*other_class));
    std::map<uint32_t, Bits> by_index;
    for (uint32_t r = 0; r < dr.ranked.size(); r++) {
        if (!dr.ranked[r] || dr.ranked[r]->iif.empty())
            continue;
        const Rule& rule = *dr.ranked[r];
        uint32_t idx = ifindex_of(rule);
        names[rule.iif_netns.empty() ? rule.iif : rule.iif + "@" + rule.iif_netns] = idx;
        // An interface that does not exist (or has a huge index) matches nothing.
        if (idx == 0 || idx >= kIifTableSize)
            continue;
        set_bit(by_index.try_emplace(idx, anyif).first->second, r);
    }
    for (const auto& [idx, b] : by_index)
        table[idx] = uint16_t(rows.intern(b));
    return table;
}

}  // namespace

// Per field, the rules anchored there (compiled_policy.h): the first field of kAnchorOrder
// the rule names, or L4, where a rule that names nothing is in every row; and the rules that
// name nothing in it (its base). One pass, each rule's fields looked at once.
void compiler::anchor_and_unnamed(const DirRules& dr, std::vector<Bits>& anchored, std::vector<Bits>& unnamed)
{
    anchored.assign(kFieldCount, dr.empty());
    unnamed.assign(kFieldCount, dr.empty());
    for (uint32_t r = 0; r < dr.ranked.size(); r++) {
        if (!dr.ranked[r])
            continue;  // a free rank: in no row
        uint32_t named = 0;
        for (int f = 0; f < kFieldCount; f++)
            if (names_field(*dr.ranked[r], Field(f)))
                named |= 1u << f;
            else
                set_bit(unnamed[f], r);
        Field at = kFieldL4;
        for (Field f : kAnchorOrder)
            if (named >> f & 1) {
                at = f;
                break;
            }
        set_bit(anchored[at], r);
    }
}

namespace {

// What moving rule i of `rules` to another rank costs (rank_gaps.h): the rows that hold
// it, roughly: its own (one a field it names) and every row of each field it does not name,
// which has about one class per rule that names the field.
std::vector<uint64_t> move_costs(const std::vector<const Rule*>& rules)
{
    uint64_t naming[kFieldCount] = {};
    std::vector<uint8_t> named(rules.size());
    for (size_t i = 0; i < rules.size(); i++)
        for (int f = 0; f < kFieldCount; f++)
            if (names_field(*rules[i], Field(f))) {
                named[i] |= uint8_t(1u << f);
                naming[f]++;
            }
    std::vector<uint64_t> cost(rules.size());
    for (size_t i = 0; i < rules.size(); i++) {
        uint64_t c = 1;
        for (int f = 0; f < kFieldCount; f++)
            c += (named[i] >> f & 1) ? 1 : naming[f] + 1;
        cost[i] = c;
    }
    return cost;
}

// Whether one packet may match both rules (of one direction): false only where a field
// tells them apart for certain (prefixes neither within the other, another IP version,
// port ranges apart, another protocol or VLAN); sets, interfaces, flags and fragments are
// taken to overlap. Ranks follow the evaluation order only between such rules (rank_gaps.h).
bool rules_may_overlap(const Rule& a, const Rule& b)
{
    auto addr = [](const AddrMatch& x, const AddrMatch& y) {
        if (x.kind != AddrMatch::Kind::prefix || y.kind != AddrMatch::Kind::prefix)
            return true;
        if (x.prefix.family != y.prefix.family)
            return false;
        const Prefix& shorter = x.prefix.len <= y.prefix.len ? x.prefix : y.prefix;
        const Prefix& longer = x.prefix.len <= y.prefix.len ? y.prefix : x.prefix;
        return shorter.contains(longer.family, longer.addr);
    };
    auto ports = [](const PortRange& x, const PortRange& y) { return x.lo <= y.hi && y.lo <= x.hi; };
    return addr(a.src, b.src) && addr(a.dst, b.dst) && ports(a.sport, b.sport) && ports(a.dport, b.dport) &&
           !(a.proto && b.proto && *a.proto != *b.proto) && !(a.vlan && b.vlan && *a.vlan != *b.vlan);
}

// The sets an address field's rules name (in rank order: bit s of a membership mask is
// named[s]) and whether the field is split by them (AddrClassTable::split).
struct SplitSets {
    std::vector<std::string> named;
    bool split = false;
};
SplitSets split_sets(const DirRules& dr, Field f, const CompileOptions& opts)
{
    SplitSets out;
    size_t prefixes = 0;  // nodes at most, both families
    for (const Rule* r : dr.ranked) {
        if (!r)
            continue;
        const AddrMatch& a = addr_of(*r, f);
        if (a.kind == AddrMatch::Kind::set && std::find(out.named.begin(), out.named.end(), a.set) == out.named.end())
            out.named.push_back(a.set);
        prefixes += a.kind == AddrMatch::Kind::prefix;
    }
    out.split = !out.named.empty() && out.named.size() <= std::min(opts.max_split_sets, kMaxSplitSets) &&
                (prefixes + 1) << out.named.size() <= opts.max_node_classes;
    return out;
}

// `rules`: the direction's rules in evaluation order; `plan`: their ranks.
CompiledDirection compile_direction(const Policy& p, int d, const std::vector<const Rule*>& rules, const RankPlan& plan,
                                    const RuleIfindexResolver& ifindex_of, const CompileOptions& opts)
{
    DirRules dr;
    dr.ranked.assign(plan.slots, nullptr);
    for (size_t i = 0; i < rules.size(); i++)
        dr.ranked[plan.rank[i]] = rules[i];
    CompiledDirection c;
    c.n_rules = plan.slots;
    c.words = std::max<uint32_t>({1, plan.words, (c.n_rules + 63) / 64});
    c.agg_words = (c.words + 63) / 64;
    dr.words = c.words;
    c.rank_of = plan.rank;
    c.ranked.reserve(dr.ranked.size());
    for (const Rule* r : dr.ranked)
        c.ranked.push_back(r ? RuleRecord{r->id, r->action.kind, r->action.rate_pps, r->action.burst, r->log_rate}
                             : RuleRecord{});
    // Whether each address field is split by the sets its rules name (AddrClassTable::split).
    const SplitSets split_of[2] = {split_sets(dr, kFieldSrc, opts), split_sets(dr, kFieldDst, opts)};
    // A field whose rules name sets merged into its classes is compiled with their members:
    // a patch would not see them change.
    c.patchable = std::all_of(rules.begin(), rules.end(), [](const Rule* r) { return patchable_rule(*r); }) &&
                  (split_of[0].named.empty() || split_of[0].split) && (split_of[1].named.empty() || split_of[1].split);
    CachedDirection* cached = opts.cache && opts.cache->dir[d] ? &*opts.cache->dir[d] : nullptr;
    if (opts.prints || cached) {
        c.match_prints.assign(dr.ranked.size(), 0);
        for (size_t r = 0; r < dr.ranked.size(); r++)
            if (dr.ranked[r])
                c.match_prints[r] = match_print(*dr.ranked[r]);
    }
    // A cached compile patched where the rules changed (compile_delta.h), when it can be.
    if (cached && c.patchable && cached->compiled.words == c.words) {
        CompiledDirection p = std::move(cached->compiled);
        // The sets each address field is split by (c.patchable: every field naming sets is).
        const std::array<std::vector<std::string>, 2> split_by = {split_of[0].named, split_of[1].named};
        if (patch_classes(p, cached->prints, dr.ranked, c.match_prints, split_by)) {
            std::vector<Bits> anchored, unnamed;
            anchor_and_unnamed(dr, anchored, unnamed);
            for (int f = 0; f < kFieldCount; f++) {
                p.rows.base[f] = field_base_row(c.words, c.agg_words, unnamed[f], anchored[f]);
                p.rows.anchored[f] = std::move(anchored[f]);
            }
            p.n_rules = c.n_rules;
            p.ranked = std::move(c.ranked);
            p.rank_of = std::move(c.rank_of);
            p.match_prints = std::move(c.match_prints);
            p.patchable = true;
            p.patched = true;
            return p;
        }
    }

    // The address fields and the others build their rows in two stores at once (a large
    // policy's compile is mostly these rows, and the machines xdpctl runs on have cores to
    // spare while it waits), then the second store's rows follow the first's. --iif names
    // resolve in this thread: it is the one in the -n namespace.
    const size_t expect = 2 * size_t(c.n_rules) + 512;
    RowStore addr_store(c.words, c.agg_words, expect), other_store(c.words, c.agg_words, expect);
    uint32_t* const base = c.row_base;
    std::vector<Bits> anchored, unnamed;
    anchor_and_unnamed(dr, anchored, unnamed);
    auto field = [&](RowStore& store, Field f, auto&& build) {
        store.set_base(f, unnamed[f], anchored[f]);
        // A field has about one class per value a rule names there, two per port range.
        RowInterner rows(store, f, unnamed[f], 2 * size_t(c.n_rules - popcount(unnamed[f])));
        build(rows);
        base[f] = rows.base();
        c.n_classes[f] = rows.size();
    };
    auto address_fields = [&] {
        for (Field f : {kFieldSrc, kFieldDst})
            field(addr_store, f, [&](RowInterner& rows) {
                AddrClassTable& v4 = f == kFieldSrc ? c.src_v4 : c.dst_v4;
                AddrClassTable& v6 = f == kFieldSrc ? c.src_v6 : c.dst_v6;
                const bool split = split_of[f == kFieldSrc ? 0 : 1].split;
                v4 = address_classes(p, dr, f, Family::v4, rows, split);
                v6 = address_classes(p, dr, f, Family::v6, rows, split);
                if (split) {
                    const size_t masks = size_t(1) << v4.sets.size();
                    // One table holds both families: IPv6's nodes are numbered after IPv4's,
                    // and both share one array (node 0, under no rule prefix, is the same).
                    const uint32_t n4 = uint32_t(v4.entries.size());
                    for (AddrClassTable::Entry& e : v6.entries)
                        e.cls += n4;
                    v4.node_class.insert(v4.node_class.end(), v6.node_class.begin() + ptrdiff_t(masks),
                                         v6.node_class.end());
                    v6.node_class = v4.node_class;
                }
                std::vector<uint32_t> none;  // a non-IP packet: the rules with no address here
                (f == kFieldSrc ? c.src_nonip_class : c.dst_nonip_class) = rows.intern_ranks(none);
            });
    };
    Task<void> addresses;
    if (c.n_rules >= kParallelCompileRules)
        addresses = run_beside(address_fields);
    else
        address_fields();
    field(other_store, kFieldSport, [&](RowInterner& rows) { c.sport = port_classes(dr, kFieldSport, rows, &c.sport_none_class); });
    field(other_store, kFieldDport, [&](RowInterner& rows) { c.dport = port_classes(dr, kFieldDport, rows, &c.dport_none_class); });
    field(other_store, kFieldL4, [&](RowInterner& rows) { c.l4 = l4_classes(dr, rows, &c.l4_nonip_class); });
    field(other_store, kFieldVlan, [&](RowInterner& rows) { c.vlan = vlan_classes(dr, rows); });
    field(other_store, kFieldIif, [&](RowInterner& rows) {
        c.iif = iif_classes(dr, rows, ifindex_of, &c.iif_other_class, c.iif_index);
    });
    if (addresses.valid())
        addresses.get();  // rethrows what the address fields threw
    const uint32_t addr_rows = addr_store.count();
    for (Field f : {kFieldSport, kFieldDport, kFieldL4, kFieldVlan, kFieldIif})
        c.row_base[f] += addr_rows;
    c.rows = addr_store.take();
    RowTable other = other_store.take();
    for (RowTable::Row r : other.rows) {
        r.off += r.dense ? c.rows.dense.size() : c.rows.ranks.size();
        c.rows.rows.push_back(r);
    }
    c.rows.ranks.insert(c.rows.ranks.end(), other.ranks.begin(), other.ranks.end());
    c.rows.dense.insert(c.rows.dense.end(), other.dense.begin(), other.dense.end());
    for (Field f : {kFieldSport, kFieldDport, kFieldL4, kFieldVlan, kFieldIif}) {
        c.rows.base[f] = std::move(other.base[f]);
        c.rows.anchored[f] = std::move(other.anchored[f]);
    }
    return c;
}

}  // namespace

void RowTable::write_row(size_t r, uint64_t* out) const
{
    const Row& row = rows[r];
    const std::vector<uint64_t>& b = base[row.field];
    const uint64_t* anch = anchored[row.field].data();
    std::memcpy(out, b.data(), row_words() * sizeof(uint64_t));
    uint64_t* bits = out + 2 * agg_words;
    uint64_t* agg = out;
    uint64_t* anchors = out + agg_words;
    if (row.dense) {
        const uint64_t* d = &dense[row.off];
        for (uint32_t w = 0; w < words; w++)
            if (d[w]) {
                bits[w] |= d[w];
                agg[w / 64] |= 1ull << (w % 64);
                if (bits[w] & anch[w])
                    anchors[w / 64] |= 1ull << (w % 64);
            }
        return;
    }
    for (uint32_t i = 0; i < row.len; i++) {
        const uint32_t rank = ranks[row.off + i], w = rank / 64;
        const uint64_t bit = 1ull << (rank % 64);
        bits[w] |= bit;
        agg[w / 64] |= 1ull << (w % 64);
        if (anch[w] & bit)
            anchors[w / 64] |= 1ull << (w % 64);
    }
}

namespace {

// A second key per rank, independent of bit_key's, for the print's other half.
uint64_t bit_key2(uint32_t i) { return bit_key(i ^ 0x80000000u) * 0xd6e8feb86659fd93ull; }

uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 32)) * 0xd6e8feb86659fd93ull;
    z = (z ^ (z >> 32)) * 0xd6e8feb86659fd93ull;
    return z ^ (z >> 32);
}

}  // namespace

std::vector<RowPrint> RowTable::prints() const
{
    // A row written out is its field's base row (which holds the base's anchor bits) with
    // each own rank's bit, its word's aggregate bit and, when the rank is anchored at the
    // field, its word's anchor bit: so the base row, word by word, and the own ranks with
    // whether each is anchored. Not all of `anchored`: a rule anchored at the field is added
    // to it without changing the rows that do not hold it.
    RowPrint field[kFieldCount];
    for (int f = 0; f < kFieldCount; f++) {
        uint64_t a = 0x243f6a8885a308d3ull, b = 0x13198a2e03707344ull;
        for (uint64_t w : base[f]) {
            a = mix64(a ^ w);
            b = mix64(b + w * 0x9e3779b97f4a7c15ull);
        }
        field[f] = {mix64(a ^ base[f].size()), mix64(b + base[f].size()), 0};
    }
    // The own ranks as a set (the order they are kept in does not change the row): XORs of
    // per-rank keys, then mixed with the field's print.
    std::vector<RowPrint> out(rows.size());
    for (size_t r = 0; r < rows.size(); r++) {
        const Row& row = rows[r];
        const std::vector<uint64_t>& anch = anchored[row.field];
        uint64_t a = 0, b = 0, own = 0;
        auto add = [&](uint32_t rank) {
            const uint32_t key = rank * 2 + uint32_t(anch[rank / 64] >> (rank % 64) & 1);
            a ^= bit_key(key);
            b ^= bit_key2(key);
            own ^= bit_key(rank);
        };
        if (row.dense) {
            for (uint32_t w = 0; w < words; w++)
                for (uint64_t x = dense[row.off + w]; x; x &= x - 1)
                    add(w * 64 + uint32_t(std::countr_zero(x)));
        } else {
            for (uint32_t i = 0; i < row.len; i++)
                add(ranks[row.off + i]);
        }
        out[r] = {mix64(field[row.field].a ^ a), mix64(field[row.field].b + b), row.unused ? kUnusedRowOwn : own};
    }
    return out;
}

std::vector<uint64_t> RowTable::row(size_t r) const
{
    std::vector<uint64_t> out(row_words());
    write_row(r, out.data());
    return out;
}

uint32_t RowTable::first_rank(size_t r) const
{
    const Row& row = rows[r];
    uint32_t first = UINT32_MAX;
    const uint64_t* b = base[row.field].data() + 2 * agg_words;
    for (uint32_t w = 0; w < words; w++)
        if (b[w]) {
            first = w * 64 + uint32_t(std::countr_zero(b[w]));
            break;
        }
    if (row.dense) {
        for (uint32_t w = 0; w < words && w * 64 < first; w++)
            if (uint64_t x = dense[row.off + w])
                return std::min(first, w * 64 + uint32_t(std::countr_zero(x)));
    } else if (row.len) {
        first = std::min(first, ranks[row.off]);  // sorted
    }
    return first;
}

bool RowTable::well_formed() const
{
    for (const Row& r : rows) {
        if (r.field >= kFieldCount || base[r.field].size() != row_words() || anchored[r.field].size() != words)
            return false;
        if (r.dense ? r.off + words > dense.size() : r.off + r.len > ranks.size())
            return false;
        if (!r.dense)
            for (uint32_t i = 0; i < r.len; i++)
                if (ranks[r.off + i] >= uint64_t(words) * 64)
                    return false;
    }
    return words && !rows.empty();
}

namespace {

// Policies of at least this many ranks get room in each field when nothing is aligned to
// (align_classes): smaller ones' rows are few, and fit the small rows' element.
constexpr uint32_t kRoomRules = 1024;

// Gives class cls of field f the row id_of[f][cls] among size[f] rows of the field (rows no
// table points at hold the field's base), fields in the compiler's order of their rows, and
// renumbers every table.
void place_classes(CompiledDirection& c, const std::vector<uint32_t> (&id_of)[kFieldCount],
                   const uint32_t (&size)[kFieldCount])
{
    // Fields keep the compiler's order of their rows (by row_base).
    int order[kFieldCount];
    for (int f = 0; f < kFieldCount; f++)
        order[f] = f;
    std::sort(order, order + kFieldCount, [&](int a, int b) { return c.row_base[a] < c.row_base[b]; });
    uint32_t base[kFieldCount], at = 0;
    for (int f : order) {
        base[f] = at;
        at += size[f];
    }
    std::vector<RowTable::Row> rows(at);
    for (int f = 0; f < kFieldCount; f++) {
        for (uint32_t j = 0; j < size[f]; j++)
            rows[base[f] + j] = {uint32_t(f), 0, 0, false, true};  // no table points here: the base
        for (uint32_t cls = 0; cls < c.n_classes[f]; cls++)
            rows[base[f] + id_of[f][cls]] = c.rows.rows[c.row_base[f] + cls];
    }
    c.rows.rows = std::move(rows);
    auto remap = [&](Field f, uint32_t& cls) { cls = id_of[f][cls]; };
    auto remap16 = [&](Field f, std::vector<uint16_t>& t) {
        const std::vector<uint32_t>& ids = id_of[f];
        bool same = true;
        for (uint32_t cls = 0; cls < ids.size() && same; cls++)
            same = ids[cls] == cls;
        if (same)
            return;  // most fields' classes are where they were: no pass over 65,536 entries
        for (uint16_t& cls : t)
            cls = uint16_t(ids[cls]);
    };
    const std::pair<Field, AddrClassTable*> addr[] = {
        {kFieldSrc, &c.src_v4}, {kFieldSrc, &c.src_v6}, {kFieldDst, &c.dst_v4}, {kFieldDst, &c.dst_v6}};
    for (auto [f, t] : addr) {
        if (t->split()) {  // entries name nodes, which keep their numbers
            for (uint32_t& cls : t->node_class)
                remap(f, cls);
            continue;
        }
        for (AddrClassTable::Entry& e : t->entries)
            remap(f, e.cls);
        remap(f, t->default_class);
    }
    remap(kFieldSrc, c.src_nonip_class);
    remap(kFieldDst, c.dst_nonip_class);
    remap16(kFieldSport, c.sport);
    remap(kFieldSport, c.sport_none_class);
    remap16(kFieldDport, c.dport);
    remap(kFieldDport, c.dport_none_class);
    remap16(kFieldL4, c.l4);
    remap(kFieldL4, c.l4_nonip_class);
    remap16(kFieldVlan, c.vlan);
    remap16(kFieldIif, c.iif);
    remap(kFieldIif, c.iif_other_class);
    for (int f = 0; f < kFieldCount; f++) {
        c.row_base[f] = base[f];
        c.n_classes[f] = size[f];
    }
}


}  // namespace

void align_classes(CompiledDirection& c, const ClassLayout& held)
{
    if (!c.n_rules)
        return;
    std::vector<uint32_t> id_of[kFieldCount];  // class -> aligned id
    uint32_t size[kFieldCount];
    // Nothing to align to (a generation not written yet, or rows of another size): the
    // compiler's numbering, with room in each field of a large policy, so that the classes
    // the next commits add do not move every later field's rows (the first such commit into
    // each generation rewrote ~14 MiB of rows at 10,000 rules).
    if (!held.valid || held.words != c.words || held.agg_words != c.agg_words) {
        if (c.n_rules < kRoomRules)
            return;
        for (int f = 0; f < kFieldCount; f++) {
            const uint32_t n = c.n_classes[f];
            id_of[f].resize(n);
            for (uint32_t cls = 0; cls < n; cls++)
                id_of[f][cls] = cls;
            // (A field of few classes gets little: a rule that names none of its values
            // is in all of its rows, room included.)
            size[f] = n + (n >= 64 ? n / 64 + 16 : 4);
            if (size[f] >= 65535 || (n <= XDPCTL_POL_DECIDE_CLASSES && size[f] > XDPCTL_POL_DECIDE_CLASSES))
                size[f] = n;
        }
        place_classes(c, id_of, size);
        return;
    }
    // A class is named by the ranks its own rules had in the held policy (RowPrint::own over
    // them): rules added since join classes (a port range every interval it spans) without
    // renaming them, and a rule inserted among others, which moves every later rank, renames
    // none either (the held ranks come by rule id). Without the held ids, a rule the held
    // policy had is one of rank below its rule count (rules added last).
    std::vector<uint32_t> held_rank(c.n_rules, UINT32_MAX);
    if (held.ids.size() == held.n_rules && c.ranked.size() == c.n_rules) {
        HashIndex at(held.ids.size());
        for (uint32_t r = 0; r < held.ids.size(); r++)
            if (held.ids[r])  // 0: a free rank (rank_gaps.h)
                at.add(bit_key(held.ids[r]), r);
        for (uint32_t r = 0; r < c.n_rules; r++)
            if (const uint32_t id = c.ranked[r].id)
                held_rank[r] = at.find(bit_key(id), [&](uint32_t h) { return held.ids[h] == id; });
    } else {
        for (uint32_t r = 0; r < std::min(c.n_rules, held.n_rules); r++)
            held_rank[r] = r;
    }
    // And whether it holds a rule the held policy had not: such a class is matched after
    // the others, which its key may equal (a new /32 alone under no other rule prefix has
    // the key of the addresses no rule names, 0, and took their id before them).
    std::vector<uint64_t> key(c.rows.count());
    std::vector<bool> joined(c.rows.count());
    for (size_t r = 0; r < key.size(); r++) {
        const RowTable::Row& row = c.rows.rows[r];
        uint64_t k = 0;
        bool any_new = false;
        auto add = [&](uint32_t rank) {
            if (const uint32_t h = held_rank[rank]; h != UINT32_MAX)
                k ^= bit_key(h);
            else
                any_new = true;
        };
        if (row.dense) {
            for (uint32_t w = 0; w < c.words; w++)
                for (uint64_t x = c.rows.dense[row.off + w]; x; x &= x - 1)
                    add(w * 64 + uint32_t(std::countr_zero(x)));
        } else {
            for (uint32_t i = 0; i < row.len; i++)
                add(c.rows.ranks[row.off + i]);
        }
        key[r] = k;
        joined[r] = any_new;
    }
    for (int f = 0; f < kFieldCount; f++) {
        const uint32_t n = c.n_classes[f];
        const std::vector<RowPrint>& old = held.field[f];
        // A class is its own ranks within the field: a rule joining the field's base (one
        // that names nothing here) changes every row, not which class is which.
        HashIndex old_at(old.size());  // own -> old ids
        for (uint32_t j = 0; j < old.size(); j++)
            if (old[j].own != kUnusedRowOwn)  // room: for the classes no held row names
                old_at.add(old[j].own, j);
        std::vector<bool> taken(old.size());
        std::vector<uint32_t>& ids = id_of[f];
        ids.assign(n, UINT32_MAX);
        for (const bool later : {false, true})
            for (uint32_t cls = 0; cls < n; cls++) {
                if (joined[c.row_base[f] + cls] != later)
                    continue;
                const uint64_t k = key[c.row_base[f] + cls];
                const uint32_t j = old_at.find(k, [&](uint32_t id) { return old[id].own == k && !taken[id]; });
                if (j != UINT32_MAX) {
                    ids[cls] = j;
                    taken[j] = true;
                }
            }
        uint32_t free = 0, next = uint32_t(old.size());
        for (uint32_t cls = 0; cls < n; cls++) {
            if (ids[cls] != UINT32_MAX)
                continue;
            while (free < old.size() && taken[free])
                free++;
            ids[cls] = free < old.size() ? free++ : next++;
        }
        // A field that outgrows its rows gets room for more, so that the next classes it
        // gains do not move every later field's rows.
        size[f] = next > old.size() ? next + next / 64 + 16 : uint32_t(old.size());
        // Ids spread over many more rows than classes (after many deletes), past what a
        // class table holds, or past what decides a direction by one field's class: the
        // compiler's own numbering.
        if (size[f] > n + n / 4 + 64 || size[f] >= 65535 ||
            (n <= XDPCTL_POL_DECIDE_CLASSES && size[f] > XDPCTL_POL_DECIDE_CLASSES))
            return;
    }
    place_classes(c, id_of, size);
}

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

uint32_t AddrClassTable::classify(Family f, const std::array<uint8_t, 16>& a,
                                  const std::map<std::string, PrefixSet>* sets_of) const
{
    const uint32_t v = lookup(f, a);
    if (!split())
        return v;
    if (!sets_of)
        fail("an address table split by sets is walked without its sets");
    uint32_t mask = 0;
    for (size_t s = 0; s < sets.size(); s++)
        if (sets_of->at(sets[s]).contains(f, a))
            mask |= 1u << s;
    return node_class.at(size_t(v) << sets.size() | mask);
}

CompiledPolicy compile_policy(const Policy& p, IfindexResolver ifindex_of, CompileOptions opts)
{
    return compile_policy(p, RuleIfindexResolver([ifindex_of](const Rule& r) { return ifindex_of(r.iif); }), opts);
}

CompiledPolicy compile_policy(const Policy& p, const RuleIfindexResolver& ifindex_of, CompileOptions opts)
{
    if (!opts.checked)
        check_policy(p);
    CompiledPolicy c;
    c.default_action = p.default_action;
    const std::vector<const Rule*> order = evaluation_order(p);
    // Each direction's rules in order, and their ranks (rank_gaps.h): kept from the hint of
    // the generation in force where it has them.
    std::vector<const Rule*> in_dir[2];
    for (const Rule* r : order)
        in_dir[r->dir == Direction::egress ? 1 : 0].push_back(r);
    // A last (or else first) rule on one set alone is decided beside the walk and holds no
    // rank (abi: XDPCTL_POL_DECIDE_EDGE): putting a 1M-prefix set in use so changes no row.
    std::optional<CompiledDirection::Edge> edges[2];
    for (int d = 0; d < 2 && opts.edge_sets; d++) {
        if (in_dir[d].size() <= std::max<size_t>(opts.edge_min_rules, 1))
            continue;
        for (const bool first : {false, true}) {
            const Rule* r = first ? in_dir[d].front() : in_dir[d].back();
            if (const int f = edge_rule_field(*r); f >= 0) {
                edges[d] = CompiledDirection::Edge{RuleRecord{r->id, r->action.kind, 0, 0, 0},
                                                   (f == kFieldSrc ? r->src : r->dst).set, Field(f), first};
                if (first)
                    in_dir[d].erase(in_dir[d].begin());
                else
                    in_dir[d].pop_back();
                break;
            }
        }
    }
    RankPlan plan[2];
    for (int d = 0; d < 2; d++) {
        std::vector<uint32_t> ids(in_dir[d].size());
        for (size_t i = 0; i < ids.size(); i++)
            ids[i] = in_dir[d][i]->id;
        const std::vector<const Rule*>& rules = in_dir[d];
        plan[d] = plan_ranks(ids, opts.rank_hints ? move_costs(rules) : std::vector<uint64_t>(ids.size()),
                             [&rules](size_t i, size_t j) { return rules_may_overlap(*rules[i], *rules[j]); },
                             opts.rank_hints ? &opts.rank_hints[d] : nullptr, XDPCTL_POL_RULE_RANKS);
    }
    // The directions' shapes (shapes.h) read only the rules: worked out beside the rows
    // (~0.7 ms at 10,000 rules, which followed them), into copies that the compiled
    // directions take once both are done.
    struct Shapes {
        std::optional<std::vector<xdpctl_pol_small_rule>> small, anchor_rules;
        int decide_field = -1;
    } shapes[2];
    auto find_shapes = [&] {
        for (int d = 0; d < 2; d++) {
            const std::vector<const Rule*>& ranked = in_dir[d];
            // (The small path has no edge rule: its rules are few, and so compiled whole.)
            shapes[d].small = edges[d] ? std::nullopt : small_rules(ranked);
            shapes[d].decide_field = one_address_field(ranked);
            // The anchor lists' rules by rank, as the lists name them (a free rank is on none).
            if (!shapes[d].small && shapes[d].decide_field < 0)
                shapes[d].anchor_rules = anchor_rules(ranked, plan[d].rank, plan[d].slots);
        }
    };
    Task<void> shaped;  // waited for by its destructor, also when a direction throws
    if (order.size() >= kParallelCompileRules)
        shaped = run_beside(find_shapes);
    else
        find_shapes();
    c.dir[0] = compile_direction(p, 0, in_dir[0], plan[0], ifindex_of, opts);
    c.dir[1] = compile_direction(p, 1, in_dir[1], plan[1], ifindex_of, opts);
    if (shaped.valid())
        shaped.get();
    for (int d = 0; d < 2; d++) {
        c.dir[d].small = std::move(shapes[d].small);
        c.dir[d].decide_field = shapes[d].decide_field;
        c.dir[d].anchor_rules = std::move(shapes[d].anchor_rules);
        c.dir[d].edge = std::move(edges[d]);
    }
    return c;
}

Verdict classify_compiled(const CompiledPolicy& cp, const PacketKey& k, uint32_t ifindex,
                          const std::map<std::string, PrefixSet>* sets_of)
{
    const CompiledDirection& c = cp.dir[k.dir == Direction::egress ? 1 : 0];
    Verdict v;
    v.action = cp.default_action;
    // The edge rule's set (a member decides: first, before the walk; last, when no rule did).
    auto edge_member = [&]() {
        if (!c.edge || !k.family)
            return false;
        if (!sets_of)
            fail("an edge rule on a set is walked without its sets");
        return sets_of->at(c.edge->set).contains(*k.family, c.edge->field == kFieldSrc ? k.src : k.dst);
    };
    auto tail = [&](Verdict& out) -> Verdict& {
        if (c.edge && !c.edge->first && !out.rule_id && edge_member()) {
            out.action = c.edge->rec.action;
            out.rule_id = c.edge->rec.id;
        }
        return out;
    };
    if (c.edge && c.edge->first && edge_member()) {
        v.action = c.edge->rec.action;
        v.rule_id = c.edge->rec.id;
        return v;
    }
    if (c.n_rules == 0)
        return tail(v);
    uint32_t cls[kFieldCount];
    if (!k.family) {
        cls[kFieldSrc] = c.src_nonip_class;
        cls[kFieldDst] = c.dst_nonip_class;
        cls[kFieldL4] = c.l4_nonip_class;
    } else {
        bool v4 = *k.family == Family::v4;
        cls[kFieldSrc] = (v4 ? c.src_v4 : c.src_v6).classify(*k.family, k.src, sets_of);
        cls[kFieldDst] = (v4 ? c.dst_v4 : c.dst_v6).classify(*k.family, k.dst, sets_of);
        cls[kFieldL4] = c.l4[l4_index(k.later_fragment, k.proto.value_or(0), k.tcp_flags.value_or(0))];
    }
    cls[kFieldSport] = k.has_ports ? c.sport[k.sport] : c.sport_none_class;
    cls[kFieldDport] = k.has_ports ? c.dport[k.dport] : c.dport_none_class;
    cls[kFieldVlan] = c.vlan[k.vlan ? *k.vlan : kVlanUntagged];
    cls[kFieldIif] = ifindex < kIifTableSize ? c.iif[ifindex] : c.iif_other_class;

    std::vector<uint64_t> rows[kFieldCount];
    const uint64_t* row[kFieldCount];
    for (int f = 0; f < kFieldCount; f++) {
        rows[f] = c.rows.row(c.row_base[f] + cls[f]);
        row[f] = rows[f].data();
    }
    for (uint32_t a = 0; a < c.agg_words; a++) {
        uint64_t agg = ~0ull, anchors = 0;
        for (int f = 0; f < kFieldCount; f++) {
            agg &= row[f][a];
            anchors |= row[f][c.agg_words + a];
        }
        agg &= anchors;
        while (agg) {
            uint32_t w = a * 64 + uint32_t(std::countr_zero(agg));
            agg &= agg - 1;
            uint64_t word = ~0ull;
            for (int f = 0; f < kFieldCount; f++)
                word &= row[f][2 * c.agg_words + w];
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
    return tail(v);
}

}  // namespace xdpctl::policy
