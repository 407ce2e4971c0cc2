#include "policy/compile_delta.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <unordered_map>

#include "policy/compiler_parts.h"

namespace xdpctl::policy {

using namespace compiler;

namespace {

uint64_t mix(uint64_t h, uint64_t v)
{
    h = (h ^ v) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

uint64_t addr_words(uint64_t h, const AddrMatch& a)
{
    h = mix(h, uint64_t(a.kind) << 16 | uint64_t(a.prefix.family) << 8 | a.prefix.len);
    if (a.kind != AddrMatch::Kind::prefix)
        return h;
    uint64_t w[2];
    std::memcpy(w, a.prefix.addr.data(), 16);
    return mix(mix(h, w[0]), w[1]);
}

}  // namespace

uint64_t match_print(const Rule& r)
{
    // Every match field mixed in, a word at a time (10,000 of them a commit: XXH3 of a packed
    // buffer each was ~0.3 ms); a set's or interface's name hashed in (such rules are not
    // patched, but a print must still tell them apart).
    uint64_t h = addr_words(addr_words(0x243f6a8885a308d3ull, r.src), r.dst);
    h = mix(h, uint64_t(r.sport.lo) | uint64_t(r.sport.hi) << 16 | uint64_t(r.dport.lo) << 32 | uint64_t(r.dport.hi) << 48);
    h = mix(h, uint64_t(r.proto.has_value()) | uint64_t(r.proto.value_or(0)) << 8 | uint64_t(r.fragment) << 16 |
                   uint64_t(r.tcp_flags.mask) << 24 | uint64_t(r.tcp_flags.value) << 32 |
                   uint64_t(r.vlan.has_value()) << 40 | uint64_t(r.vlan.value_or(0)) << 48);
    if (!r.src.set.empty() || !r.dst.set.empty() || !r.iif.empty()) {
        const std::string names = r.src.set + '\0' + r.dst.set + '\0' + r.iif + '\0' + r.iif_netns;
        h = mix(h, XXH3_64bits(names.data(), names.size()));
    }
    h = mix(h, 0xd6e8feb86659fd93ull);
    return h ? h : 1;
}

bool patchable_rule(const Rule& r)
{
    return r.iif.empty();
}

namespace {

constexpr uint32_t kNoClass = UINT32_MAX;
// Class ids of the direct tables are 16 bits, 65535 a marker.
constexpr uint32_t kMaxClasses = 65535;

// One field's classes while ranks are taken out and put in: the cached rows, then those made
// here. Rows keep the compiler's forms (sorted ranks; a bitmap past `words` ranks), so equal
// rule sets are equal rows and one class.
class FieldClasses {
public:
    FieldClasses(const RowTable& t, uint32_t first, uint32_t n) : t_(t), first_(first), n_(n), words_(t.words) {}

    uint32_t count() const { return n_ + uint32_t(made_.size()); }
    bool unused(uint32_t cls) const { return cls < n_ && t_.rows[first_ + cls].unused; }

    bool holds(uint32_t cls, uint32_t k) const
    {
        const Ref r = ref(cls);
        if (r.dense)
            return r.dense[k / 64] >> (k % 64) & 1;
        return std::binary_search(r.ranks, r.ranks + r.len, k);
    }

    // Each class's holds(cls, k).
    std::vector<uint8_t> holding(uint32_t k) const
    {
        std::vector<uint8_t> out(count());
        for (uint32_t cls = 0; cls < out.size(); cls++)
            out[cls] = !unused(cls) && holds(cls, k);
        return out;
    }

    // Starts a change: what changed() answered for another rank is forgotten.
    void next_change() { memo_.clear(); }

    // The class of cls's rules with rank k put in (`add`) or taken out: found among the
    // field's classes or made. kNoClass past kMaxClasses. Ranks are taken out (every one
    // that changed) before any is put in: a class a rank is put in then holds no rank being
    // put in, so two such classes, or one and a class holding no such rank, are never equal:
    // only a class a rank is taken out of is looked for among the others.
    uint32_t changed(uint32_t cls, uint32_t k, bool add)
    {
        if (auto it = memo_.find(cls); it != memo_.end())
            return it->second;
        if (holds(cls, k) == add)
            return memo_[cls] = cls;
        if (!add)
            index();
        ranks_of(cls, scratch_);
        const auto at = std::lower_bound(scratch_.begin(), scratch_.end(), k);
        if (add)
            scratch_.insert(at, k);
        else
            scratch_.erase(at);
        // The row's hash, as index() gives it (one XOR per rank either way). A class made by
        // putting a rank in goes into the index under its own hash too: under one hash for all
        // (0, as it was), each new class probed past every one before it, and the commit that
        // puts a 1M-prefix set in use with a rank near the start (~10,000 new classes) spent
        // ~40 ms of its compile there.
        const uint64_t h = indexed_ ? hash_[cls] ^ bit_key(k) : 0;
        const bool dense = scratch_.size() > words_;
        if (dense) {
            bits_.assign(words_, 0);
            for (uint32_t r : scratch_)
                bits_[r / 64] |= 1ull << (r % 64);
        }
        uint32_t id = add ? UINT32_MAX : index_.find(h, [&](uint32_t other) {
            const Ref o = ref(other);
            if (dense)
                return o.dense && std::memcmp(o.dense, bits_.data(), words_ * sizeof(uint64_t)) == 0;
            return !o.dense && o.len == scratch_.size() && std::equal(scratch_.begin(), scratch_.end(), o.ranks);
        });
        if (id == UINT32_MAX) {
            id = count();
            if (id >= kMaxClasses)
                return kNoClass;
            if (dense) {
                made_.push_back({0, 0, made_dense_.size(), true});
                made_dense_.insert(made_dense_.end(), bits_.begin(), bits_.end());
            } else {
                made_.push_back({0, uint32_t(scratch_.size()), made_ranks_.size(), false});
                made_ranks_.insert(made_ranks_.end(), scratch_.begin(), scratch_.end());
            }
            if (indexed_) {  // (not after ranks are put in)
                hash_.push_back(h);
                index_.add(h, id);
            }
        }
        return memo_[cls] = id;
    }

    // Appends the classes `keep` marks to `out` (field f's rows), in order; keep[cls] becomes
    // the class's new id.
    void write(RowTable& out, Field f, std::vector<uint32_t>& keep) const
    {
        uint32_t next = 0;
        for (uint32_t cls = 0; cls < count(); cls++) {
            if (keep[cls] == kNoClass)
                continue;
            keep[cls] = next++;
            const Ref r = ref(cls);
            if (r.dense) {
                out.rows.push_back({uint32_t(f), 0, out.dense.size(), true});
                out.dense.insert(out.dense.end(), r.dense, r.dense + words_);
            } else {
                out.rows.push_back({uint32_t(f), r.len, out.ranks.size(), false});
                out.ranks.insert(out.ranks.end(), r.ranks, r.ranks + r.len);
            }
        }
    }

private:
    struct Ref {
        const uint32_t* ranks = nullptr;
        uint32_t len = 0;
        const uint64_t* dense = nullptr;
    };
    Ref ref(uint32_t cls) const
    {
        if (cls < n_) {
            const RowTable::Row& row = t_.rows[first_ + cls];
            if (row.unused)
                return {};
            if (row.dense)
                return {nullptr, 0, &t_.dense[row.off]};
            return {t_.ranks.data() + row.off, row.len, nullptr};
        }
        const RowTable::Row& row = made_[cls - n_];
        if (row.dense)
            return {nullptr, 0, &made_dense_[row.off]};
        return {made_ranks_.data() + row.off, row.len, nullptr};
    }
    void ranks_of(uint32_t cls, std::vector<uint32_t>& out) const
    {
        const Ref r = ref(cls);
        out.clear();
        if (!r.dense) {
            out.assign(r.ranks, r.ranks + r.len);
            return;
        }
        for (uint32_t w = 0; w < words_; w++)
            for (uint64_t x = r.dense[w]; x; x &= x - 1)
                out.push_back(w * 64 + uint32_t(std::countr_zero(x)));
    }
    uint64_t hash_of(uint32_t cls) const
    {
        const Ref r = ref(cls);
        uint64_t h = 0;
        if (r.dense) {
            for (uint32_t w = 0; w < words_; w++)
                for (uint64_t x = r.dense[w]; x; x &= x - 1)
                    h ^= bit_key(w * 64 + uint32_t(std::countr_zero(x)));
        } else {
            for (uint32_t i = 0; i < r.len; i++)
                h ^= bit_key(r.ranks[i]);
        }
        return h;
    }
    // The classes by their rows' hashes (xor_hash's), made when a rank is first taken out.
    void index()
    {
        if (indexed_)
            return;
        indexed_ = true;
        index_ = HashIndex(count());
        hash_.resize(count());
        for (uint32_t cls = 0; cls < count(); cls++) {
            hash_[cls] = hash_of(cls);
            if (!unused(cls))
                index_.add(hash_[cls], cls);
        }
    }

    const RowTable& t_;
    uint32_t first_, n_, words_;
    std::vector<RowTable::Row> made_;
    std::vector<uint32_t> made_ranks_;
    std::vector<uint64_t> made_dense_;
    std::vector<uint64_t> hash_;
    HashIndex index_;
    bool indexed_ = false;
    std::unordered_map<uint32_t, uint32_t> memo_;
    std::vector<uint32_t> scratch_;
    std::vector<uint64_t> bits_;
};

// The class ids a field's tables hold, each reached through `visit(uint32_t& cls)` or
// `visit(uint16_t& cls)`; an address field's are those of `addr` (AddrViews::of).
template <typename Visit>
void each_cell(CompiledDirection& c, Field f, const std::vector<AddrClassTable*>& addr, Visit&& visit)
{
    auto table = [&](std::vector<uint16_t>& t) {
        for (uint16_t& cls : t)
            visit(cls);
    };
    auto addresses = [&] {
        for (AddrClassTable* t : addr) {
            for (AddrClassTable::Entry& e : t->entries)
                visit(e.cls);
            visit(t->default_class);
        }
    };
    switch (f) {
    case kFieldSrc: addresses(), visit(c.src_nonip_class); break;
    case kFieldDst: addresses(), visit(c.dst_nonip_class); break;
    case kFieldSport: table(c.sport), visit(c.sport_none_class); break;
    case kFieldDport: table(c.dport), visit(c.dport_none_class); break;
    case kFieldL4: table(c.l4), visit(c.l4_nonip_class); break;
    case kFieldVlan: table(c.vlan); break;
    case kFieldIif: table(c.iif), visit(c.iif_other_class); break;
    default: break;
    }
}

// Which entries have their parent's class (the enclosing entry's, or the table's default):
// no rule names that prefix any more. A whole compile has no such entry.
std::vector<uint8_t> plain_entries(const AddrClassTable& t)
{
    std::vector<uint8_t> plain(t.entries.size());
    std::vector<PrefixKey> keys;
    std::vector<uint32_t> classes;
    for (size_t i = 0; i < t.entries.size(); i++) {
        const PrefixKey k(t.entries[i].prefix);
        while (!keys.empty() && !keys.back().contains(k)) {
            keys.pop_back();
            classes.pop_back();
        }
        // An entry dropped has its parent's class: its children compare the same with it.
        plain[i] = t.entries[i].cls == (classes.empty() ? t.default_class : classes.back());
        keys.push_back(k);
        classes.push_back(t.entries[i].cls);
    }
    return plain;
}

void drop_entries(AddrClassTable& t, const std::vector<uint8_t>& drop)
{
    size_t kept = 0;
    for (size_t i = 0; i < t.entries.size(); i++)
        if (!drop[i])
            t.entries[kept++] = t.entries[i];
    t.entries.resize(kept);
}

// An address field's tables as the patch changes them: plain tables, entry -> class. A field
// split by sets (AddrClassTable::split: entries give nodes, node_class[node << sets | mask]
// the class) is seen as one plain table a family and membership mask, entry i's class that of
// its node under the mask, and put back together at the end (numbered as a whole compile
// numbers nodes: IPv4's entries in order from 1, then IPv6's). Between the ranks taken out and
// those put in, the views are taken to the sets the rules name now (`retarget`): a set named
// first is a bit more (its views copies of those without it: no rule named it), a set named
// no more a bit fewer (its views equal those without it once its rules are out).
class AddrViews {
public:
    AddrViews(AddrClassTable& v4, AddrClassTable& v6) : t_{&v4, &v6}, sets_(v4.sets)
    {
        if (sets_.empty()) {  // the tables themselves, moved (put back at the end)
            for (int fam = 0; fam < 2; fam++)
                views_[fam].push_back(std::move(*t_[fam]));
            return;
        }
        // Both families' tables hold the one array, and every entry's node is in it.
        ok_ = v6.sets == sets_ && v6.node_class == v4.node_class &&
              v4.node_class.size() == (1 + v4.entries.size() + v6.entries.size()) << sets_.size();
        if (!ok_)
            return;
        const uint32_t masks = 1u << sets_.size();
        for (int fam = 0; fam < 2; fam++) {
            views_[fam].resize(masks);
            for (uint32_t m = 0; m < masks; m++) {
                AddrClassTable& v = views_[fam][m];
                v.entries = t_[fam]->entries;
                for (AddrClassTable::Entry& e : v.entries)
                    e.cls = v4.node_class[size_t(e.cls) << sets_.size() | m];
                v.default_class = v4.node_class[m];
            }
        }
    }
    bool ok() const { return ok_; }
    uint32_t masks() const { return uint32_t(views_[0].size()); }
    // The set's bit in a membership mask, or -1: not one the field is split by.
    int set_bit(const std::string& name) const
    {
        const auto it = std::find(sets_.begin(), sets_.end(), name);
        return it == sets_.end() ? -1 : int(it - sets_.begin());
    }
    // The tables of family `fam` (0: IPv4), one a mask; of both families.
    std::vector<AddrClassTable*> of(int fam)
    {
        std::vector<AddrClassTable*> out;
        for (AddrClassTable& v : views_[fam])
            out.push_back(&v);
        return out;
    }
    std::vector<AddrClassTable*> all()
    {
        std::vector<AddrClassTable*> out = of(0), v6 = of(1);
        out.insert(out.end(), v6.begin(), v6.end());
        return out;
    }
    AddrClassTable& view(int fam, uint32_t m) { return views_[fam][m]; }

    // Drops the entries no rule names any more. (An entry's own rules are under every mask,
    // so one plain under one mask is plain under all.)
    void drop_plain()
    {
        for (int fam = 0; fam < 2; fam++) {
            const std::vector<uint8_t> drop = plain_entries(views_[fam][0]);
            for (AddrClassTable& v : views_[fam])
                drop_entries(v, drop);
        }
    }

    // The views under the masks of `sets` instead: false when a set named no more still tells
    // classes apart (a rule naming it left), or too many sets.
    bool retarget(const std::vector<std::string>& sets)
    {
        if (sets == sets_)
            return true;
        if (sets.size() > kMaxSplitSets)
            return false;
        // New mask -> the old mask with the same memberships of the sets in both, and none of
        // those only in the old.
        std::vector<int> old_bit(sets.size());
        for (size_t b = 0; b < sets.size(); b++)
            old_bit[b] = set_bit(sets[b]);
        auto old_mask = [&](uint32_t m) {
            uint32_t out = 0;
            for (size_t b = 0; b < sets.size(); b++)
                if (m >> b & 1 && old_bit[b] >= 0)
                    out |= 1u << old_bit[b];
            return out;
        };
        uint32_t gone = 0;  // the bits of the sets named no more
        for (size_t b = 0; b < sets_.size(); b++)
            if (std::find(sets.begin(), sets.end(), sets_[b]) == sets.end())
                gone |= 1u << b;
        for (int fam = 0; fam < 2; fam++) {
            for (uint32_t m = 0; m < masks(); m++)
                if (m & gone && !same_classes(views_[fam][m], views_[fam][m & ~gone]))
                    return false;
            std::vector<AddrClassTable> next(size_t(1) << sets.size());
            for (uint32_t m = 0; m < next.size(); m++)
                next[m] = views_[fam][old_mask(m)];
            views_[fam] = std::move(next);
        }
        sets_ = sets;
        return true;
    }

    // The views put back into the tables; false when they disagree (node 0 is both families').
    bool put_back()
    {
        if (sets_.empty()) {
            for (int fam = 0; fam < 2; fam++) {
                *t_[fam] = std::move(views_[fam][0]);
                t_[fam]->sets.clear();
                t_[fam]->node_class.clear();
            }
            return true;
        }
        const uint32_t masks = this->masks(), bits = uint32_t(sets_.size());
        const size_t n4 = views_[0][0].entries.size(), n6 = views_[1][0].entries.size();
        std::vector<uint32_t> node_class((1 + n4 + n6) << bits);
        for (uint32_t m = 0; m < masks; m++) {
            if (views_[0][m].default_class != views_[1][m].default_class)
                return false;
            node_class[m] = views_[0][m].default_class;
            for (size_t i = 0; i < n4; i++)
                node_class[(i + 1) << bits | m] = views_[0][m].entries[i].cls;
            for (size_t i = 0; i < n6; i++)
                node_class[(n4 + i + 1) << bits | m] = views_[1][m].entries[i].cls;
        }
        for (int fam = 0; fam < 2; fam++) {
            AddrClassTable& t = *t_[fam];
            t.entries = std::move(views_[fam][0].entries);
            for (size_t i = 0; i < t.entries.size(); i++)
                t.entries[i].cls = uint32_t((fam ? n4 : 0) + i + 1);
            t.default_class = 0;
            t.sets = sets_;
            t.node_class = node_class;
        }
        return true;
    }

private:
    static bool same_classes(const AddrClassTable& a, const AddrClassTable& b)
    {
        if (a.default_class != b.default_class || a.entries.size() != b.entries.size())
            return false;
        for (size_t i = 0; i < a.entries.size(); i++)
            if (a.entries[i].cls != b.entries[i].cls)
                return false;
        return true;
    }

    AddrClassTable* t_[2];
    std::vector<std::string> sets_;
    std::vector<AddrClassTable> views_[2];
    bool ok_ = true;
};

// Entries are in PrefixKey order (trie preorder); the class of prefix `p` by the entries that
// contain it, and where `p` is or would be.
struct Place {
    size_t at;
    bool found;
    uint32_t parent;
};
Place place_of(const AddrClassTable& t, const Prefix& p)
{
    auto less = [](const AddrClassTable::Entry& e, const PrefixKey& k) { return PrefixKey(e.prefix) < k; };
    const PrefixKey key(p);
    const auto it = std::lower_bound(t.entries.begin(), t.entries.end(), key, less);
    Place out{size_t(it - t.entries.begin()), it != t.entries.end() && PrefixKey(it->prefix) == key, t.default_class};
    // The longest entry above it: each shorter length, masked, looked up.
    for (int len = int(p.len) - 1; len >= 0; len--) {
        const PrefixKey uk(p.network_of(uint8_t(len)));
        const auto u = std::lower_bound(t.entries.begin(), t.entries.begin() + ptrdiff_t(out.at), uk, less);
        if (u != t.entries.end() && PrefixKey(u->prefix) == uk) {
            out.parent = u->cls;
            break;
        }
    }
    return out;
}

}  // namespace

bool patch_classes(CompiledDirection& c, const std::vector<uint64_t>& old_prints,
                   const std::vector<const Rule*>& ranked, const std::vector<uint64_t>& prints,
                   const std::array<std::vector<std::string>, 2>& split_by)
{
    if (c.rows.words != c.words || c.words == 0 || uint64_t(ranked.size()) > uint64_t(c.words) * 64 ||
        old_prints.size() > uint64_t(c.words) * 64 || prints.size() != ranked.size())
        return false;
    std::vector<uint32_t> out_ranks, in_ranks;
    const size_t ranks = std::max(old_prints.size(), prints.size());
    for (uint32_t k = 0; k < ranks; k++) {
        const uint64_t was = k < old_prints.size() ? old_prints[k] : 0, now = k < prints.size() ? prints[k] : 0;
        if (was == now)
            continue;
        if (was)
            out_ranks.push_back(k);
        if (now)
            in_ranks.push_back(k);
        if (out_ranks.size() + in_ranks.size() > kMaxPatchedRanks)
            return false;
    }

    for (uint32_t k : in_ranks)
        if (!ranked[k] || !patchable_rule(*ranked[k]))
            return false;

    std::optional<FieldClasses> fields[kFieldCount];
    bool touched[kFieldCount] = {};
    auto classes = [&](Field f) -> FieldClasses& {
        if (!fields[f])
            fields[f].emplace(c.rows, c.row_base[f], c.n_classes[f]);
        return *fields[f];
    };
    auto start = [&](Field f) -> FieldClasses& {
        touched[f] = true;
        classes(f).next_change();
        return classes(f);
    };
    bool full = false;  // a field past kMaxClasses
    auto set = [&](auto& cls, uint32_t to) {
        if (to == kNoClass)
            full = true;
        else
            cls = std::remove_reference_t<decltype(cls)>(to);
    };
    // The address fields' tables, a split one as a plain table a membership mask.
    AddrViews src(c.src_v4, c.src_v6), dst(c.dst_v4, c.dst_v6);
    if (!src.ok() || !dst.ok())
        return false;
    std::vector<AddrClassTable*> addr[2] = {src.all(), dst.all()};
    const std::vector<AddrClassTable*> none;
    auto tables_of = [&](Field f) -> const std::vector<AddrClassTable*>& {
        return f == kFieldSrc ? addr[0] : f == kFieldDst ? addr[1] : none;
    };

    // Ranks taken out: from every class that holds them (the fields the old rule named).
    for (uint32_t k : out_ranks)
        for (int fi = 0; fi < kFieldCount; fi++) {
            const Field f = Field(fi);
            const std::vector<uint8_t> holds = classes(f).holding(k);
            if (std::find(holds.begin(), holds.end(), 1) == holds.end())
                continue;
            FieldClasses& fc = start(f);
            each_cell(c, f, tables_of(f), [&](auto& cls) {
                if (holds[cls])
                    set(cls, fc.changed(cls, k, false));
            });
            if (f == kFieldSrc || f == kFieldDst)
                (f == kFieldSrc ? src : dst).drop_plain();
        }

    // The sets the fields are split by now.
    if (!src.retarget(split_by[0]) || !dst.retarget(split_by[1]))
        return false;
    addr[0] = src.all(), addr[1] = dst.all();

    // Ranks put in: into the classes of what the rule names.
    for (uint32_t k : in_ranks) {
        const Rule& r = *ranked[k];
        for (Field f : {kFieldSrc, kFieldDst}) {
            const AddrMatch& a = addr_of(r, f);
            AddrViews& views = f == kFieldSrc ? src : dst;
            if (a.kind == AddrMatch::Kind::set) {
                // Every node's classes under the masks with the set's bit (compile_direction
                // patches only a field split by the sets its rules name).
                const int bit = views.set_bit(a.set);
                if (bit < 0)
                    return false;
                FieldClasses& fc = start(f);
                for (int fam = 0; fam < 2; fam++)
                    for (uint32_t m = 0; m < views.masks(); m++) {
                        if (!(m >> bit & 1))
                            continue;
                        AddrClassTable& t = views.view(fam, m);
                        for (AddrClassTable::Entry& e : t.entries)
                            set(e.cls, fc.changed(e.cls, k, true));
                        set(t.default_class, fc.changed(t.default_class, k, true));
                    }
                continue;
            }
            if (a.kind != AddrMatch::Kind::prefix)
                continue;
            FieldClasses& fc = start(f);
            for (AddrClassTable* tp : views.of(a.prefix.family == Family::v4 ? 0 : 1)) {
                AddrClassTable& t = *tp;
                const Place p = place_of(t, a.prefix);
                if (!p.found)
                    t.entries.insert(t.entries.begin() + ptrdiff_t(p.at), {a.prefix, p.parent});
                const PrefixKey key(a.prefix);
                for (size_t i = p.at; i < t.entries.size() && key.contains(PrefixKey(t.entries[i].prefix)); i++)
                    set(t.entries[i].cls, fc.changed(t.entries[i].cls, k, true));
            }
        }
        for (Field f : {kFieldSport, kFieldDport}) {
            const PortRange& pr = f == kFieldSport ? r.sport : r.dport;
            if (pr.any())
                continue;
            FieldClasses& fc = start(f);
            std::vector<uint16_t>& t = f == kFieldSport ? c.sport : c.dport;
            for (uint32_t port = pr.lo; port <= pr.hi; port++)
                set(t[port], fc.changed(t[port], k, true));
        }
        if (names_field(r, kFieldL4)) {
            FieldClasses& fc = start(kFieldL4);
            const int first = r.proto ? *r.proto : 0, last = r.proto ? *r.proto : 255;
            for (int frag = 0; frag < 2; frag++)
                for (int proto = first; proto <= last; proto++)
                    for (int flags = 0; flags < 256; flags++)
                        if (l4_rule_matches(r, frag, uint8_t(proto), uint8_t(flags))) {
                            uint16_t& cls = c.l4[l4_index(frag, uint8_t(proto), uint8_t(flags))];
                            set(cls, fc.changed(cls, k, true));
                        }
        }
        if (r.vlan) {
            FieldClasses& fc = start(kFieldVlan);
            set(c.vlan[*r.vlan], fc.changed(c.vlan[*r.vlan], k, true));
        }
    }
    if (full)
        return false;

    // The rows again, field by field in the order they had: the classes some table names
    // (a field not changed: those not `unused`, align_classes' room), cached ones first in
    // their order, renumbered. The tables of a field whose classes keep their ids are not
    // walked again (65,536 entries a port field, 131,072 the L4 one).
    int order[kFieldCount];
    for (int f = 0; f < kFieldCount; f++)
        order[f] = f;
    std::sort(order, order + kFieldCount, [&](int a, int b) { return c.row_base[a] < c.row_base[b]; });
    RowTable rows;
    rows.words = c.rows.words, rows.agg_words = c.rows.agg_words;
    rows.rows.reserve(c.rows.rows.size());
    rows.ranks.reserve(c.rows.ranks.size() + 64);
    std::vector<uint32_t> keep;
    for (int fi : order) {
        const Field f = Field(fi);
        FieldClasses& fc = classes(f);
        keep.assign(fc.count(), kNoClass);
        if (touched[f])
            each_cell(c, f, tables_of(f), [&](auto& cls) { keep[cls] = 0; });
        else
            for (uint32_t cls = 0; cls < fc.count(); cls++)
                keep[cls] = fc.unused(cls) ? kNoClass : 0;
        const uint32_t first = uint32_t(rows.rows.size());
        fc.write(rows, f, keep);
        c.row_base[f] = first;
        c.n_classes[f] = uint32_t(rows.rows.size()) - first;
        bool same = true;
        for (uint32_t cls = 0; cls < keep.size() && same; cls++)
            same = keep[cls] == cls;
        if (!same)
            each_cell(c, f, tables_of(f), [&](auto& cls) { cls = std::remove_reference_t<decltype(cls)>(keep[cls]); });
    }
    for (int f = 0; f < kFieldCount; f++) {
        rows.base[f] = std::move(c.rows.base[f]);
        rows.anchored[f] = std::move(c.rows.anchored[f]);
    }
    c.rows = std::move(rows);
    return src.put_back() && dst.put_back();
}

}  // namespace xdpctl::policy
