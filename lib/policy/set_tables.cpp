#include "policy/set_tables.h"

#include <bpf/bpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <cstring>

#include "policy/policy_binary.h"
#include "policy/prefix_table.h"
#include "policy/table_maps.h"
#include "util/error.h"

namespace xdpctl::policy {

namespace {

// Tables up to this many lines are built in memory of their own and copied; larger ones
// (a big set's) straight into their map, as the commit builds large address tables.
constexpr uint64_t kBuildInMapLines = (32ull << 20) / XDPCTL_PFX_LINE_BYTES;

// Room past a set table's lines for `set add`/`set del` to patch into (stage_set_patch): a
// /32 added to a /16 takes ~17-32 lines, so ~60 changes to a small set's table, thousands to
// a 1M-prefix set's (1/64 more memory), before one rebuilds the table.
uint64_t patch_room(uint64_t lines)
{
    return std::max<uint64_t>(2048, lines / 64);
}

xdpctl_pfx_line read_line(int fd, uint32_t line)
{
    xdpctl_pfx_line l{};
    if (bpf_map_lookup_elem(fd, &line, &l) != 0)
        fail("cannot read line {} of a set table: {}", line, errno_str(errno));
    return l;
}

void write_line(int fd, uint32_t line, const xdpctl_pfx_line& l)
{
    if (bpf_map_update_elem(fd, &line, &l, BPF_ANY) != 0)
        fail("cannot write line {} of a set table: {}", line, errno_str(errno));
}

// One aligned 4-byte store into an mmapable map at byte `at` of its values: a packet reads
// the word before or after it, never half of each (bpf_map_update_elem would copy the whole
// 256 KiB level 1 with memcpy, which promises nothing about a word).
void store_word(int fd, uint64_t at, uint32_t v)
{
    const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
    const uint64_t base = at & ~(page - 1);
    void* m = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off_t(base));
    if (m == MAP_FAILED)
        fail("cannot map a set table's level 1: {}", errno_str(errno));
    __atomic_store_n(reinterpret_cast<uint32_t*>(static_cast<char*>(m) + (at - base)), v, __ATOMIC_RELEASE);
    munmap(m, page);
}

uint32_t leaf(const SetEntry& e)
{
    return e.except ? XDPCTL_PFX_EXCEPTED : 1;
}

uint32_t addr4(const Prefix& p)
{
    return uint32_t(p.addr[0]) << 24 | uint32_t(p.addr[1]) << 16 | uint32_t(p.addr[2]) << 8 | p.addr[3];
}

// Lines past a table's own, taken in order (chunks 16-line aligned).
class Room {
public:
    Room(uint32_t free, uint32_t end) : free_(free), end_(end) {}
    std::optional<uint32_t> take(uint32_t lines)
    {
        const uint64_t at = lines == XDPCTL_PFX_CHUNK_LINES ? (uint64_t(free_) + 15) / 16 * 16 : free_;
        if (at + lines > end_ || at / (lines == XDPCTL_PFX_CHUNK_LINES ? 16 : 1) > XDPCTL_PFX_CHUNK_MASK)
            return std::nullopt;
        free_ = uint32_t(at + lines);
        return uint32_t(at);
    }
    uint32_t free() const { return free_; }

private:
    uint32_t free_, end_;
};

// The 256 values of a /24 (or the level 2 of a /16) as a sparse line when they fall into few
// enough runs (abi: XDPCTL_PFX_SPARSE).
std::optional<xdpctl_pfx_line> sparse_line(const std::array<uint32_t, 256>& v)
{
    xdpctl_pfx_line l{};
    std::memset(l.byte, 0xff, XDPCTL_PFX_SPARSE_STARTS);
    uint32_t run = 0;
    l.word[XDPCTL_PFX_SPARSE_VALUE_WORD] = v[0];
    for (uint32_t b = 1; b < 256; b++)
        if (v[b] != v[b - 1]) {
            if (++run >= XDPCTL_PFX_SPARSE_RUNS)
                return std::nullopt;
            l.byte[run - 1] = uint8_t(b);
            l.word[XDPCTL_PFX_SPARSE_VALUE_WORD + run] = v[b];
        }
    for (uint32_t r = run + 1; r < XDPCTL_PFX_SPARSE_RUNS; r++)
        l.word[XDPCTL_PFX_SPARSE_VALUE_WORD + r] = v[255];
    return l;
}

// Writes a chunk's 256 words at line `at` (16 lines).
void write_chunk(int fd, uint32_t at, const std::array<uint32_t, 256>& v)
{
    for (uint32_t i = 0; i < XDPCTL_PFX_CHUNK_LINES; i++) {
        xdpctl_pfx_line l{};
        std::memcpy(l.word, v.data() + i * XDPCTL_PFX_LINE_WORDS, XDPCTL_PFX_LINE_BYTES);
        write_line(fd, at + i, l);
    }
}

uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

}  // namespace

uint64_t set_entry_print(const SetEntry& e)
{
    uint64_t hi = 0, lo = 0;
    std::memcpy(&hi, e.prefix.addr.data(), 8);
    std::memcpy(&lo, e.prefix.addr.data() + 8, 8);
    const uint64_t head = uint64_t(e.prefix.len) | uint64_t(e.prefix.family) << 8 | uint64_t(e.except) << 16;
    return mix64(mix64(hi ^ 0x9e3779b97f4a7c15ull) + lo + head);
}

uint64_t set_print(const PrefixSet& s)
{
    uint64_t sum = 0;
    std::vector<SetEntry> scratch;
    for (const SetEntry& e : set_entries(s, scratch))
        sum += set_entry_print(e);
    return set_print_of_sum(sum);
}

std::array<uint64_t, XDPCTL_POL_SET_SLOTS> set_slot_prints(int pset_fd)
{
    std::array<uint64_t, XDPCTL_POL_SET_SLOTS> out{};
    for (uint32_t slot = 0; slot < XDPCTL_POL_SET_SLOTS; slot++) {
        const uint32_t id = slot_map_id(pset_fd, slot);
        UniqueFd fd(id ? bpf_map_get_fd_by_id(id) : -1);
        xdpctl_pfx_line head{};
        uint32_t key = 0;
        if (!fd || bpf_map_lookup_elem(fd.get(), &key, &head) != 0 || head.hdr.magic != XDPCTL_PFX_MAGIC)
            continue;
        out[slot] = uint64_t(head.hdr.set_print[0]) | uint64_t(head.hdr.set_print[1]) << 32;
    }
    return out;
}

void install_set_table(int pset_fd, int psl1_fd, uint32_t slot, const PrefixSet& s, bool sparse)
{
    if (slot >= XDPCTL_POL_SET_SLOTS)
        fail("set table slot {} is out of range", slot);
    std::vector<PrefixEntry4> e4;
    std::vector<PrefixEntry6> e6;
    std::vector<SetEntry> scratch;  // a set left undecoded (a rule command's) whose table is gone
    for (const SetEntry& e : set_entries(s, scratch)) {
        const uint32_t v = e.except ? XDPCTL_PFX_EXCEPTED : 1;
        if (e.prefix.family == Family::v4)
            e4.push_back({to_prefix4(e.prefix), v});
        else
            e6.push_back({to_prefix6(e.prefix), v});
    }
    UniqueFd map;
    PrefixTable t = PrefixTable::build(e4, e6, {.sparse = sparse}, [&](uint64_t lines) -> int {
        if (lines <= kBuildInMapLines)
            return -1;
        map = create_lines_map("xdpctl_pset", lines + patch_room(lines));
        return map.get();
    });
    decltype(e4)().swap(e4);
    decltype(e6)().swap(e6);
    std::vector<uint32_t> l1;
    if (t.sunk()) {
        l1 = t.take_sunk_l1();
    } else {
        const auto* words = reinterpret_cast<const uint32_t*>(t.lines().data());
        l1.assign(words + XDPCTL_PFX4_L1_WORD, words + XDPCTL_PFX4_L1_WORD + XDPCTL_PFX_L1_ENTRIES);
        map = create_lines_map("xdpctl_pset", t.lines().size() + patch_room(t.lines().size()));
        fill_prefix_table_map(map.get(), std::move(t));
    }
    // The print, in the header the datapath never reads.
    xdpctl_pfx_line head{};
    uint32_t key = 0;
    if (bpf_map_lookup_elem(map.get(), &key, &head) != 0)
        fail("cannot read back set {}'s table: {}", s.name, errno_str(errno));
    const uint64_t print = set_print(s);
    head.hdr.set_print[0] = uint32_t(print);
    head.hdr.set_print[1] = uint32_t(print >> 32);
    head.hdr.set_free_line = head.hdr.lines;
    head.hdr.set_flags = sparse ? XDPCTL_PFX_SET_F_SPARSE : 0;
    if (bpf_map_update_elem(map.get(), &key, &head, BPF_ANY) != 0)
        fail("cannot write set {}'s table: {}", s.name, errno_str(errno));
    // Level 1 first: nothing reads the slot yet.
    if (bpf_map_update_elem(psl1_fd, &slot, l1.data(), BPF_ANY) != 0)
        fail("cannot write set {}'s level 1: {}", s.name, errno_str(errno));
    update_slots(pset_fd, {slot}, {uint32_t(map.get())});
}

namespace {

// The new lines of /16 `x` (every entry of the set after the change that bears on it in
// `entries`), the /24s `touched` computed anew, the others' level-2 words kept from the old
// chunk `old_l1` points at (when it is one). The /16's new level-1 word, or nullopt when the
// room ran out.
std::optional<uint32_t> patch_16(int fd, Room& room, bool sparse, uint32_t x, uint32_t old_l1,
                                 const std::vector<SetEntry>& entries, const std::array<bool, 256>& touched)
{
    uint32_t base = XDPCTL_PFX_NONE;
    int base_len = -1;
    std::vector<std::pair<uint32_t, const SetEntry*>> inner;  // /17-/32 inside x, by length
    for (const SetEntry& e : entries) {
        if (e.prefix.family != Family::v4)
            continue;
        const uint32_t a = addr4(e.prefix), len = e.prefix.len;
        if (len <= 16) {
            if ((len == 0 || (a >> (32 - len)) == (x >> (16 - len))) && int(len) > base_len)
                base = leaf(e), base_len = int(len);
        } else if (a >> 16 == x) {
            inner.push_back({len, &e});
        }
    }
    if (inner.empty())
        return base;
    std::stable_sort(inner.begin(), inner.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::array<uint32_t, 256> l2;
    l2.fill(base);
    std::map<uint32_t, std::vector<const SetEntry*>> longer;  // /24 -> its /25-/32, by length
    for (const auto& [len, e] : inner) {
        const uint32_t a = addr4(e->prefix);
        if (len <= 24) {
            const uint32_t y = (a >> 8) & 0xff, n = 1u << (24 - len);
            std::fill(l2.begin() + y, l2.begin() + y + n, leaf(*e));
        } else {
            longer[(a >> 8) & 0xff].push_back(e);
        }
    }
    std::array<uint32_t, 256> words;
    const bool had_chunk = old_l1 & XDPCTL_PFX_REF;
    if (had_chunk) {
        const uint32_t at = (old_l1 & XDPCTL_PFX_CHUNK_MASK) * XDPCTL_PFX_CHUNK_LINES;
        for (uint32_t i = 0; i < XDPCTL_PFX_CHUNK_LINES; i++) {
            const xdpctl_pfx_line l = read_line(fd, at + i);
            std::memcpy(words.data() + i * XDPCTL_PFX_LINE_WORDS, l.word, XDPCTL_PFX_LINE_BYTES);
        }
    }
    for (uint32_t y = 0; y < 256; y++) {
        if (had_chunk && !touched[y])
            continue;  // nothing of this /24 changed: its word (and the lines below it) stay
        auto it = longer.find(y);
        if (it == longer.end()) {
            words[y] = l2[y];
            continue;
        }
        std::array<uint32_t, 256> l3;
        l3.fill(l2[y]);
        for (const SetEntry* e : it->second) {
            const uint32_t b = addr4(e->prefix) & 0xff, n = 1u << (32 - e->prefix.len);
            std::fill(l3.begin() + b, l3.begin() + b + n, leaf(*e));
        }
        if (const std::optional<uint32_t> v = one_leaf(l3)) {
            words[y] = *v;  // as the build settles a /24 (prefix_table.cpp)
            continue;
        }
        std::optional<xdpctl_pfx_line> one = sparse ? sparse_line(l3) : std::nullopt;
        std::optional<uint32_t> at = room.take(one ? 1 : XDPCTL_PFX_CHUNK_LINES);
        if (!at)
            return std::nullopt;
        if (one) {
            write_line(fd, *at, *one);
            words[y] = XDPCTL_PFX_REF | XDPCTL_PFX_SPARSE | *at;
        } else {
            write_chunk(fd, *at, l3);
            words[y] = XDPCTL_PFX_REF | (*at / XDPCTL_PFX_CHUNK_LINES);
        }
    }
    if (const std::optional<uint32_t> v = one_leaf(words))
        return *v;  // one leaf: level 1 holds it, no chunk
    std::optional<uint32_t> at = room.take(XDPCTL_PFX_CHUNK_LINES);
    if (!at)
        return std::nullopt;
    write_chunk(fd, *at, words);
    return XDPCTL_PFX_REF | (*at / XDPCTL_PFX_CHUNK_LINES);
}

UniqueFd slot_table(int pset_fd, uint32_t slot)
{
    const uint32_t id = slot < XDPCTL_POL_SET_SLOTS ? slot_map_id(pset_fd, slot) : 0;
    return UniqueFd(id ? bpf_map_get_fd_by_id(id) : -1);
}

}  // namespace

std::optional<SetPatch> stage_set_patch(int pset_fd, uint32_t slot, const std::vector<Prefix>& changed,
                                        const SetEntriesOf16& entries_of16)
{
    std::map<uint32_t, std::array<bool, 256>> touched;  // /16 -> the /24s the change touches
    for (const Prefix& p : changed) {
        if (p.family != Family::v4 || p.len < 16)
            return std::nullopt;
        const uint32_t a = addr4(p);
        auto [it, _] = touched.try_emplace(a >> 16, std::array<bool, 256>{});
        const uint32_t y = (a >> 8) & 0xff, n = p.len >= 24 ? 1 : 1u << (24 - p.len);
        std::fill(it->second.begin() + y, it->second.begin() + y + n, true);
    }
    UniqueFd fd = slot_table(pset_fd, slot);
    if (!fd || touched.empty())
        return std::nullopt;
    xdpctl_pfx_line head = read_line(fd.get(), XDPCTL_PFX_HDR_LINE);
    if (head.hdr.magic != XDPCTL_PFX_MAGIC || head.hdr.set_free_line == 0)
        return std::nullopt;
    Room room(head.hdr.set_free_line, map_info_of(fd.get(), "a set table's size").max_entries);
    const bool sparse = head.hdr.set_flags & XDPCTL_PFX_SET_F_SPARSE;
    SetPatch patch{.slot = slot, .l1 = {}};
    for (const auto& [x, ys] : touched) {
        const uint32_t word = XDPCTL_PFX4_L1_WORD + x;
        const uint32_t old = read_line(fd.get(), word / XDPCTL_PFX_LINE_WORDS).word[word % XDPCTL_PFX_LINE_WORDS];
        std::optional<uint32_t> now = patch_16(fd.get(), room, sparse, x, old, entries_of16(x), ys);
        if (!now)
            return std::nullopt;  // what it wrote lies past the room taken: nothing reads it
        patch.l1.push_back({x, *now});
    }
    // The room taken, before anything points at it: a command killed after this loses the
    // room, never lines in use.
    head.hdr.set_free_line = room.free();
    write_line(fd.get(), XDPCTL_PFX_HDR_LINE, head);
    return patch;
}

void publish_set_patch(int pset_fd, int psl1_fd, const SetPatch& patch, uint64_t print)
{
    UniqueFd fd = slot_table(pset_fd, patch.slot);
    if (!fd)
        fail("set table slot {} is empty", patch.slot);
    for (const auto& [x, w] : patch.l1) {
        store_word(psl1_fd, uint64_t(patch.slot) * XDPCTL_PFX_L1_ENTRIES * sizeof(uint32_t) + uint64_t(x) * 4, w);
        store_word(fd.get(), (uint64_t(XDPCTL_PFX4_L1_WORD) + x) * 4, w);
    }
    xdpctl_pfx_line head = read_line(fd.get(), XDPCTL_PFX_HDR_LINE);
    head.hdr.set_print[0] = uint32_t(print);
    head.hdr.set_print[1] = uint32_t(print >> 32);
    write_line(fd.get(), XDPCTL_PFX_HDR_LINE, head);
}

}  // namespace xdpctl::policy
