#include "policy/compile_cache.h"

#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <tuple>

#include "util/unique_fd.h"

namespace xdpctl::policy {

namespace {

// "XCC" and the layout's version: a cache of another layout is not read.
constexpr uint32_t kMagic = 0x33434358;  // "XCC3": tables split by sets kept too
static_assert(XDPCTL_POL_MAX_RANKS <= 65536, "ranks are kept in 16 bits");

struct Header {
    uint32_t magic;
    uint32_t dirs;  // bit d: direction d is kept
    uint64_t bytes;  // after the header
    uint64_t hash;   // XXH3 of them
};

class Out {
public:
    template <typename T>
    void put(const T& v)
    {
        s_.append(reinterpret_cast<const char*>(&v), sizeof(T));
    }
    template <typename T>
    void array(const std::vector<T>& v)
    {
        put(uint64_t(v.size()));
        s_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
    }
    // A class table as runs of one class (a port table is ~20,000 runs, the L4 one a few).
    void runs(const std::vector<uint16_t>& t)
    {
        std::vector<uint32_t> out;  // count << 16 | class, pairs
        for (size_t i = 0; i < t.size();) {
            size_t j = i + 1;
            while (j < t.size() && t[j] == t[i] && j - i < 0xffff)
                j++;
            out.push_back(uint32_t(j - i) << 16 | t[i]);
            i = j;
        }
        put(uint64_t(t.size()));
        array(out);
    }
    void addr(const AddrClassTable& t, Family f)
    {
        put(t.default_class);
        put(uint64_t(t.entries.size()));
        const size_t n = f == Family::v4 ? 4 : 16;
        for (const AddrClassTable::Entry& e : t.entries) {
            put(e.cls);
            put(e.prefix.len);
            s_.append(reinterpret_cast<const char*>(e.prefix.addr.data()), n);
        }
        // Split by sets: their names and the node classes (both families hold the one array:
        // kept with IPv4's table only).
        put(uint32_t(t.sets.size()));
        for (const std::string& name : t.sets) {
            put(uint32_t(name.size()));
            s_.append(name);
        }
        if (!t.sets.empty())
            array(f == Family::v4 ? t.node_class : std::vector<uint32_t>{});
    }
    std::string& str() { return s_; }

private:
    std::string s_;
};

class In {
public:
    explicit In(std::string_view s) : s_(s) {}
    bool ok() const { return ok_; }
    template <typename T>
    T get()
    {
        T v{};
        if (!take(&v, sizeof(T)))
            return T{};
        return v;
    }
    template <typename T>
    void array(std::vector<T>& v, uint64_t max)
    {
        const uint64_t n = get<uint64_t>();
        if (!ok_ || n > max || n * sizeof(T) > s_.size() - at_) {
            ok_ = false;
            return;
        }
        v.resize(n);
        take(v.data(), n * sizeof(T));
    }
    void runs(std::vector<uint16_t>& t, uint64_t size)
    {
        if (get<uint64_t>() != size)
            ok_ = false;
        std::vector<uint32_t> r;
        array(r, size);
        if (!ok_)
            return;
        t.clear();
        t.reserve(size);
        for (uint32_t x : r)
            t.insert(t.end(), x >> 16, uint16_t(x));
        ok_ = ok_ && t.size() == size;
    }
    void addr(AddrClassTable& t, Family f)
    {
        t.default_class = get<uint32_t>();
        const uint64_t n = get<uint64_t>();
        const size_t len = f == Family::v4 ? 4 : 16;
        if (!ok_ || n > (s_.size() - at_) / (5 + len)) {
            ok_ = false;
            return;
        }
        t.entries.resize(n);
        for (size_t i = 0; i < n; i++) {
            AddrClassTable::Entry& e = t.entries[i];
            e.cls = get<uint32_t>();
            e.prefix.family = f;
            e.prefix.len = get<uint8_t>();
            take(e.prefix.addr.data(), len);
            // A prefix with no bits past its length, in the order compile_delta.cpp searches.
            ok_ = ok_ && e.prefix.len <= 8 * len && e.prefix.network_of(e.prefix.len).addr == e.prefix.addr &&
                  (i == 0 || t.entries[i - 1].prefix < e.prefix);
        }
        const uint32_t sets = get<uint32_t>();
        if (!ok_ || sets > kMaxSplitSets) {
            ok_ = false;
            return;
        }
        t.sets.resize(sets);
        for (std::string& name : t.sets) {
            const uint32_t n = get<uint32_t>();
            if (!ok_ || n > s_.size() - at_) {
                ok_ = false;
                return;
            }
            name.assign(s_.substr(at_, n));
            at_ += n;
        }
        if (sets)
            array(t.node_class, UINT32_MAX);
    }
    bool done() const { return ok_ && at_ == s_.size(); }

private:
    bool take(void* out, size_t n)
    {
        if (!ok_ || n > s_.size() - at_) {
            ok_ = false;
            return false;
        }
        std::memcpy(out, s_.data() + at_, n);
        at_ += n;
        return true;
    }
    std::string_view s_;
    size_t at_ = 0;
    bool ok_ = true;
};

struct RowOut {
    uint32_t field_flags;  // field | dense << 8 | unused << 9
    uint32_t len;
};

bool kept(const CompiledDirection& d, uint32_t min_rules)
{
    size_t rules = 0;
    for (const RuleRecord& r : d.ranked)
        rules += r.id != 0;
    return d.patchable && rules >= min_rules && d.match_prints.size() == d.n_rules && d.n_rules;
}

std::string encode_addresses(const CompiledDirection& d)
{
    Out o;
    o.addr(d.src_v4, Family::v4);
    o.addr(d.src_v6, Family::v6);
    o.addr(d.dst_v4, Family::v4);
    o.addr(d.dst_v6, Family::v6);
    return std::move(o.str());
}

void encode_direction(Out& o, const CompiledDirection& d, const std::string& addresses)
{
    o.put(d.words);
    o.put(d.agg_words);
    o.array(d.match_prints);
    for (int f = 0; f < kFieldCount; f++) {
        o.put(d.row_base[f]);
        o.put(d.n_classes[f]);
    }
    // Each row's ranks or bitmap in row order (align_classes reorders rows, not what they point at).
    std::vector<RowOut> rows;
    std::vector<uint16_t> ranks;  // < XDPCTL_POL_MAX_RANKS: half the bytes of the rows' own
    std::vector<uint64_t> dense;
    rows.reserve(d.rows.rows.size());
    ranks.reserve(d.rows.ranks.size());
    for (const RowTable::Row& r : d.rows.rows) {
        rows.push_back({r.field | uint32_t(r.dense) << 8 | uint32_t(r.unused) << 9, r.len});
        if (r.unused)
            rows.back().len = 0;
        else if (r.dense)
            dense.insert(dense.end(), d.rows.dense.begin() + ptrdiff_t(r.off), d.rows.dense.begin() + ptrdiff_t(r.off + d.words));
        else
            ranks.insert(ranks.end(), d.rows.ranks.begin() + ptrdiff_t(r.off), d.rows.ranks.begin() + ptrdiff_t(r.off + r.len));
    }
    o.array(rows);
    o.array(ranks);
    o.array(dense);
    for (uint32_t cls : {d.src_nonip_class, d.dst_nonip_class, d.sport_none_class, d.dport_none_class,
                         d.l4_nonip_class, d.iif_other_class})
        o.put(cls);
    o.str() += addresses;
    for (const std::vector<uint16_t>* t : {&d.sport, &d.dport, &d.l4, &d.vlan, &d.iif})
        o.runs(*t);
}

bool decode_direction(In& in, CachedDirection& out)
{
    CompiledDirection& d = out.compiled;
    d.words = in.get<uint32_t>();
    d.agg_words = in.get<uint32_t>();
    if (!in.ok() || d.words == 0 || d.words > XDPCTL_POL_MAX_WORDS || d.agg_words != (d.words + 63) / 64)
        return false;
    in.array(out.prints, uint64_t(d.words) * 64);
    d.n_rules = uint32_t(out.prints.size());
    uint64_t classes = 0;
    for (int f = 0; f < kFieldCount; f++) {
        d.row_base[f] = in.get<uint32_t>();
        d.n_classes[f] = in.get<uint32_t>();
        classes += d.n_classes[f];
    }
    std::vector<RowOut> rows;
    in.array(rows, classes);
    std::vector<uint16_t> ranks16;
    in.array(ranks16, UINT32_MAX);
    d.rows.ranks.assign(ranks16.begin(), ranks16.end());
    in.array(d.rows.dense, UINT32_MAX);
    if (!in.ok() || rows.size() != classes)
        return false;
    for (int f = 0; f < kFieldCount; f++)
        if (uint64_t(d.row_base[f]) + d.n_classes[f] > classes || d.n_classes[f] > 65535)
            return false;
    d.rows.words = d.words, d.rows.agg_words = d.agg_words;
    d.rows.rows.resize(rows.size());
    uint64_t ranks = 0, dense = 0;
    for (size_t i = 0; i < rows.size(); i++) {
        RowTable::Row& r = d.rows.rows[i];
        r.field = rows[i].field_flags & 0xff;
        r.dense = rows[i].field_flags >> 8 & 1;
        r.unused = rows[i].field_flags >> 9 & 1;
        if (r.unused && r.dense)
            return false;
        r.len = r.dense || r.unused ? 0 : rows[i].len;
        r.off = r.dense ? dense : ranks;
        (r.dense ? dense : ranks) += r.dense ? d.words : r.len;
        if (r.field >= kFieldCount || i < d.row_base[r.field] || i >= d.row_base[r.field] + d.n_classes[r.field])
            return false;
    }
    if (ranks != d.rows.ranks.size() || dense != d.rows.dense.size())
        return false;
    for (uint32_t rank : d.rows.ranks)
        if (rank >= d.words * 64)
            return false;
    for (uint32_t* cls : {&d.src_nonip_class, &d.dst_nonip_class, &d.sport_none_class, &d.dport_none_class,
                          &d.l4_nonip_class, &d.iif_other_class})
        *cls = in.get<uint32_t>();
    in.addr(d.src_v4, Family::v4);
    in.addr(d.src_v6, Family::v6);
    in.addr(d.dst_v4, Family::v4);
    in.addr(d.dst_v6, Family::v6);
    // A split field: IPv6's table has the sets and array IPv4's has, its nodes numbered after
    // IPv4's (AddrClassTable::split).
    for (auto [v4, v6] : {std::pair{&d.src_v4, &d.src_v6}, {&d.dst_v4, &d.dst_v6}}) {
        if (v4->sets != v6->sets || !v6->node_class.empty())
            return false;
        v6->node_class = v4->node_class;
    }
    in.runs(d.sport, 65536);
    in.runs(d.dport, 65536);
    in.runs(d.l4, kL4TableSize);
    in.runs(d.vlan, kVlanUntagged + 1);
    in.runs(d.iif, kIifTableSize);
    if (!in.ok())
        return false;
    // Every class a table names is one of its field's.
    auto fits = [&](Field f, uint32_t cls) { return cls < d.n_classes[f]; };
    bool good = fits(kFieldSrc, d.src_nonip_class) && fits(kFieldDst, d.dst_nonip_class) &&
                fits(kFieldSport, d.sport_none_class) && fits(kFieldDport, d.dport_none_class) &&
                fits(kFieldL4, d.l4_nonip_class) && fits(kFieldIif, d.iif_other_class);
    for (auto [f, t, v6] : {std::tuple{kFieldSrc, &d.src_v4, false}, {kFieldSrc, &d.src_v6, true},
                            {kFieldDst, &d.dst_v4, false}, {kFieldDst, &d.dst_v6, true}}) {
        if (t->split()) {  // entries name nodes (IPv4's from 1, IPv6's after them), node 0 the default
            const size_t n4 = (f == kFieldSrc ? d.src_v4 : d.dst_v4).entries.size();
            const size_t n6 = (f == kFieldSrc ? d.src_v6 : d.dst_v6).entries.size();
            const size_t first = v6 ? n4 + 1 : 1;
            good = good && t->default_class == 0 && t->node_class.size() == (1 + n4 + n6) << t->sets.size();
            for (size_t i = 0; i < t->entries.size(); i++)
                good = good && t->entries[i].cls == first + i;
            for (uint32_t cls : t->node_class)
                good = good && fits(f, cls);
            continue;
        }
        good = good && fits(f, t->default_class);
        for (const AddrClassTable::Entry& e : t->entries)
            good = good && fits(f, e.cls);
    }
    for (auto [f, t] : {std::pair{kFieldSport, &d.sport}, {kFieldDport, &d.dport}, {kFieldL4, &d.l4},
                        {kFieldVlan, &d.vlan}, {kFieldIif, &d.iif}})
        for (uint16_t cls : *t)
            good = good && fits(f, cls);
    return good;
}

}  // namespace

CacheAddresses cache_addresses(const CompiledPolicy& c, uint32_t min_rules)
{
    CacheAddresses out;
    for (int d = 0; d < 2; d++)
        if (kept(c.dir[d], min_rules))
            out.dir[d] = encode_addresses(c.dir[d]);
    return out;
}

std::string encode_compile_cache(const CompiledPolicy& c, const CacheAddresses* addresses, uint32_t min_rules,
                                 uint64_t commits, uint32_t maps_id, size_t expect_bytes)
{
    Out o;
    o.str().reserve(expect_bytes + expect_bytes / 16);
    Header h{kMagic, 0, 0, 0};
    o.put(h);
    o.put(commits);
    o.put(maps_id);
    for (const CompiledDirection& d : c.dir) {
        std::vector<uint32_t> ids;
        ids.reserve(d.ranked.size());
        for (const RuleRecord& r : d.ranked)
            ids.push_back(r.id);
        o.put(d.n_rules ? d.words : 0u);
        o.array(ids);
    }
    for (int d = 0; d < 2; d++)
        if (kept(c.dir[d], min_rules)) {
            h.dirs |= 1u << d;
            encode_direction(o, c.dir[d], addresses ? addresses->dir[d] : encode_addresses(c.dir[d]));
        }
    if (!h.dirs)
        return "";
    std::string& s = o.str();
    h.bytes = s.size() - sizeof(h);
    h.hash = XXH3_64bits(s.data() + sizeof(h), h.bytes);
    std::memcpy(s.data(), &h, sizeof(h));
    return std::move(s);
}

std::optional<CompileCache> decode_compile_cache(std::string_view bytes)
{
    Header h{};
    if (bytes.size() < sizeof(h))
        return std::nullopt;
    std::memcpy(&h, bytes.data(), sizeof(h));
    if (h.magic != kMagic || h.bytes != bytes.size() - sizeof(h) || (h.dirs & ~3u) ||
        XXH3_64bits(bytes.data() + sizeof(h), h.bytes) != h.hash)
        return std::nullopt;
    In in(bytes.substr(sizeof(h)));
    CompileCache out;
    out.commits = in.get<uint64_t>();
    out.maps_id = in.get<uint32_t>();
    for (RankHint& r : out.ranks.dir) {
        r.words = in.get<uint32_t>();
        in.array(r.ids, XDPCTL_POL_MAX_RANKS);
    }
    for (int d = 0; d < 2; d++)
        if (h.dirs >> d & 1)
            if (!decode_direction(in, out.dir[d].emplace()))
                return std::nullopt;
    if (!in.done())
        return std::nullopt;
    return out;
}

size_t compile_cache_bytes(const std::string& path)
{
    struct stat st {};
    return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) ? size_t(st.st_size) : 0;
}

std::optional<CompileCache> read_compile_cache(uint32_t maps_id, const std::string& path)
{
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    struct stat st {};
    if (!fd || fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (256 << 20) ||
        size_t(st.st_size) < sizeof(Header))
        return std::nullopt;
    // Read into the heap (in 2 MiB pages in a rule command: heap_pages.h), not decoded from
    // a mapping of the file: the mapping's 4 KiB pages cost ~0.4 ms more to read at 10,000
    // rules where the hypervisor tracks page tables.
    std::string bytes(size_t(st.st_size), '\0');
    for (size_t got = 0; got < bytes.size();) {
        const ssize_t n = read(fd.get(), bytes.data() + got, bytes.size() - got);
        if (n <= 0)
            return std::nullopt;
        got += size_t(n);
    }
    std::optional<CompileCache> out = decode_compile_cache(bytes);
    if (out && maps_id && out->maps_id != maps_id)
        return std::nullopt;
    return out;
}

void write_compile_cache(const std::string& bytes, const std::string& path)
{
    if (bytes.empty()) {
        unlink(path.c_str());
        return;
    }
    // Written over the last one in place: its pages are reused, where a new file's are taken
    // and the old one's freed. A write cut short leaves bytes whose hash does not match
    // (decode_compile_cache): not read. (Commits hold the writer lock: no reader meanwhile.)
    UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    struct stat st {};
    if (!fd || fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        unlink(path.c_str());
        return;
    }
    size_t put = 0;
    while (put < bytes.size()) {
        const ssize_t n = pwrite(fd.get(), bytes.data() + put, bytes.size() - put, off_t(put));
        if (n <= 0) {
            unlink(path.c_str());
            return;
        }
        put += size_t(n);
    }
    if (size_t(st.st_size) > bytes.size() && ftruncate(fd.get(), off_t(bytes.size())) != 0)
        unlink(path.c_str());
}

}  // namespace xdpctl::policy
