#include "policy/stored_image.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include <fcntl.h>

#include <bpf/bpf.h>

#include "policy/policy_binary.h"
#include "policy/rule_parse.h"
#include "policy/set_splice.h"
#include "policy/set_tables.h"
#include "state/set_journal.h"
#include "util/unique_fd.h"
#include "util/error.h"

namespace xdpctl::policy {

namespace {

bpf_map_info src_info(int src_fd)
{
    bpf_map_info info{};
    __u32 info_len = sizeof(info);
    if (bpf_map_get_info_by_fd(src_fd, &info, &info_len) != 0)
        fail("cannot read the layout of the stored policy's map: {}", errno_str(errno));
    return info;
}

uint32_t src_value_size(int src_fd)
{
    return src_info(src_fd).value_size;
}

}  // namespace

std::string read_stored_image(int src_fd, uint32_t gen, const std::function<void(uint64_t)>& sized)
{
    const bpf_map_info info = src_info(src_fd);
    if (info.value_size <= sizeof(uint64_t))
        fail("the stored policy's map has values of {} bytes: too small for an image", info.value_size);
    std::vector<uint8_t> chunk(info.value_size);
    uint32_t key = stored_image_key(gen, 0);
    if (bpf_map_lookup_elem(src_fd, &key, chunk.data()) != 0)
        return "";  // the empty policy is stored as no text (see PolicyStore::commit)
    uint64_t len = 0;
    std::memcpy(&len, chunk.data(), sizeof(len));
    if (len > uint64_t(info.max_entries) * info.value_size)
        fail("the stored policy of generation {} claims {} bytes, more than its map holds", gen, len);
    if (sized)
        sized(len);
    std::string text;
    text.reserve(len);
    size_t off = sizeof(len);
    for (uint32_t c = 0; text.size() < len; c++) {
        if (c > 0) {
            key = stored_image_key(gen, c);
            if (bpf_map_lookup_elem(src_fd, &key, chunk.data()) != 0)
                fail("the stored policy of generation {} is cut short (chunk {})", gen, c);
            off = 0;
        }
        size_t n = std::min<size_t>(len - text.size(), chunk.size() - off);
        text.append(reinterpret_cast<const char*>(chunk.data() + off), n);
    }
    return text;
}

Policy decode_stored(const std::string& stored, const std::string& source, IifIndexes* resolved)
{
    // Text: stored by an xdpctl from before the binary image (no resolved indexes).
    return is_policy_image(stored) ? decode_policy(stored, source, resolved) : parse_policy_text(stored, source);
}

std::vector<StoredSetChange> read_set_changes(int src_fd, uint32_t gen, uint64_t base)
{
    std::vector<StoredSetChange> out;
    std::vector<char> v;
    for (uint32_t n = 0; n < kMaxSetChanges; n++) {
        const uint32_t key = stored_image_key(gen, kSetChangeChunk + n);
        if (v.empty())
            v.resize(src_value_size(src_fd));
        if (bpf_map_lookup_elem(src_fd, &key, v.data()) != 0)
            break;
        // u16 name length, the name, u32 record length, the record (state/set_journal.h:
        // magic, u32 count, u64 generation, ...).
        uint16_t name_len = 0;
        uint32_t rec_len = 0;
        std::memcpy(&name_len, v.data(), 2);
        if (size_t(2) + name_len + 4 > v.size())
            break;
        std::memcpy(&rec_len, v.data() + 2 + name_len, 4);
        if (size_t(6) + name_len + rec_len > v.size() || rec_len < 16)
            break;
        StoredSetChange c{std::string(v.data() + 2, name_len), std::string(v.data() + 6 + name_len, rec_len)};
        uint64_t made_for = 0;
        std::memcpy(&made_for, c.record.data() + 8, 8);
        if (made_for != base)
            break;  // another image's: none after it is this one's either
        out.push_back(std::move(c));
    }
    return out;
}

bool append_set_change(int src_fd, uint32_t gen, size_t at, const StoredSetChange& c)
{
    if (at >= kMaxSetChanges)
        return false;
    std::vector<char> v(src_value_size(src_fd));
    if (6 + c.set.size() + c.record.size() > v.size() || c.set.size() > UINT16_MAX)
        return false;
    const uint16_t name_len = uint16_t(c.set.size());
    const uint32_t rec_len = uint32_t(c.record.size());
    std::memcpy(v.data(), &name_len, 2);
    std::memcpy(v.data() + 2, c.set.data(), name_len);
    std::memcpy(v.data() + 2 + name_len, &rec_len, 4);
    std::memcpy(v.data() + 6 + name_len, c.record.data(), rec_len);
    const uint32_t key = stored_image_key(gen, kSetChangeChunk + uint32_t(at));
    return bpf_map_update_elem(src_fd, &key, v.data(), BPF_ANY) == 0;
}

void clear_set_changes(int src_fd, uint32_t gen)
{
    for (uint32_t n = 0; n < kMaxSetChanges; n++) {
        const uint32_t key = stored_image_key(gen, kSetChangeChunk + n);
        if (bpf_map_delete_elem(src_fd, &key) != 0)
            break;
    }
}

namespace {

// Little-endian fields one after another (the set index's layout).
struct Bytes {
    std::string out;
    template <typename T>
    void put(T v)
    {
        out.append(reinterpret_cast<const char*>(&v), sizeof v);
    }
};

struct Cursor {
    std::string_view in;
    size_t at = 0;
    bool ok = true;
    template <typename T>
    T get()
    {
        T v{};
        if (in.size() - at < sizeof v) {
            ok = false;
            return v;
        }
        std::memcpy(&v, in.data() + at, sizeof v);
        at += sizeof v;
        return v;
    }
};

constexpr uint32_t kSetIndexMagic = 0x31495358;       // "XSI1"
constexpr uint32_t kSetIndexExactMagic = 0x32495358;  // "XSI2": StoredSets::exact_sums

}  // namespace

std::vector<StoredSetIndex> stored_set_index(const Policy& p, std::vector<ImageSet> where,
                                             const std::map<std::string, uint64_t>& prints)
{
    if (where.empty())
        return {};  // no set: the rules need not be read
    std::map<std::string, std::vector<std::pair<uint32_t, uint32_t>>> fields;
    for (const Rule& r : p.rules)
        for (uint32_t dst = 0; dst < 2; dst++) {
            const AddrMatch& a = dst ? r.dst : r.src;
            if (a.kind != AddrMatch::Kind::set)
                continue;
            auto& f = fields[a.set];
            const std::pair<uint32_t, uint32_t> here{uint32_t(r.dir), dst};
            if (std::find(f.begin(), f.end(), here) == f.end())
                f.push_back(here);
        }
    std::vector<StoredSetIndex> out;
    for (ImageSet& w : where) {
        auto print = prints.find(w.name);
        if (print == prints.end())
            continue;
        StoredSetIndex s{.at = std::move(w), .print = print->second, .fields = {}};
        if (auto f = fields.find(s.at.name); f != fields.end())
            s.fields = f->second;
        out.push_back(std::move(s));
    }
    return out;
}

void write_set_index(int src_fd, uint32_t gen, const StoredSets& index)
{
    Bytes b;
    b.put(index.exact_sums ? kSetIndexExactMagic : kSetIndexMagic);
    b.put(index.base);
    b.put(index.now);
    b.put(uint32_t(index.sets.size()));
    for (const StoredSetIndex& s : index.sets) {
        b.put(uint16_t(s.at.name.size()));
        b.out += s.at.name;
        b.put(s.print);
        b.put(uint64_t(s.at.offset));
        b.put(uint64_t(s.at.bytes));
        b.put(s.at.count);
        b.put(s.at.v4_count);
        b.put(uint8_t(s.fields.size()));
        for (const auto& [d, dst] : s.fields) {
            b.put(uint8_t(d));
            b.put(uint8_t(dst));
        }
    }
    std::vector<char> v(src_value_size(src_fd));
    const uint32_t key = stored_image_key(gen, kSetIndexChunk);
    if (b.out.size() > v.size()) {
        bpf_map_delete_elem(src_fd, &key);
        return;  // never with kMaxSets sets; a `set add` commits without it
    }
    std::memcpy(v.data(), b.out.data(), b.out.size());
    if (bpf_map_update_elem(src_fd, &key, v.data(), BPF_ANY) != 0)
        bpf_map_delete_elem(src_fd, &key);  // the same: only `set add` misses it
}

std::optional<StoredSets> read_set_index(int src_fd, uint32_t gen, uint64_t commits)
{
    std::vector<char> v(src_value_size(src_fd));
    const uint32_t key = stored_image_key(gen, kSetIndexChunk);
    if (bpf_map_lookup_elem(src_fd, &key, v.data()) != 0)
        return std::nullopt;
    Cursor c{std::string_view(v.data(), v.size())};
    StoredSets index;
    const uint32_t magic = c.get<uint32_t>();
    if (magic != kSetIndexMagic && magic != kSetIndexExactMagic)
        return std::nullopt;
    index.exact_sums = magic == kSetIndexExactMagic;
    index.base = c.get<uint64_t>();
    index.now = c.get<uint64_t>();
    if (commits != index.now && commits != index.now + 1)  // +1: a change in place killed before it wrote `now`
        return std::nullopt;
    std::vector<StoredSetIndex>& out = index.sets;
    out.resize(std::min<uint32_t>(c.get<uint32_t>(), kMaxSets));
    for (StoredSetIndex& s : out) {
        const uint16_t n = c.get<uint16_t>();
        if (!c.ok || c.in.size() - c.at < n)
            return std::nullopt;
        s.at.name.assign(c.in.data() + c.at, n);
        c.at += n;
        s.print = c.get<uint64_t>();
        s.at.offset = c.get<uint64_t>();
        s.at.bytes = c.get<uint64_t>();
        s.at.count = c.get<uint32_t>();
        s.at.v4_count = c.get<uint32_t>();
        for (uint8_t f = c.get<uint8_t>(); f > 0; f--) {
            const uint32_t d = c.get<uint8_t>();
            s.fields.push_back({d, c.get<uint8_t>()});
        }
    }
    if (!c.ok)
        return std::nullopt;
    return index;
}

StoredImageBytes::StoredImageBytes(int src_fd, uint32_t gen)
    : fd_(src_fd), gen_(gen), chunk_bytes_(src_value_size(src_fd))
{
}

void StoredImageBytes::copy(size_t offset, void* out, size_t n)
{
    char* o = static_cast<char*>(out);
    size_t pos = offset + sizeof(uint64_t);  // the first chunk starts with the image's length
    while (n > 0) {
        const uint32_t c = uint32_t(pos / chunk_bytes_);
        auto it = chunks_.find(c);
        if (it == chunks_.end()) {
            std::vector<char> v(chunk_bytes_);
            const uint32_t key = stored_image_key(gen_, c);
            if (bpf_map_lookup_elem(fd_, &key, v.data()) != 0)
                fail("the stored policy of generation {} is cut short (chunk {})", gen_, c);
            it = chunks_.emplace(c, std::move(v)).first;
        }
        const size_t in = pos % chunk_bytes_, k = std::min<size_t>(n, chunk_bytes_ - in);
        std::memcpy(o, it->second.data() + in, k);
        o += k, pos += k, n -= k;
    }
}

void copy_stored_bytes(int src_fd, uint32_t gen, size_t offset, char* out, size_t n)
{
    const uint32_t chunk_bytes = src_value_size(src_fd);
    std::vector<char> v(chunk_bytes);
    size_t pos = offset + sizeof(uint64_t);  // the first chunk starts with the image's length
    while (n > 0) {
        const uint32_t c = uint32_t(pos / chunk_bytes);
        const uint32_t key = stored_image_key(gen, c);
        if (bpf_map_lookup_elem(src_fd, &key, v.data()) != 0)
            fail("the stored policy of generation {} is cut short (chunk {})", gen, c);
        const size_t in = pos % chunk_bytes, k = std::min<size_t>(n, chunk_bytes - in);
        std::memcpy(out, v.data() + in, k);
        out += k, pos += k, n -= k;
    }
}

namespace {

// The image generation `gen` stored, as read_stored_image() reads it, but for the chunks that
// lie wholly inside `holes` (the entries of sets left undecoded): those stay in the map until
// something needs them (ImageBytes). The map is read through a descriptor of its own, so the
// bytes can be read after the caller's is closed; nothing writes this generation while the
// caller holds the writer lock (PolicyStore::commit writes the other one, and reads what is
// left of an image it is about to overwrite first).
std::shared_ptr<const ImageBytes> read_stored_leaving(int src_fd, uint32_t gen, const std::function<void(uint64_t)>& sized,
                                                      const std::vector<std::pair<size_t, size_t>>& holes)
{
    const bpf_map_info info = src_info(src_fd);
    if (info.value_size <= sizeof(uint64_t))
        fail("the stored policy's map has values of {} bytes: too small for an image", info.value_size);
    std::vector<char> first(info.value_size);
    uint32_t key = stored_image_key(gen, 0);
    uint64_t len = 0;
    if (holes.empty() || bpf_map_lookup_elem(src_fd, &key, first.data()) != 0 ||
        (std::memcpy(&len, first.data(), sizeof(len)), len > uint64_t(info.max_entries) * info.value_size))
        return std::make_shared<const ImageBytes>(std::make_shared<const std::string>(read_stored_image(src_fd, gen, sized)));
    if (sized)
        sized(len);
    const int dup = fcntl(src_fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0)
        fail("cannot read the stored policy: {}", errno_str(errno));
    auto fd = std::make_shared<UniqueFd>(dup);
    return std::make_shared<const ImageBytes>(
        size_t(len), info.value_size, holes,
        [fd, gen, first = std::move(first)](uint32_t c, char* out) {
            if (c == 0) {  // read already, with the length
                std::memcpy(out, first.data(), first.size());
                return;
            }
            const uint32_t k = stored_image_key(gen, c);
            if (bpf_map_lookup_elem(fd->get(), &k, out) != 0)
                fail("the stored policy of generation {} is cut short (chunk {})", gen, c);
        },
        gen);
}

}  // namespace

Policy read_stored_policy(int src_fd, uint32_t gen, uint64_t commits, const std::string& source,
                          IifIndexes* resolved, const std::function<void(uint64_t)>& sized,
                          SetsAsRead* as_read, bool leave_sets, std::map<std::string, std::string>* pending)
{
    const std::optional<StoredSets> index = read_set_index(src_fd, gen, commits);
    const std::vector<StoredSetChange> changes =
        index ? read_set_changes(src_fd, gen, index->base) : std::vector<StoredSetChange>{};
    // To be left undecoded: a set the index places in this image (one with changes stored
    // since as its bytes with them spliced in, set_splice.h, or with them in `pending`).
    std::map<std::string, const ImageSet*> leave;
    std::vector<std::pair<size_t, size_t>> holes;  // their entries, not read now
    if (leave_sets && index)
        for (const StoredSetIndex& s : index->sets) {
            leave[s.at.name] = &s.at;
            holes.emplace_back(s.at.offset, s.at.bytes);
        }
    const std::shared_ptr<const ImageBytes> stored = read_stored_leaving(src_fd, gen, sized, holes);
    const std::string_view image = stored->view();
    const bool image_current = image.substr(0, kPolicyImageMagic.size()) == kPolicyImageMagic;
    if (!image_current) {
        leave.clear();
        stored->bytes(0, stored->size());  // an older image: all of it is decoded
    }
    Policy p = leave.empty() ? (is_policy_image(image) ? decode_policy(image, source, resolved)
                                                       : parse_policy_text(image, source))
                             : decode_policy_leaving_sets(stored, source, resolved, [&](const std::string& name) {
                                   auto it = leave.find(name);
                                   return it == leave.end() ? nullptr : it->second;
                               });
    for (const StoredSetIndex& s : index ? index->sets : std::vector<StoredSetIndex>{})
        if (auto it = p.sets.find(s.at.name); it != p.sets.end() && it->second.size() == s.at.count) {
            if (as_read)
                as_read->sets[s.at.name] = s;
            if (it->second.undecoded && index->exact_sums)
                it->second.undecoded->print_sum = index->sum_of(s);
        }
    if (as_read) {
        as_read->image_current = image_current;
        as_read->exact_sums = !index || index->exact_sums;
    }
    // A set's changes replayed in one go, their records in order (the last op on an entry
    // wins, as one by one): each replay merges the whole set into a new vector, ~24 MiB at
    // 1M prefixes, which took ~60 ms of fresh pages a change where first touches are dear.
    std::map<std::string, std::string> records;
    for (const StoredSetChange& c : changes)
        records[c.set] += c.record;
    for (const auto& [name, record] : records) {
        auto it = p.sets.find(name);
        if (pending && it != p.sets.end() && it->second.undecoded) {
            (*pending)[name] = record;
            if (as_read)
                as_read->sets.erase(name);  // the image's entries, but not the set's
            continue;
        }
        if (it != p.sets.end() && it->second.undecoded && index) {
            auto s = std::find_if(index->sets.begin(), index->sets.end(),
                                  [&set_name = name](const StoredSetIndex& x) { return x.at.name == set_name; });
            std::vector<std::pair<SetEntry, bool>> ops;
            uint64_t sum = s != index->sets.end() ? index->sum_of(*s) : 0;
            std::optional<UndecodedEntries> spliced;
            if (s == index->sets.end() || state::journal_ops(record, ops) != record.size() ||
                !(spliced = splice_set_changes(*it->second.undecoded, ops, sum)))
                fail("{}: the change to set '{}' stored after it does not apply", source, name);
            it->second.undecoded = std::move(spliced);
            if (!index->exact_sums)
                it->second.undecoded->print_sum.reset();
            const uint64_t print = set_print_of_sum(sum);
            if (as_read) {
                as_read->sets.erase(name);  // its entries are no longer the image's
                as_read->spliced[name] = print;
            }
            continue;
        }
        if (it == p.sets.end() || it->second.undecoded || state::replay_journal(it->second, record) != record.size())
            fail("{}: the change to set '{}' stored after it does not apply", source, name);
        if (as_read)
            as_read->sets.erase(name);  // its entries are no longer the image's
    }
    return p;
}

}  // namespace xdpctl::policy
