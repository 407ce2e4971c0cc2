#include "policy/policy_maps.h"
#include "policy/table_maps.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>

#include <bpf/bpf.h>

#include "stats/counters.h"
#include "util/background_free.h"
#include "util/error.h"
#include "util/huge_page_allocator.h"
#include "util/percpu_batch.h"
#include "attach/iface_pins.h"
#include "util/map_memory.h"
#include "util/task_pool.h"
#include "policy/grace_keeper.h"
#include "policy/prefix_table.h"
#include "policy/row_prints.h"
#include "policy/table_refill.h"
#include "policy/set_tables.h"
#include "policy/shapes.h"

namespace xdpctl::policy {

namespace {

constexpr uint64_t kNsecPerSec = 1000000000ull;
// What the old generation's slots hold once it is freed: a map of one line. A slot must
// hold a map of the template's flags and size, and batch deletion of ARRAY_OF_MAPS
// elements is not supported (ENOTSUPP, kernel 6.18), while each single delete waits a grace
// period; one batch update with this map frees all of them after one wait.
constexpr const char* kPlaceholderName = "xdpctl_pnone";
// Lines a new table gets beyond its need (and 1/8 more), for later commits to fit in.
constexpr uint64_t kTableHeadroomLines = 1024;
// Rows to write in one element from which the element is written whole (see commit()).
constexpr size_t kWholeRowsElementBytes = size_t(128) << 10;

uint64_t mono_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * kNsecPerSec + uint64_t(ts.tv_nsec);
}

uint32_t bpf_action(ActionKind a)
{
    switch (a) {
    case ActionKind::pass:
        return XDPCTL_ACT_PASS;
    case ActionKind::drop:
        return XDPCTL_ACT_DROP;
    case ActionKind::count:
        return XDPCTL_ACT_COUNT;
    case ActionKind::rate_limit:
        return XDPCTL_ACT_RATE_LIMIT;
    }
    fail("unknown rule action {}", int(a));
}

}  // namespace

Prefix4 to_prefix4(const Prefix& p)
{
    const auto& a = p.addr;
    return {(uint32_t(a[0]) << 24) | (uint32_t(a[1]) << 16) | (uint32_t(a[2]) << 8) | a[3], p.len};
}

Prefix6 to_prefix6(const Prefix& p)
{
    Prefix6 out;
    for (int i = 0; i < 8; i++) {
        out.addr.hi = (out.addr.hi << 8) | p.addr[i];
        out.addr.lo = (out.addr.lo << 8) | p.addr[8 + i];
    }
    out.len = p.len;
    return out;
}

bpf_map_info map_info_of(int fd, const char* what)
{
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_map_get_info_by_fd(fd, &info, &len) != 0)
        fail("cannot read {}: {}", what, errno_str(errno));
    return info;
}

UniqueFd create_lines_map(const char* name, uint64_t lines)
{
    if (lines == 0 || lines > std::numeric_limits<uint32_t>::max())
        fail("a policy table of {} lines cannot be created", lines);
    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE | BPF_F_INNER_MAP);
    int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, name, sizeof(__u32), XDPCTL_PFX_LINE_BYTES,
                            uint32_t(lines), &opts);
    if (fd < 0)
        fail("cannot create the policy table {} ({} MiB): {}", name,
             (lines * XDPCTL_PFX_LINE_BYTES) >> 20, errno_str(errno));
    return UniqueFd(fd);
}

namespace {

// One direction's source or destination classes as a prefix table: value = class + 1, and
// a /0 of each family so that every address finds its class. Of a split field: node + 1.
// `copied` runs once the entries are copied out, before the build (which may free them).
template <typename Copied>
PrefixTable address_prefix_table(const AddrClassTable& v4, const AddrClassTable& v6, TableLayout layout, Copied copied,
                                 const PrefixLineSink& sink = {})
{
    std::vector<PrefixEntry4> e4;
    std::vector<PrefixEntry6> e6;
    bool root4 = false, root6 = false;
    e4.reserve(v4.entries.size() + 1);
    e6.reserve(v6.entries.size() + 1);
    for (const auto& e : v4.entries) {
        e4.push_back({to_prefix4(e.prefix), e.cls + 1});
        root4 |= e.prefix.len == 0;
    }
    for (const auto& e : v6.entries) {
        e6.push_back({to_prefix6(e.prefix), e.cls + 1});
        root6 |= e.prefix.len == 0;
    }
    // A rule's own /0 already carries the class of everything it covers.
    if (!root4)
        e4.push_back({Prefix4{0, 0}, v4.default_class + 1});
    if (!root6)
        e6.push_back({Prefix6{Ip6{0, 0}, 0}, v6.default_class + 1});
    copied();
    return PrefixTable::build(e4, e6,
                              {.sparse = layout != TableLayout::chunks, .sparse16 = layout == TableLayout::sparse16}, sink);
}

// Row r of `rows` into `lines` lines at `dst` (the rest of them zero), leaving alone what
// already holds it (the generation held the rows of two commits ago). Returns the bytes written.
size_t write_row_lines(const RowTable& rows, size_t r, uint32_t lines, __u64* dst)
{
    uint64_t buf[XDPCTL_POL_ROW_MAX_BYTES / sizeof(uint64_t)] = {};
    rows.write_row(r, buf);
    return write_changed(dst, buf, size_t(lines) * XDPCTL_POL_ROW_LINE_WORDS * sizeof(uint64_t));
}

// Rows `dirty` (ascending) of element `e` of the rows map `fd`, written through mappings of
// the pages that hold them only: a mapping of the whole 4 MiB element has the kernel fill
// all of its 1,024 page table entries at mmap and clear them at munmap, where the hypervisor
// tracks page tables (a PVM guest) ~0.3 ms an element for a few rows to write in it; a new
// rule that takes a free rank (rank_gaps.h) changes ~25 rows over ~8 elements.
void write_rows_in_place(int fd, uint64_t e, const RowTable& rows, const std::vector<uint32_t>& dirty,
                         uint32_t row_lines, uint32_t rows_per_elem, uint64_t& written)
{
    const size_t page = size_t(sysconf(_SC_PAGESIZE)), row_bytes = size_t(row_lines) * 64;
    const size_t elem_at = size_t(e) * XDPCTL_POL_ROWS_ELEM_BYTES;
    for (size_t i = 0; i < dirty.size();) {
        // A run of rows whose pages touch: one mapping.
        const size_t lo = size_t(dirty[i] % rows_per_elem) * row_bytes;
        size_t hi = lo + row_bytes, j = i + 1;
        for (; j < dirty.size(); j++) {
            const size_t at = size_t(dirty[j] % rows_per_elem) * row_bytes;
            if (at / page > (hi + page - 1) / page)
                break;
            hi = at + row_bytes;
        }
        const size_t from = lo / page * page, to = (hi + page - 1) / page * page;
        void* m = mmap(nullptr, to - from, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off_t(elem_at + from));
        if (m == MAP_FAILED)
            fail("cannot map the policy rows to write them: {}", errno_str(errno));
        for (size_t k = i; k < j; k++) {
            const size_t at = size_t(dirty[k] % rows_per_elem) * row_bytes - from;
            written += write_row_lines(rows, dirty[k], row_lines, reinterpret_cast<__u64*>(static_cast<char*>(m) + at));
        }
        munmap(m, to - from);
        i = j;
    }
}

// The number of lines of the map with this id, 0 if it is not there.
uint64_t map_lines(int fd)
{
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_map_get_info_by_fd(fd, &info, &len) != 0)
        return 0;
    return info.max_entries;
}

// Elements [from, to) of a rows map just made, written once with zeros (what they hold).
// Where the hypervisor backs the guest's memory as it is first used (a PVM guest, calls
// cheap), the first write into a map element costs ~10x any later one, also a later one
// from another process: ~6.5 ms per 4 MiB element, then ~0.5 ms. The room a new map gets
// past its rows was first written by the commit whose rows grew into it: the first rule
// naming a 1M set, ~25 of its ~60 ms. The commit that makes the map pays it instead,
// beside its own rows (docs/filtering.md, "A rows map's room written when it is made").
void touch_rows_room(int fd, uint32_t from, uint32_t to)
{
    // Zeroed by the kernel a huge page at a time, not a fault per 4 KiB page.
    const std::vector<uint64_t, HugePageAllocator<uint64_t>> zero(XDPCTL_POL_ROWS_ELEM_BYTES / sizeof(uint64_t));
    for (uint32_t k = from; k < to; k++)
        if (bpf_map_update_elem(fd, &k, zero.data(), BPF_ANY) != 0)
            return;  // left for the commit that needs it to write
}

void check_direction(const CompiledDirection& d, int dir, const SlotOf& slots)
{
    const char* name = dir ? "egress" : "ingress";
    if (d.rank_of.size() > XDPCTL_POL_MAX_RULES)
        fail_usage("{} {} rules: at most {} are supported", d.rank_of.size(), name, XDPCTL_POL_MAX_RULES);
    if (d.n_rules > XDPCTL_POL_MAX_RANKS || d.ranked.size() != d.n_rules)
        fail("the compiled {} rules take {} ranks, over {}", name, d.n_rules, XDPCTL_POL_MAX_RANKS);
    if (d.n_rules == 0)
        return;
    if (d.agg_words > XDPCTL_POL_MAX_AGG || d.row_words() == 0 || d.rows.words != d.words ||
        d.rows.agg_words != d.agg_words ||
        !d.rows.well_formed() ||
        d.row_words() * sizeof(uint64_t) > XDPCTL_POL_ROW_MAX_BYTES)
        fail("the compiled {} rows are malformed", name);
    if (d.sport.size() != XDPCTL_POL_PORTS || d.dport.size() != XDPCTL_POL_PORTS ||
        d.l4.size() != XDPCTL_POL_L4_ENTRIES || d.vlan.size() != XDPCTL_POL_VLAN_ENTRIES ||
        d.iif.size() != XDPCTL_POL_IIF_ENTRIES)
        fail("the compiled {} class tables have the wrong sizes", name);
    for (const RuleRecord& r : d.ranked) {
        if (r.id == 0)
            continue;  // a free rank
        auto it = slots.find(r.id);
        if (it == slots.end())
            fail("rule {} has no counter slot", r.id);
        if (it->second >= XDPCTL_POL_COUNTER_SLOTS)
            fail("rule {}: counter slot {} is out of range", r.id, it->second);
        // The bucket counts nanotokens in a signed 64-bit word.
        if (r.action == ActionKind::rate_limit &&
            (r.rate_pps == 0 || r.burst == 0 || r.burst > kMaxBurst))
            fail_usage("rule {}: a rate limit needs a rate above 0 and a burst of 1 to {} packets", r.id,
                       kMaxBurst);
    }
    if (d.edge && (d.n_rules > XDPCTL_POL_RULE_RANKS || !slots.count(d.edge->rec.id) ||
                   slots.at(d.edge->rec.id) >= XDPCTL_POL_COUNTER_SLOTS))
        fail("the {} edge rule {} has no rank of its own or no counter slot", name, d.edge->rec.id);
}

}  // namespace

// The inner map's id in `slot` of an ARRAY_OF_MAPS, 0 for an empty slot.
uint32_t slot_map_id(int outer_fd, uint32_t slot)
{
    uint32_t id = 0;
    if (bpf_map_lookup_elem(outer_fd, &slot, &id) != 0) {
        if (errno == ENOENT)
            return 0;
        fail("cannot read the policy table slot {}: {}", slot, errno_str(errno));
    }
    return id;
}

bool is_placeholder(uint32_t map_id)
{
    UniqueFd fd(bpf_map_get_fd_by_id(map_id));
    if (!fd)
        return false;
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_map_get_info_by_fd(fd.get(), &info, &len) != 0)
        return false;
    return std::strcmp(info.name, kPlaceholderName) == 0;
}

void update_slots(int outer_fd, std::vector<uint32_t> keys, std::vector<uint32_t> fds)
{
    if (keys.empty())
        return;
    __u32 count = uint32_t(keys.size());
    if (bpf_map_update_batch(outer_fd, keys.data(), fds.data(), &count, nullptr) != 0)
        fail("cannot install the policy tables: {}", errno_str(errno));
}

void free_slots(int outer_fd, const std::vector<uint32_t>& keys)
{
    if (keys.empty())
        return;
    UniqueFd placeholder = create_lines_map(kPlaceholderName, 1);
    update_slots(outer_fd, keys, std::vector<uint32_t>(keys.size(), uint32_t(placeholder.get())));
}

namespace {

uint32_t map_id_of(int fd)
{
    return map_info_of(fd, "a policy table's id").id;
}

// The rows map of generation `gen`, when it has an element past its rows for the record of
// what the generation holds (row_prints.h); maps of one element have none.
UniqueFd record_map(int rows_outer, uint32_t gen)
{
    const uint32_t id = slot_map_id(rows_outer, gen);
    UniqueFd fd(id ? bpf_map_get_fd_by_id(id) : -1);
    if (!fd || map_lines(fd.get()) < 2)
        return {};
    return fd;
}

}  // namespace

const MappedMap& PolicyMaps::record_view(int fd, size_t bytes) const
{
    const uint32_t id = map_id_of(fd);
    if (record_ && record_map_id_ == id && record_->as<xdpctl_pol_row_line>().size_bytes() >= bytes &&
        record_->as<xdpctl_pol_row_line>().size_bytes() >= RowPrintArea::recorded_bytes(record_->as<xdpctl_pol_row_line>()[0]))
        return *record_;
    record_.reset();
    const uint32_t last = uint32_t(map_lines(fd) - 1);
    {
        const MappedMap head(fd, last, 1, sizeof(xdpctl_pol_row_line));
        bytes = std::max(bytes, RowPrintArea::recorded_bytes(head.as<xdpctl_pol_row_line>()[0]));
    }
    // With room for a record some rows longer: the one this commit writes is mostly about
    // as long as the one it replaces.
    record_ = std::make_unique<MappedMap>(fd, last, 1, bytes + (size_t(64) << 10));
    record_map_id_ = id;
    return *record_;
}

namespace {

// The fields no rule of `cd` names, as dir_hdr.decide's skip bits (abi:
// XDPCTL_POL_DECIDE_SKIP_SHIFT): those whose base row (every row of the field holds it)
// already holds every rule. Never L4.
uint32_t unnamed_fields(const CompiledDirection& cd)
{
    uint32_t out = 0;
    const RowTable& rt = cd.rows;
    // The ranks that hold a rule (not the free ones between them, rank_gaps.h).
    std::vector<uint64_t> want(cd.words);
    for (uint32_t rank = 0; rank < cd.ranked.size() && rank / 64 < cd.words; rank++)
        if (cd.ranked[rank].id)
            want[rank / 64] |= uint64_t(1) << (rank % 64);
    for (int f = 0; f < kFieldCount; f++) {
        const std::vector<uint64_t>& base = rt.base[f];
        if (!(XDPCTL_POL_SKIP_FIELDS & (1u << f)) || base.size() != rt.row_words() || rt.words != cd.words)
            continue;
        const uint64_t* bits = base.data() + 2 * rt.agg_words;
        bool all = true;
        for (uint32_t w = 0; w < cd.words && all; w++)
            all = (bits[w] & want[w]) == want[w];
        if (all)
            out |= 1u << f;
    }
    return out;
}

// Element `gd` of xdpctl_panc (abi: XDPCTL_POL_ANC_*): the rules with their records, the
// fields' bases, the index and the lists. The element (~2.5 MiB) is read with one lookup,
// changed in memory where it differs and written back with one update when anything did: the
// kernel copies it in ~0.2 ms each way, where comparing it through a mapping cost ~1.5 ms at
// 10,000 rules (~3 us a page read where the hypervisor tracks page tables: a PVM guest).
// `rules`: each with the record of its rank.
// `reserved`: memory for the element (PolicyMaps::reserve_anchor_buffer), or null.
void write_anchors(int fd, uint32_t gd, const std::vector<xdpctl_pol_small_rule>& rules, const AnchorLists& lists,
                   char* reserved)
{
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_map_get_info_by_fd(fd, &info, &len) != 0 || info.value_size != XDPCTL_POL_ANC_BYTES)
        fail("the policy map xdpctl_panc has values of {} bytes, expected {}", info.value_size, XDPCTL_POL_ANC_BYTES);
    std::unique_ptr<char[]> own;
    char* const e = reserved ? reserved : (own.reset(new char[XDPCTL_POL_ANC_BYTES]), own.get());
    if (bpf_map_lookup_elem(fd, &gd, e) != 0)
        fail("cannot read the policy's anchor lists: {}", errno_str(errno));
    bool changed = false;
    auto put = [&](size_t off, const void* from, size_t n) {
        if (n && std::memcmp(e + off, from, n) != 0) {
            std::memcpy(e + off, from, n);
            changed = true;
        }
    };
    put(XDPCTL_POL_ANC_RULES_OFF, rules.data(), rules.size() * sizeof(xdpctl_pol_small_rule));
    put(XDPCTL_POL_ANC_BASE_OFF, lists.base, sizeof(lists.base));
    put(XDPCTL_POL_ANC_IDX_OFF, lists.idx.data(), lists.idx.size() * sizeof(uint32_t));
    put(XDPCTL_POL_ANC_LIST_OFF, lists.ranks.data(), lists.ranks.size() * sizeof(uint16_t));
    if (changed && bpf_map_update_elem(fd, &gd, e, BPF_ANY) != 0)
        fail("cannot write the policy's anchor lists: {}", errno_str(errno));
}

// The print of what write_anchors() writes (row_prints.h: kFixedAnchors).
FixedPrint anchors_print(const std::vector<xdpctl_pol_small_rule>& rules, const AnchorLists& lists)
{
    FixedPrinter p(kFixedAnchors);
    p.add(rules.data(), rules.size() * sizeof(xdpctl_pol_small_rule)).add(lists.base, sizeof(lists.base));
    p.add(lists.idx.data(), lists.idx.size() * sizeof(uint32_t)).add(lists.ranks.data(), lists.ranks.size() * sizeof(uint16_t));
    return p.done();
}

}  // namespace

PolicyMapFds policy_map_fds_pinned(const std::string& dir)
{
    auto open = [&](const char* name) { return open_pinned_map(dir, name, "policy"); };
    return PolicyMapFds{open("xdpctl_pctl"),  open("xdpctl_phdr"), open("xdpctl_pport"),
                        open("xdpctl_pl4"),   open("xdpctl_pvlan"), open("xdpctl_piif"),
                        open("xdpctl_prule"), open("xdpctl_rctr"), open("xdpctl_rrate"),
                        open("xdpctl_ptabs"), open("xdpctl_prows"),
                        open("xdpctl_prows_small"), open("xdpctl_pl1"),
                        xdpctl::open_pinned(dir + "/xdpctl_psmall"),
                        xdpctl::open_pinned(dir + "/xdpctl_pdecide"),
                        xdpctl::open_pinned(dir + "/xdpctl_pset"),
                        xdpctl::open_pinned(dir + "/xdpctl_psl1"),
                        xdpctl::open_pinned(dir + "/xdpctl_psplit"),
                        xdpctl::open_pinned(dir + "/xdpctl_panc"),
                        xdpctl::open_pinned(dir + "/xdpctl_rpurse")};
}

namespace {
// Every policy map but xdpctl_phdr holds its generations one after the other, in equal parts.
constexpr MappedMap::Parts kByGen{XDPCTL_POL_GENS};
}  // namespace

PolicyMaps::PolicyMaps(PolicyMapFds fds)
    : fds_(std::move(fds)),
      hdr_(std::make_unique<MappedMap>(fds_.hdr.get())),
      // The others by generation, where a command reads or writes one (MappedMap::Parts).
      port_(std::make_unique<MappedMap>(fds_.port.get(), kByGen)),
      l4_(std::make_unique<MappedMap>(fds_.l4.get(), kByGen)),
      vlan_(std::make_unique<MappedMap>(fds_.vlan.get(), kByGen)),
      iif_(std::make_unique<MappedMap>(fds_.iif.get(), kByGen)),
      rules_(std::make_unique<MappedMap>(fds_.rules.get(), kByGen)),
      rows_small_(std::make_unique<MappedMap>(fds_.rows_small.get(), kByGen)),
      l1_(std::make_unique<MappedMap>(fds_.l1.get(), kByGen)),
      small_(fds_.small ? std::make_unique<MappedMap>(fds_.small.get(), kByGen) : nullptr),
      decide_(fds_.decide ? std::make_unique<MappedMap>(fds_.decide.get(), kByGen) : nullptr),
      split_(fds_.split ? std::make_unique<MappedMap>(fds_.split.get(), kByGen) : nullptr)
{
    // The layout is compiled into both sides; a map of another size is another version.
    auto expect = [](const MappedMap& m, uint32_t value_size, uint64_t entries, const char* name) {
        if (m.value_size() != value_size || m.entries() != entries)
            fail("the policy map {} has {} entries of {} bytes, expected {} of {}: pinned by another "
                 "xdpctl version?",
                 name, m.entries(), m.value_size(), entries, value_size);
    };
    expect(*hdr_, sizeof(xdpctl_pol_hdr), XDPCTL_POL_GENS, "xdpctl_phdr");
    expect(*port_, sizeof(xdpctl_pol_cls_line), uint64_t(XDPCTL_POL_GENS) * XDPCTL_POL_DIRS * 2 * XDPCTL_POL_PORT_LINES,
           "xdpctl_pport");
    expect(*l4_, sizeof(xdpctl_pol_cls_line), uint64_t(XDPCTL_POL_GENS) * XDPCTL_POL_DIRS * XDPCTL_POL_L4_LINES,
           "xdpctl_pl4");
    expect(*vlan_, sizeof(xdpctl_pol_cls_line), uint64_t(XDPCTL_POL_GENS) * XDPCTL_POL_DIRS * XDPCTL_POL_VLAN_LINES,
           "xdpctl_pvlan");
    expect(*iif_, sizeof(xdpctl_pol_cls_line), uint64_t(XDPCTL_POL_GENS) * XDPCTL_POL_DIRS * XDPCTL_POL_IIF_LINES,
           "xdpctl_piif");
    expect(*rules_, sizeof(xdpctl_rule_rec), uint64_t(XDPCTL_POL_GENS) * XDPCTL_POL_DIRS * XDPCTL_POL_MAX_RANKS,
           "xdpctl_prule");
    if (small_)
        expect(*small_, sizeof(xdpctl_pol_small), uint64_t(XDPCTL_POL_GENS) * XDPCTL_POL_DIRS, "xdpctl_psmall");
    if (decide_)
        expect(*decide_, sizeof(xdpctl_pol_decide_line),
               uint64_t(XDPCTL_POL_GENS) * XDPCTL_POL_DIRS * XDPCTL_POL_DECIDE_LINES, "xdpctl_pdecide");
    if (split_)
        expect(*split_, sizeof(xdpctl_pol_split), uint64_t(XDPCTL_POL_GENS) * XDPCTL_POL_TABS_PER_GEN, "xdpctl_psplit");
}

PolicyMaps::~PolicyMaps() = default;
PolicyMaps::PolicyMaps(PolicyMaps&&) noexcept = default;

namespace {

xdpctl_pol_ctl read_ctl_map(int ctl_fd)
{
    __u32 key = 0;
    xdpctl_pol_ctl ctl{};
    if (bpf_map_lookup_elem(ctl_fd, &key, &ctl) != 0)
        fail("cannot read the policy control map: {}", errno_str(errno));
    return ctl;
}

void wait_grace_period(int rows_outer, uint32_t gen)
{
    // An update of an ARRAY_OF_MAPS element returns after synchronize_rcu(), whatever it
    // writes: putting the active generation's rows map back into its own slot waits for
    // every program that started before, and changes nothing.
    const uint32_t id = slot_map_id(rows_outer, gen);
    UniqueFd fd(id ? bpf_map_get_fd_by_id(id) : -1);
    if (!fd)
        fail("the active policy generation has no rows table");
    update_slots(rows_outer, {gen}, {uint32_t(fd.get())});
}

// PolicyMaps::settle() on the three maps it reads and writes.
void settle_maps(int ctl_fd, int rows_outer, std::span<xdpctl_pol_hdr> hdrs)
{
    const xdpctl_pol_ctl ctl = read_ctl_map(ctl_fd);
    const uint32_t active = ctl.gen & 1;
    if (!ctl.installed || is_settled(hdrs[active].settled, ctl.commits))
        return;
    // A keeper the last command left (grace_keeper.h) started the wait before this one
    // could: when it has ended, its mark is there. The writer lock keeps ctl as read.
    wait_for_grace_keepers();
    if (is_settled(__atomic_load_n(&hdrs[active].settled, __ATOMIC_SEQ_CST), ctl.commits))
        return;
    wait_grace_period(rows_outer, active);
    hdrs[active].settled = 1;
}

}  // namespace

void settle_pinned(const std::string& dir)
{
    UniqueFd ctl = open_pinned_map(dir, "xdpctl_pctl", "policy");
    UniqueFd hdr = open_pinned_map(dir, "xdpctl_phdr", "policy");
    UniqueFd rows = open_pinned_map(dir, "xdpctl_prows", "policy");
    const MappedMap hdrs(hdr.get());
    settle_maps(ctl.get(), rows.get(), hdrs.as<xdpctl_pol_hdr>());
}

xdpctl_pol_ctl PolicyMaps::read_ctl() const
{
    return read_ctl_map(fds_.ctl.get());
}

uint32_t PolicyMaps::active_gen() const
{
    return read_ctl().gen & 1;
}

bool PolicyMaps::installed() const
{
    return read_ctl().installed != 0;
}

void PolicyMaps::reserve_anchor_buffer()
{
    if (!anchor_buffer_)
        anchor_buffer_.reset(new char[XDPCTL_POL_ANC_BYTES]);
}

uint64_t PolicyMaps::commits() const
{
    return read_ctl().commits;
}

void PolicyMaps::grace_period()
{
    wait_grace_period(fds_.rows.get(), active_gen());
}

void PolicyMaps::settle()
{
    settle_maps(fds_.ctl.get(), fds_.rows.get(), hdr_->as<xdpctl_pol_hdr>());
}

int PolicyMaps::settle_after_exit()
{
    const xdpctl_pol_ctl ctl = read_ctl();
    const uint32_t active = ctl.gen & 1;
    if (!ctl.installed || is_settled(hdr_->as<xdpctl_pol_hdr>()[active].settled, ctl.commits))
        return -1;
    const uint32_t id = slot_map_id(fds_.rows.get(), active);
    UniqueFd inner(id ? bpf_map_get_fd_by_id(id) : -1);
    if (!inner)
        return -1;
    // A mapping of the headers of its own, never unmapped: the keeper writes through it
    // after this process's destructors (hdr_'s among them) may have run.
    const size_t bytes = (XDPCTL_POL_GENS * sizeof(xdpctl_pol_hdr) + 4095) & ~size_t(4095);
    void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fds_.hdr.get(), 0);
    if (m == MAP_FAILED)
        return -1;
    auto* hdrs = static_cast<xdpctl_pol_hdr*>(m);
    const int pid = start_grace_keeper(fds_.rows.get(), inner.get(), active, ctl.commits, &hdrs[active].settled);
    if (pid < 0)
        munmap(m, bytes);
    return pid;
}

void PolicyMaps::held(HeldTables& tables, ClassLayout (&classes)[XDPCTL_POL_DIRS]) const
{
    const xdpctl_pol_ctl ctl = read_ctl();
    const uint32_t target = (ctl.gen & 1) ^ 1;
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++) {
        classes[d] = {};
        for (auto& t : tables[d])
            t.reset();
    }
    UniqueFd fd = record_map(fds_.rows.get(), target);
    if (!ctl.installed || !fd)
        return;
    const MappedMap& view = record_view(fd.get());
    const RowPlace none[XDPCTL_POL_DIRS] = {};
    const RowPrintArea record(view.as<xdpctl_pol_row_line>(), ctl.commits - 1, none);
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++)
        for (uint32_t dst = 0; dst < 2; dst++)
            if (const auto& t = record.tables()[d][dst];
                t && slot_map_id(fds_.tabs.get(), XDPCTL_POL_TAB_ADDR(target, d, dst)) == t->map_id)
                tables[d][dst] = t;
    // The classes: each field's rows, in the order of their row_base, up to the next field's
    // (the last field's up to the last row). The header was written by the same commit.
    const xdpctl_pol_dir_hdr* dirs = hdr_->as<xdpctl_pol_hdr>()[target].dir;
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++) {
        const std::vector<RowPrint>& prints = record.recorded(d);
        const xdpctl_pol_dir_hdr& dh = dirs[d];
        if (!dh.n_rules || prints.empty() || dh.rows_small)
            continue;
        ClassLayout& l = classes[d];
        for (int f = 0; f < kFieldCount; f++) {
            uint32_t end = uint32_t(prints.size());
            for (int o = 0; o < kFieldCount; o++)
                if (dh.row_base[o] > dh.row_base[f])
                    end = std::min(end, dh.row_base[o]);
            if (dh.row_base[f] > end)
                return;  // not a header of these rows
            l.field[f].assign(prints.begin() + dh.row_base[f], prints.begin() + end);
        }
        l.valid = true;
        l.words = dh.words;
        l.agg_words = dh.agg_words;
        l.n_rules = dh.n_rules;
        // Written by the same commit as the record (which it clears first): the rule at
        // each rank there.
        const auto recs = rules_->part(target).as<xdpctl_rule_rec>().subspan(size_t(XDPCTL_POL_GD(target, d)) * XDPCTL_POL_MAX_RANKS,
                                                                std::min<uint32_t>(dh.n_rules, XDPCTL_POL_MAX_RANKS));
        l.ids.resize(recs.size());
        for (size_t r = 0; r < recs.size(); r++)
            l.ids[r] = recs[r].id;
    }
}

namespace {

// prepare_commit(), emptying `owner`'s class tables as they are copied when it is given.
// Tables that `held` says the generation holds already are not built (PreparedCommit::kept).
PreparedCommit prepare(const CompiledPolicy& c, TableLayout layout, CompiledPolicy* owner, bool build_maps,
                       const HeldTables* held = nullptr)
{
    PreparedCommit p;
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++) {
        const CompiledDirection& cd = c.dir[d];
        if (cd.n_rules == 0)
            continue;
        for (uint32_t dst = 0; dst < 2; dst++) {
            const AddrClassTable& v4 = dst ? cd.dst_v4 : cd.src_v4;
            const AddrClassTable& v6 = dst ? cd.dst_v6 : cd.src_v6;
            // A split field without rule prefixes: node 0 for every address, no table.
            if (v4.split() && v4.entries.empty() && v6.entries.empty())
                continue;
            // No rule names an address here: every IP packet has one class, no table needed.
            if (!v4.split() && v4.entries.empty() && v6.entries.empty() && v4.default_class == v6.default_class) {
                p.const_class[d][dst] = v4.default_class + 1;
                continue;
            }
            p.print[d][dst] = table_print(v4, v6, layout);
            if (held && (*held)[d][dst] && (*held)[d][dst]->print == p.print[d][dst]) {
                p.kept[d][dst] = (*held)[d][dst];
                if (owner) {  // not needed, as a built table's are not
                    CompiledDirection& od = owner->dir[d];
                    decltype(v4.entries)().swap(dst ? od.dst_v4.entries : od.src_v4.entries);
                    decltype(v6.entries)().swap(dst ? od.dst_v6.entries : od.src_v6.entries);
                }
                continue;
            }
            p.addr[d][dst] = address_prefix_table(v4, v6, layout, [&] {
                if (!owner)
                    return;
                CompiledDirection& od = owner->dir[d];
                decltype(v4.entries)().swap(dst ? od.dst_v4.entries : od.src_v4.entries);
                decltype(v6.entries)().swap(dst ? od.dst_v6.entries : od.src_v6.entries);
            }, [&](uint64_t lines) -> int {
                // A table the commit would not keep goes into a new map of exactly its size
                // anyway (PolicyMaps::commit): build it there.
                if (!build_maps || lines <= kDefaultKeepTableLines)
                    return -1;
                p.built[d][dst] = create_lines_map("xdpctl_pfx", lines);
                return p.built[d][dst].get();
            });
            if (p.built[d][dst]) {
                p.built_l1[d][dst] = p.addr[d][dst]->take_sunk_l1();
                p.built_bytes[d][dst] = p.addr[d][dst]->stats().bytes;
                p.addr[d][dst].reset();
            }
        }
    }
    return p;
}

}  // namespace

PreparedCommit prepare_commit(const CompiledPolicy& c, TableLayout layout)
{
    return prepare(c, layout, nullptr, false);
}

PreparedCommit take_address_tables(CompiledPolicy& c, TableLayout layout, const HeldTables* held)
{
    return prepare(c, layout, &c, true, held);
}

namespace {

// The split address tables of `cd` (source, destination), null where the field is not split.
std::array<const AddrClassTable*, 2> split_tables(const CompiledDirection& cd)
{
    return {cd.n_rules && cd.src_v4.split() ? &cd.src_v4 : nullptr,
            cd.n_rules && cd.dst_v4.split() ? &cd.dst_v4 : nullptr};
}

// The set slot and field (0 src, 1 dst) of a written direction's edge rule, if it has one.
std::optional<std::pair<uint32_t, uint32_t>> edge_set_of(const xdpctl_pol_dir_hdr& dh)
{
    if (!dh.n_rules || !(dh.decide & XDPCTL_POL_DECIDE_EDGE))
        return std::nullopt;
    return std::pair{(dh.decide >> XDPCTL_POL_DECIDE_EDGE_SLOT_SHIFT) & (XDPCTL_POL_SET_SLOTS - 1),
                     dh.decide & XDPCTL_POL_DECIDE_EDGE_DST ? 1u : 0u};
}

}  // namespace

std::vector<bool> PolicyMaps::referenced_set_slots(bool active_only) const
{
    std::vector<bool> out(XDPCTL_POL_SET_SLOTS);
    const xdpctl_pol_ctl ctl = read_ctl();
    if (!split_ || !ctl.installed)
        return out;
    const auto hdrs = hdr_->as<xdpctl_pol_hdr>();
    const auto split = split_->as<xdpctl_pol_split>();
    for (uint32_t g = 0; g < XDPCTL_POL_GENS; g++) {
        if (active_only && g != (ctl.gen & 1))
            continue;
        for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++)
            for (uint32_t dst = 0; dst < 2; dst++) {
                const xdpctl_pol_dir_hdr& dh = hdrs[g].dir[d];
                if (!dh.n_rules || !(dh.decide >> (XDPCTL_POL_DECIDE_SPLIT_SHIFT + dst) & 1))
                    continue;
                // Mapped only where a field is split: 129 pages a generation, each mapped
                // and unmapped through the hypervisor on a PVM guest (calls cheap, no microcode).
                split_->part(g);
                const xdpctl_pol_split& sp = split[XDPCTL_POL_TAB_ADDR(g, d, dst)];
                for (uint32_t i = 0; i < std::min<uint32_t>(sp.n_sets, XDPCTL_POL_SPLIT_SETS); i++)
                    if (sp.slot[i] < XDPCTL_POL_SET_SLOTS)
                        out[sp.slot[i]] = true;
            }
        for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++)
            if (const auto edge = edge_set_of(hdrs[g].dir[d]))
                out[edge->first] = true;
    }
    return out;
}

void PolicyMaps::count_change_in_place()
{
    const xdpctl_pol_ctl ctl = read_ctl();
    std::atomic_thread_fence(std::memory_order_seq_cst);  // the table's stores before the count
    const xdpctl_pol_ctl next{ctl.gen, ctl.installed, ctl.commits + 1};
    __u32 zero = 0;
    if (bpf_map_update_elem(fds_.ctl.get(), &zero, &next, BPF_ANY) != 0)
        fail("cannot count the change in place: {}", errno_str(errno));
    // A set's own table is all that changed: the rows and address tables that each
    // generation's record describes are as they were. Its stamp moves with the count, or the
    // next two commits would not believe it and rewrite every row and address table (~60 ms
    // of a `rule add` beside a 1M set in use, calls cheap: no microcode). A process killed
    // before this leaves records that are not believed: slower, never wrong.
    const uint64_t stamp[2] = {ctl.commits - 1, ctl.commits};  // the target's, the active's
    const uint32_t active = ctl.gen & 1;
    for (uint32_t g : {active ^ 1, active}) {
        if (UniqueFd fd = record_map(fds_.rows.get(), g)) {
            MappedMap head(fd.get(), uint32_t(map_lines(fd.get()) - 1), 1, sizeof(xdpctl_pol_row_line));
            const uint64_t was = stamp[g == active];
            RowPrintArea::restamp(head.as<xdpctl_pol_row_line>()[0], was, was + 1);
        }
    }
}

std::optional<uint32_t> PolicyMaps::set_patch_slot(uint64_t print,
                                                   const std::vector<std::pair<uint32_t, uint32_t>>& fields) const
{
    const xdpctl_pol_ctl ctl = read_ctl();
    if (!can_split() || !ctl.installed)
        return std::nullopt;
    const std::array<uint64_t, XDPCTL_POL_SET_SLOTS> held = set_slot_prints(fds_.set_tabs.get());
    if (std::count(held.begin(), held.end(), print) != 1)
        return std::nullopt;  // none, or two sets of the same entries: which is this one's?
    const uint32_t slot = uint32_t(std::find(held.begin(), held.end(), print) - held.begin());
    const uint32_t g = ctl.gen & 1;
    const xdpctl_pol_hdr& h = hdr_->as<xdpctl_pol_hdr>()[g];
    const auto split = split_->part(g).as<xdpctl_pol_split>();
    for (const auto& [d, dst] : fields) {
        if (d >= XDPCTL_POL_DIRS || dst > 1)
            return std::nullopt;
        const xdpctl_pol_dir_hdr& dh = h.dir[d];
        if (const auto edge = edge_set_of(dh); edge && *edge == std::pair{slot, dst})
            continue;  // the field's edge rule names the set: its table is all it reads
        if (!dh.n_rules || !(dh.decide >> (XDPCTL_POL_DECIDE_SPLIT_SHIFT + dst) & 1))
            return std::nullopt;
        const xdpctl_pol_split& sp = split[XDPCTL_POL_TAB_ADDR(g, d, dst)];
        const uint32_t n = std::min<uint32_t>(sp.n_sets, XDPCTL_POL_SPLIT_SETS);
        if (std::find(sp.slot, sp.slot + n, slot) == sp.slot + n)
            return std::nullopt;
    }
    return slot;
}

bool PolicyMaps::place_sets(const CompiledPolicy& c, const std::map<std::string, PrefixSet>& sets,
                            PreparedCommit& prepared, bool sparse, const std::map<std::string, uint64_t>& prints)
{
    std::vector<std::string> named;  // what the split fields name: these must have slots
    for (const CompiledDirection& cd : c.dir)
        for (const AddrClassTable* t : split_tables(cd))
            for (const std::string& n : t ? t->sets : std::vector<std::string>{})
                if (std::find(named.begin(), named.end(), n) == named.end())
                    named.push_back(n);
    for (const CompiledDirection& cd : c.dir)
        if (cd.edge && std::find(named.begin(), named.end(), cd.edge->set) == named.end())
            named.push_back(cd.edge->set);
    if (!can_split())
        return named.empty();
    const std::vector<bool> busy = referenced_set_slots();
    const std::array<uint64_t, XDPCTL_POL_SET_SLOTS> held = set_slot_prints(fds_.set_tabs.get());
    // The named sets first, then the others, as long as slots last.
    std::vector<std::pair<const PrefixSet*, uint64_t>> want;
    for (const std::string& n : named)
        want.push_back({&sets.at(n), 0});
    for (const auto& [n, set] : sets)
        if (std::find(named.begin(), named.end(), n) == named.end())
            want.push_back({&set, 0});
    std::vector<bool> used(XDPCTL_POL_SET_SLOTS);
    for (auto& [set, print] : want) {
        auto given = prints.find(set->name);
        print = given != prints.end() ? given->second : set_print(*set);
        for (uint32_t slot = 0; slot < XDPCTL_POL_SET_SLOTS; slot++)
            if (held[slot] == print && !used[slot]) {
                prepared.set_slot[set->name] = slot;
                used[slot] = true;
                break;
            }
    }
    // Slots no generation refers to and no wanted set holds: free for building, and freed
    // (one grace period) when nothing is built into them, so that a set gone or changed does
    // not keep its table.
    std::vector<uint32_t> spare;
    for (uint32_t slot = 0; slot < XDPCTL_POL_SET_SLOTS; slot++)
        if (!busy[slot] && !used[slot])
            spare.push_back(slot);
    for (size_t i = 0; i < want.size(); i++) {
        const PrefixSet& set = *want[i].first;
        if (prepared.set_slot.count(set.name))
            continue;
        if (spare.empty()) {
            if (i < named.size())
                return false;
            break;
        }
        const uint32_t slot = spare.front();
        spare.erase(spare.begin());
        install_set_table(fds_.set_tabs.get(), fds_.set_l1.get(), slot, set, sparse);
        prepared.set_slot[set.name] = slot;
        prepared.sets_built++;
    }
    std::vector<uint32_t> stale;
    for (uint32_t slot : spare)
        if (held[slot])
            stale.push_back(slot);
    free_slots(fds_.set_tabs.get(), stale);
    return true;
}

void PolicyMaps::each_active_direction(const std::function<void(uint32_t, const xdpctl_pol_dir_hdr&,
                                                                std::span<const xdpctl_rule_rec>, const xdpctl_rule_rec*)>& fn) const
{
    const xdpctl_pol_ctl ctl = read_ctl();
    if (!ctl.installed)
        return;
    const uint32_t gen = ctl.gen & 1;
    const xdpctl_pol_hdr& h = hdr_->as<xdpctl_pol_hdr>()[gen];
    auto recs = rules_->part(gen).as<xdpctl_rule_rec>();
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++) {
        const size_t at = XDPCTL_POL_GD(gen, d) * size_t(XDPCTL_POL_MAX_RANKS);
        fn(d, h.dir[d], recs.subspan(at, std::min<uint32_t>(h.dir[d].n_rules, XDPCTL_POL_MAX_RANKS)),
           edge_set_of(h.dir[d]) ? &recs[at + XDPCTL_POL_EDGE_RANK] : nullptr);
    }
}

SlotOf PolicyMaps::active_slots() const
{
    SlotOf out;
    out.reserve(XDPCTL_POL_MAX_RULES);
    auto take = [&](const xdpctl_rule_rec& r) {
        if (r.id == 0)
            return;  // a free rank (rank_gaps.h)
        if (r.ctr_slot >= XDPCTL_POL_COUNTER_SLOTS)
            fail("the active policy's record of rule {} names counter slot {}, past the table", r.id, r.ctr_slot);
        out.emplace(r.id, r.ctr_slot);
    };
    each_active_direction([&](uint32_t, const xdpctl_pol_dir_hdr&, std::span<const xdpctl_rule_rec> recs,
                              const xdpctl_rule_rec* edge) {
        for (const xdpctl_rule_rec& r : recs)
            take(r);
        if (edge)
            take(*edge);
    });
    return out;
}

RankHints PolicyMaps::active_ranks() const
{
    RankHints hints;
    each_active_direction([&](uint32_t d, const xdpctl_pol_dir_hdr& dh, std::span<const xdpctl_rule_rec> recs,
                              const xdpctl_rule_rec*) {
        if (recs.empty())
            return;
        hints.dir[d].words = dh.words;
        hints.dir[d].ids.resize(recs.size());
        for (size_t rank = 0; rank < recs.size(); rank++)
            hints.dir[d].ids[rank] = recs[rank].id;
    });
    return hints;
}

bool PolicyMaps::decides_small(const CompiledDirection& cd) const
{
    return small_ && decide_small_ && cd.small;
}

bool PolicyMaps::decides_by_field(const CompiledDirection& cd) const
{
    const int f = cd.decide_field;
    return decide_ && decide_field_ && f >= 0 && cd.n_classes[f] <= XDPCTL_POL_DECIDE_CLASSES;
}

DirAnchorLists PolicyMaps::prepare_anchors(const CompiledPolicy& c) const
{
    DirAnchorLists out;
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++) {
        const CompiledDirection& cd = c.dir[d];
        if (cd.n_rules && fds_.anc && decide_anchors_ && !decides_small(cd) && !decides_by_field(cd))
            out[d] = anchor_lists(cd);
    }
    return out;
}

void PolicyMaps::commit(const CompiledPolicy& c, PreparedCommit prepared,
                        const SlotOf& slot_of)
{
    const uint64_t t0 = mono_ns();
    times_ = {};
    for (int d = 0; d < XDPCTL_POL_DIRS; d++)
        check_direction(c.dir[d], d, slot_of);
    if (c.default_action != ActionKind::pass && c.default_action != ActionKind::drop)
        fail_usage("the default action is pass or drop");

    const xdpctl_pol_ctl ctl = read_ctl();
    const uint32_t old = ctl.gen & 1, target = old ^ 1;
    const int tabs = fds_.tabs.get();
    auto hdrs = hdr_->as<xdpctl_pol_hdr>();

    // The target generation is free once the packets still on it are done: the commit that
    // left it waited for them if it freed tables, else the wait is here (see the end).
    settle();

    xdpctl_pol_hdr hdr{};
    hdr.default_action = c.default_action == ActionKind::drop ? XDPCTL_ACT_DROP : XDPCTL_ACT_PASS;
    // Where the rows go, which the record of what the generation holds is read against.
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++) {
        const CompiledDirection& cd = c.dir[d];
        xdpctl_pol_dir_hdr& dh = hdr.dir[d];
        if (cd.n_rules == 0)
            continue;
        dh.n_rules = cd.n_rules;
        dh.words = cd.words;
        dh.agg_words = cd.agg_words;
        dh.row_lines = (cd.row_words() + XDPCTL_POL_ROW_LINE_WORDS - 1) / XDPCTL_POL_ROW_LINE_WORDS;
        dh.rows_per_elem = XDPCTL_POL_ROWS_USABLE_LINES / dh.row_lines;
    }
    // A small policy's rows go into the target's element of xdpctl_prows_small.
    uint64_t small_lines = 0;
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++)
        small_lines += c.dir[d].n_rules ? c.dir[d].rows.count() * hdr.dir[d].row_lines : 0;
    const bool small = use_small_rows_ && small_lines <= XDPCTL_POL_SMALL_ROWS_LINES;
    // ---- rows: both directions in one map, each from an element of its own. A small
    // policy leaves the map as it is (one must be there: grace_period() writes it) ----
    uint64_t elems = 0;
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS && !small; d++) {
        const CompiledDirection& cd = c.dir[d];
        if (cd.n_rules == 0)
            continue;
        const uint64_t n_rows = cd.rows.count();
        hdr.dir[d].rows_elem = uint32_t(elems);
        elems += (n_rows + hdr.dir[d].rows_per_elem - 1) / hdr.dir[d].rows_per_elem;
    }
    elems = std::max<uint64_t>(elems, 1);
    const uint64_t need = elems + (small ? 0 : 1);  // and the record (row_prints.h)
    if (need > std::numeric_limits<uint32_t>::max() / XDPCTL_POL_ROWS_ELEM_LINES)
        fail_usage("the policy's bitmap rows would take {} GiB", need * XDPCTL_POL_ROWS_ELEM_BYTES >> 30);
    // ---- what the target generation holds (row_prints.h): read, then cleared before
    // anything of it is written ----
    RowPlace place[XDPCTL_POL_DIRS];
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++) {
        const xdpctl_pol_dir_hdr& dh = hdr.dir[d];
        if (c.dir[d].n_rules && !small)
            place[d] = {dh.n_rules, dh.words, dh.agg_words, dh.row_lines, dh.rows_per_elem, dh.rows_elem};
    }
    std::optional<RowPrintArea> held;
    if (UniqueFd fd = record_map(fds_.rows.get(), target)) {
        held.emplace(record_view(fd.get()).as<xdpctl_pol_row_line>(), ctl.commits - 1, place);
        held->clear();
    }
    // The other tables' prints, recorded at the end (row_prints.h): one the generation holds
    // already is left as it is.
    FixedPrints fixed{};
    auto holds = [&](uint32_t d, FixedTable k, const FixedPrint& now) {
        fixed[d][k] = now;
        return held && !held->fixed()[d][k].none() && held->fixed()[d][k] == now;
    };

    // ---- the fixed-size tables and rule records of the target generation, by mmap ----
    std::vector<Task<void>> anchors_written;  // joined before the record is written
    auto recs = rules_->part(target).as<xdpctl_rule_rec>();
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++) {
        const CompiledDirection& cd = c.dir[d];
        xdpctl_pol_dir_hdr& dh = hdr.dir[d];
        if (cd.n_rules == 0)
            continue;  // the datapath stops at n_rules == 0
        const size_t gd = XDPCTL_POL_GD(target, d);
        const size_t cls_per_line = XDPCTL_POL_CLS_PER_LINE;
        // A table the generation holds already is not mapped either.
        auto put = [&](FixedTable k, const MappedMap& map, size_t at, const std::vector<uint16_t>& from) {
            const size_t bytes = from.size() * sizeof(uint16_t);
            if (!holds(d, k, FixedPrinter(k).add(from.data(), bytes).done()))
                write_changed(&map.part(target).as<uint16_t>()[at], from.data(), bytes);
        };
        put(kFixedSport, *port_, (gd * 2) * XDPCTL_POL_PORT_LINES * cls_per_line, cd.sport);
        put(kFixedDport, *port_, (gd * 2 + 1) * XDPCTL_POL_PORT_LINES * cls_per_line, cd.dport);
        put(kFixedL4, *l4_, gd * XDPCTL_POL_L4_LINES * cls_per_line, cd.l4);
        put(kFixedVlan, *vlan_, gd * XDPCTL_POL_VLAN_LINES * cls_per_line, cd.vlan);
        put(kFixedIif, *iif_, gd * XDPCTL_POL_IIF_LINES * cls_per_line, cd.iif);
        std::vector<xdpctl_rule_rec> ranked_recs(cd.n_rules);  // a free rank's: all 0
        for (uint32_t rank = 0; rank < cd.n_rules; rank++) {
            const RuleRecord& r = cd.ranked[rank];
            if (r.id == 0)
                continue;
            xdpctl_rule_rec& rec = ranked_recs[rank];
            rec.id = r.id;
            rec.action = bpf_action(r.action);
            rec.ctr_slot = slot_of.at(r.id);
            rec.log_rate = r.log_rate;
            if (r.action == ActionKind::rate_limit) {
                rec.rate_pps = r.rate_pps;
                rec.burst = r.burst;
            }
        }
        // Each record written only where it differs from the one the generation holds: a
        // page written through a mapping costs ~9 us where the hypervisor tracks page tables
        // (a PVM guest), one read ~3 us, and most ranks keep their rule.
        if (!holds(d, kFixedRecords,
                   FixedPrinter(kFixedRecords).add(ranked_recs.data(), ranked_recs.size() * sizeof(xdpctl_rule_rec)).done()))
            for (uint32_t rank = 0; rank < cd.n_rules; rank++) {
                xdpctl_rule_rec& held_rec = recs[gd * XDPCTL_POL_MAX_RANKS + rank];
                if (std::memcmp(&held_rec, &ranked_recs[rank], sizeof(xdpctl_rule_rec)) != 0)
                    held_rec = ranked_recs[rank];
            }
        if (decides_small(cd)) {
            // The rules again, each with the record just written for its rank.
            xdpctl_pol_small& t = small_->part(target).as<xdpctl_pol_small>()[gd];
            t.n = uint32_t(cd.small->size());
            for (uint32_t i = 0; i < t.n; i++) {
                t.r[i] = (*cd.small)[i];
                t.r[i].rec = ranked_recs[cd.rank_of[i]];
            }
            dh.decide = XDPCTL_POL_DECIDE_SMALL;
        } else if (const int f = cd.decide_field; decides_by_field(cd)) {
            // Per class of the field, its first rule: the row's first bit (every other field
            // is a wildcard of every rule).
            xdpctl_pol_decide_line* lines = &decide_->part(target).as<xdpctl_pol_decide_line>()[gd * XDPCTL_POL_DECIDE_LINES];
            for (uint32_t cls = 0; cls < cd.n_classes[f]; cls++) {
                const uint32_t first = cd.rows.first_rank(cd.row_base[f] + cls);
                const uint32_t rank1 = first < cd.n_rules ? first + 1 : 0;
                lines[cls / XDPCTL_POL_DECIDE_PER_LINE].rank1[cls % XDPCTL_POL_DECIDE_PER_LINE] =
                    rank1 <= cd.n_rules ? rank1 : 0;
            }
            dh.decide = f == kFieldSrc ? XDPCTL_POL_DECIDE_SRC : XDPCTL_POL_DECIDE_DST;
        } else if (auto lists = prepared.anchors ? std::move((*prepared.anchors)[d])
                                      : fds_.anc && decide_anchors_ ? anchor_lists(cd)
                                                                    : std::nullopt) {
            std::vector<xdpctl_pol_small_rule> rules(*cd.anchor_rules);  // with their records
            for (size_t rank = 0; rank < rules.size() && rank < ranked_recs.size(); rank++)
                rules[rank].rec = ranked_recs[rank];
            // Written beside the rows and address tables (both into the target generation,
            // done before the flip): the element is 2.7 MiB read and written back by the
            // kernel, ~1 ms of a `rule add` of a new rule at 10,000 rules on the main thread.
            dh.decide = XDPCTL_POL_DECIDE_ANCHORS | lists->unanchored << XDPCTL_POL_DECIDE_SKIP_SHIFT;
            if (!holds(d, kFixedAnchors, anchors_print(rules, *lists))) {
                char* buffer = anchors_written.empty() ? anchor_buffer_.get() : nullptr;
                anchors_written.push_back(run_beside([fd = fds_.anc.get(), gd = uint32_t(gd), rules = std::move(rules),
                                                      lists = std::move(*lists), buffer] {
                    write_anchors(fd, gd, rules, lists, buffer);
                }));
            }
        } else {
            dh.decide = XDPCTL_POL_DECIDE_TABLES | unnamed_fields(cd) << XDPCTL_POL_DECIDE_SKIP_SHIFT;
        }
        // Split fields: their sets' slots and node classes (abi: "Sets' own tables").
        const std::array<const AddrClassTable*, 2> split = split_tables(cd);
        for (uint32_t dst = 0; dst < 2; dst++) {
            const AddrClassTable* t = split[dst];
            if (!t)
                continue;
            const AddrClassTable& t6 = dst ? cd.dst_v6 : cd.src_v6;
            if (!can_split() || t->sets.size() > XDPCTL_POL_SPLIT_SETS || t6.sets != t->sets ||
                t->node_class.size() > XDPCTL_POL_NODE_CLASSES || t6.node_class.size() > XDPCTL_POL_NODE_CLASSES)
                fail("the compiled {} address field {} is split beyond what the maps hold", d ? "egress" : "ingress",
                     dst ? "dst" : "src");
            xdpctl_pol_split& sp = split_->part(target).as<xdpctl_pol_split>()[XDPCTL_POL_TAB_ADDR(target, d, dst)];
            sp.n_sets = uint32_t(t->sets.size());
            // (take_address_tables emptied the entries: whether it made a table tells.)
            sp.rule_table = prepared.addr[d][dst] || prepared.kept[d][dst] || prepared.built[d][dst];
            for (size_t i = 0; i < t->sets.size(); i++) {
                auto it = prepared.set_slot.find(t->sets[i]);
                if (it == prepared.set_slot.end())
                    fail("set {} has no table for the commit (PolicyMaps::place_sets)", t->sets[i]);
                sp.slot[i] = it->second;
            }
            // Both families' nodes in one array (the compiler numbers IPv6's after IPv4's).
            if (t6.node_class != t->node_class)
                fail("the compiled {} address field {} has two node arrays", d ? "egress" : "ingress", dst ? "dst" : "src");
            for (size_t i = 0; i < t->node_class.size(); i++)
                sp.node_class[i] = uint16_t(t->node_class[i]);
            dh.decide |= 1u << (XDPCTL_POL_DECIDE_SPLIT_SHIFT + dst);
            sp.rank1[0] = sp.rank1[1] = 0;
            if (sp.n_sets == 1 && !sp.rule_table) {
                dh.decide |= 1u << (XDPCTL_POL_DECIDE_SPLIT_ONE_SHIFT + dst) |
                             sp.slot[0] << (XDPCTL_POL_DECIDE_SET_SLOT_SHIFT + 3 * dst);
                // The one-field decision of this field by membership: the xdpctl_pdecide entries
                // of its two classes, copied where the set's leaf leads (abi: XDPCTL_POL_DECIDE_SET_RANKS).
                if ((dh.decide & XDPCTL_POL_DECIDE_SHAPE_MASK) ==
                        (dst ? XDPCTL_POL_DECIDE_DST : XDPCTL_POL_DECIDE_SRC) &&
                    t->node_class.size() >= 2) {
                    const xdpctl_pol_decide_line* lines =
                        &decide_->part(target).as<xdpctl_pol_decide_line>()[gd * XDPCTL_POL_DECIDE_LINES];
                    for (uint32_t m = 0; m < 2; m++) {
                        const uint32_t cls = t->node_class[m] % XDPCTL_POL_DECIDE_CLASSES;
                        sp.rank1[m] = lines[cls / XDPCTL_POL_DECIDE_PER_LINE].rank1[cls % XDPCTL_POL_DECIDE_PER_LINE];
                    }
                    dh.decide |= XDPCTL_POL_DECIDE_SET_RANKS;
                }
            }
        }
        // The edge rule (abi: XDPCTL_POL_DECIDE_EDGE): its set's slot in the header, its
        // record at the rank no rule holds.
        if (cd.edge) {
            auto it = prepared.set_slot.find(cd.edge->set);
            if (!can_split() || it == prepared.set_slot.end() || it->second >= XDPCTL_POL_SET_SLOTS)
                fail("set {} has no table for the commit's edge rule (PolicyMaps::place_sets)", cd.edge->set);
            const xdpctl_rule_rec rec{cd.edge->rec.id, bpf_action(cd.edge->rec.action), slot_of.at(cd.edge->rec.id), 0, 0, 0};
            xdpctl_rule_rec& held_rec = recs[gd * XDPCTL_POL_MAX_RANKS + XDPCTL_POL_EDGE_RANK];
            if (std::memcmp(&held_rec, &rec, sizeof(rec)) != 0)
                held_rec = rec;
            dh.decide |= XDPCTL_POL_DECIDE_EDGE | (cd.edge->field == kFieldDst ? XDPCTL_POL_DECIDE_EDGE_DST : 0) |
                         (cd.edge->first ? XDPCTL_POL_DECIDE_EDGE_FIRST : 0) |
                         it->second << XDPCTL_POL_DECIDE_EDGE_SLOT_SHIFT;
        }
        for (int f = 0; f < kFieldCount; f++)
            dh.row_base[f] = cd.row_base[f];
        dh.src_nonip = cd.src_nonip_class;
        dh.dst_nonip = cd.dst_nonip_class;
        dh.sport_none = cd.sport_none_class;
        dh.dport_none = cd.dport_none_class;
        dh.l4_nonip = cd.l4_nonip_class;
        dh.iif_other = cd.iif_other_class;
    }
    const uint64_t t1 = mono_ns();
    times_.tables_ns = t1 - t0;

    HeldTables tables;  // what the record written at the end says

    // ---- address tables: the target's table from two commits ago is refilled in place when
    // it is small enough to have been kept (see the end) and its size fits, as the rows are;
    // the others are made anew and installed with one batch update (a grace period). In a
    // thread of their own, beside the rows: each is a copy of tens of MiB ----
    std::vector<UniqueFd> addr;
    std::vector<uint32_t> keys, fds;
    Task<void> addr_done = run_beside([&] {
        for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++) {
            const CompiledDirection& cd = c.dir[d];
            if (cd.n_rules == 0)
                continue;
            for (uint32_t dst = 0; dst < 2; dst++) {
                const uint32_t key = XDPCTL_POL_TAB_ADDR(target, d, dst);
                // Mapped where a table is written: one the generation keeps has its level 1 there.
                auto l1_at = [&] {
                    return l1_->part(target).as<uint32_t>().begin() + size_t(XDPCTL_POL_L1(target, d, dst)) * XDPCTL_PFX_L1_ENTRIES;
                };
                if (const auto& kept = prepared.kept[d][dst]) {  // the generation holds it already
                    if (slot_map_id(tabs, key) != kept->map_id || !held || !held->tables()[d][dst] ||
                        held->tables()[d][dst]->map_id != kept->map_id)
                        fail("the policy's address table {} changed during the commit", key);
                    tables[d][dst] = kept;
                    times_.addr_kept++;
                    continue;
                }
                if (prepared.built[d][dst]) {  // built in a map of its own: installed as it is
                    times_.addr_bytes += prepared.built_bytes[d][dst];
                    write_changed(&*l1_at(), prepared.built_l1[d][dst].data(), XDPCTL_PFX_L1_ENTRIES * sizeof(uint32_t));
                    addr.push_back(std::move(prepared.built[d][dst]));
                    keys.push_back(key);
                    fds.push_back(uint32_t(addr.back().get()));
                    continue;
                }
                if (!prepared.addr[d][dst]) {
                    (dst ? hdr.dir[d].dst_const : hdr.dir[d].src_const) = prepared.const_class[d][dst];
                    continue;
                }
                PrefixTable& t = *prepared.addr[d][dst];
                const uint64_t need = t.lines().size();
                times_.addr_bytes += t.stats().bytes;
                // Its IPv4 level 1, where the datapath reads it (xdpctl_pl1).
                const auto* words = reinterpret_cast<const uint32_t*>(t.lines().data());
                // Compared first: a table refilled in place mostly has the level 1 the
                // generation holds (a new /16 changes one word), and a page written through a
                // mapping costs ~9 us where the hypervisor tracks page tables (a PVM guest;
                // calls cheap, no microcode), reading one ~3 us: ~0.6 ms for all 64 pages.
                write_changed(&*l1_at(), words + XDPCTL_PFX4_L1_WORD, XDPCTL_PFX_L1_ENTRIES * sizeof(uint32_t));
                if (uint32_t id = slot_map_id(tabs, key)) {
                    UniqueFd fd(bpf_map_get_fd_by_id(id));
                    const uint64_t have = fd ? map_lines(fd.get()) : 0;
                    if (have >= need && have <= 2 * need + kTableHeadroomLines && !is_placeholder(id)) {
                        times_.addr_lines_written += refill_table_map(fd.get(), t.lines()).lines_written;
                        prepared.addr[d][dst].reset();
                        times_.addr_reused++;
                        if (have <= keep_table_lines_)
                            tables[d][dst] = HeldTable{prepared.print[d][dst], id};
                        continue;
                    }
                }
                // Room for the next commits' small changes, so that they refill it in place (a
                // table too large to be kept gets none).
                // A table kept has room for the record of its pages (table_refill.h) too.
                const uint64_t room = need + need / 8 + kTableHeadroomLines + table_record_lines(need);
                const uint64_t lines = room <= keep_table_lines_ ? room : need;
                addr.push_back(create_lines_map("xdpctl_pfx", lines));
                times_.addr_lines_written += refill_table_map(addr.back().get(), t.lines(), true).lines_written;
                prepared.addr[d][dst].reset();
                if (lines <= keep_table_lines_)  // kept after its generation (see the end)
                    tables[d][dst] = HeldTable{prepared.print[d][dst], map_id_of(addr.back().get())};
                keys.push_back(key);
                fds.push_back(uint32_t(addr.back().get()));
            }
        }
    });

    // ---- rows of a small policy: the target's element of xdpctl_prows_small ----
    if (small) {
        auto out = rows_small_->part(target).as<xdpctl_pol_row_line>();
        size_t line = size_t(target) * (XDPCTL_POL_SMALL_ROWS_BYTES / 64);
        for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++) {
            const CompiledDirection& cd = c.dir[d];
            if (cd.n_rules == 0)
                continue;
            xdpctl_pol_dir_hdr& dh = hdr.dir[d];
            dh.rows_small = 1;
            dh.rows_line0 = uint32_t(line - size_t(target) * (XDPCTL_POL_SMALL_ROWS_BYTES / 64));
            const size_t n = cd.rows.count();
            for (size_t r = 0; r < n; r++, line += dh.row_lines)
                times_.rows_written += write_row_lines(cd.rows, r, dh.row_lines, out[line].word);
        }
    }

    // The target's rows map from two commits ago is free (see `settled`) and is refilled in
    // place when its size fits: no install, so no grace period. A map over twice the need
    // is replaced, so memory follows a policy that shrinks.
    const int rows_outer = fds_.rows.get();
    UniqueFd rows;
    bool install_rows = true;
    if (uint32_t id = slot_map_id(rows_outer, target)) {
        UniqueFd fd(bpf_map_get_fd_by_id(id));
        bpf_map_info info{};
        __u32 len = sizeof(info);
        if (fd && bpf_map_get_info_by_fd(fd.get(), &info, &len) == 0 && info.max_entries >= need &&
            (small || info.max_entries <= 2 * need)) {
            rows = std::move(fd);
            install_rows = false;
        }
    }
    if (install_rows) {
        // Room for half as many rows again (the record stays the last element, wherever that
        // is): the first rule that names a big set doubles the classes of its field (40 instead
        // of 28 MiB at 10,000 rules), and a map that fits is refilled, where a new one costs its
        // allocation and, installed, a grace period (~16 ms of such a `rule add`).
        const uint64_t room = small ? need : need + need / 2;
        LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE | BPF_F_INNER_MAP);
        int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "xdpctl_prows", sizeof(__u32), XDPCTL_POL_ROWS_ELEM_BYTES,
                                uint32_t(std::min<uint64_t>(room, std::numeric_limits<uint32_t>::max() / XDPCTL_POL_ROWS_ELEM_LINES)), &opts);
        if (fd < 0)
            fail("cannot create the policy rows ({} MiB): {}", need * XDPCTL_POL_ROWS_ELEM_BYTES >> 20,
                 errno_str(errno));
        rows = UniqueFd(fd);
    }
    // A map just made: its room (past the rows, before the record in its last element)
    // written beside the rows (touch_rows_room).
    Task<void> room_touched;
    if (install_rows && !small)
        if (const uint64_t last = map_lines(rows.get()); last > elems + 1)
            room_touched = run_beside([fd = rows.get(), from = uint32_t(elems), to = uint32_t(last - 1)] {
                touch_rows_room(fd, from, to);
            });
    std::vector<RowPrint> prints[XDPCTL_POL_DIRS];
    if (!small) {
        // A map made anew holds nothing of what the record says.
        const RowPrintArea* was = install_rows ? nullptr : held ? &*held : nullptr;
        // The rows to write (their print changed), by element; an element belongs to one
        // direction.
        std::vector<std::vector<uint32_t>> dirty(elems);
        std::vector<uint32_t> dir_of(elems);
        for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++) {
            const CompiledDirection& cd = c.dir[d];
            if (cd.n_rules == 0)
                continue;
            const xdpctl_pol_dir_hdr& dh = hdr.dir[d];
            prints[d] = prepared.row_prints[d].size() == cd.rows.count() ? std::move(prepared.row_prints[d])
                                                                         : cd.rows.prints();
            const size_t n = cd.rows.count();
            for (size_t r = 0; r < n; r++) {
                const RowPrint* p = was ? was->held(d, uint32_t(r)) : nullptr;
                if (p && *p == prints[d][r])
                    continue;  // the map holds this row there already
                const size_t e = dh.rows_elem + r / dh.rows_per_elem;
                dirty[e].push_back(uint32_t(r));
                dir_of[e] = d;
            }
        }
        // An element with few rows to write is written through a mapping of it, page by page
        // (mapping all of the map costs ~1 ms per 10 MiB, which a commit that writes a few
        // rows need not pay). One with more is built whole and written with one map update:
        // writing through a mapping costs ~9 us a page where the hypervisor tracks page
        // tables (a PVM guest), the kernel's copy of 4 MiB ~0.3 ms; a rule inserted among
        // others moves every later rank, and its 23 MiB of rows at 10,000 rules took ~55 ms.
        std::vector<uint64_t> whole;
        for (uint64_t e = 0; e < elems; e++) {
            if (dirty[e].empty())
                continue;
            const CompiledDirection& cd = c.dir[dir_of[e]];
            const xdpctl_pol_dir_hdr& dh = hdr.dir[dir_of[e]];
            const size_t row_bytes = size_t(dh.row_lines) * 64;
            times_.rows_compared += dirty[e].size();
            if (dirty[e].size() * row_bytes < kWholeRowsElementBytes) {
                write_rows_in_place(rows.get(), e, cd.rows, dirty[e], dh.row_lines, dh.rows_per_elem, times_.rows_written);
                continue;
            }
            // Each row's words written over the buffer, and only what they leave zeroed (its
            // last line's padding, the element past its last row), not all 4 MiB first: a
            // commit that puts a set in use writes ~11 such elements at 10,000 rules.
            whole.resize(XDPCTL_POL_ROWS_ELEM_BYTES / sizeof(uint64_t));
            const size_t first = size_t(e - dh.rows_elem) * dh.rows_per_elem;
            const size_t last = std::min<size_t>(cd.rows.count(), first + dh.rows_per_elem);
            const size_t row_words = row_bytes / sizeof(uint64_t), written = cd.rows.row_words();
            for (size_t r = first; r < last; r++) {
                uint64_t* out = &whole[(r - first) * row_words];
                cd.rows.write_row(r, out);
                std::fill(out + written, out + row_words, 0);
            }
            std::fill(whole.begin() + ptrdiff_t((last - first) * row_words), whole.end(), 0);
            const uint32_t key = uint32_t(e);
            if (bpf_map_update_elem(rows.get(), &key, whole.data(), BPF_ANY) != 0)
                fail("cannot write the policy's rows: {}", errno_str(errno));
            times_.rows_written += (last - first) * row_bytes;
        }
    }
    if (room_touched.valid())
        room_touched.get();
    times_.rows_bytes = small ? small_lines * 64 : need * XDPCTL_POL_ROWS_ELEM_BYTES;
    times_.rows_reused = !install_rows;
    times_.rows_small = small;

    addr_done.get();
    for (Task<void>& t : anchors_written)
        t.get();
    if (!small) {
        // What the generation now holds, in the map it holds it in (the pages read above,
        // when it is the same map: `held` is not used after this).
        const size_t bytes = RowPrintArea::bytes_for(prints[0].size() + prints[1].size());
        RowPrintArea(record_view(rows.get(), bytes).as<xdpctl_pol_row_line>(), 0, place)
            .write(ctl.commits + 1, place, prints, tables, fixed);
    }
    const uint64_t t2 = mono_ns();
    times_.inner_ns = t2 - t1;

    if (install_rows)
        update_slots(rows_outer, {target}, {uint32_t(rows.get())});
    if (!keys.empty())
        update_slots(tabs, keys, fds);
    hdr.settled = 0;
    hdrs[target] = hdr;

    // Rate-limit rules that are new here (by slot, rate and burst) start with a full bucket
    // and empty purses (tokens a rule that had the slot before took stay behind with it); the
    // others keep theirs, so a commit does not hand out a fresh burst.
    std::map<uint32_t, std::pair<uint64_t, uint64_t>> old_rate;
    if (ctl.installed) {
        const xdpctl_pol_hdr& oh = hdrs[old];
        for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++)
            for (uint32_t rank = 0; rank < std::min<uint32_t>(oh.dir[d].n_rules, XDPCTL_POL_MAX_RANKS); rank++) {
                const xdpctl_rule_rec& r = recs[XDPCTL_POL_GD(old, d) * XDPCTL_POL_MAX_RANKS + rank];
                if (r.action == XDPCTL_ACT_RATE_LIMIT)
                    old_rate[r.ctr_slot] = {r.rate_pps, r.burst};
            }
    }
    const std::vector<xdpctl_rate_purse> no_purses(possible_cpus());
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++)
        for (const RuleRecord& r : c.dir[d].ranked) {
            if (r.action != ActionKind::rate_limit)
                continue;
            const uint32_t slot = slot_of.at(r.id);
            auto it = old_rate.find(slot);
            if (it != old_rate.end() && it->second == std::make_pair(r.rate_pps, r.burst))
                continue;
            xdpctl_rate_bucket b{int64_t(r.burst * kNsecPerSec), mono_ns()};
            // Purses first: a packet between the two updates takes at most a batch from the
            // old bucket, where the other order could empty a batch taken from the new one.
            if ((fds_.purse && bpf_map_update_elem(fds_.purse.get(), &slot, no_purses.data(), BPF_ANY) != 0) ||
                bpf_map_update_elem(fds_.rate.get(), &slot, &b, BPF_ANY) != 0)
                fail("cannot reset the rate bucket of rule {}: {}", r.id, errno_str(errno));
        }
    const uint64_t t3 = mono_ns();
    times_.install_ns = t3 - t2;

    // Set tables the old generation refers to and the new one neither refers to nor keeps
    // (a set changed or gone): freed with the old generation's tables, below.
    std::vector<uint32_t> old_sets;
    {
        const std::vector<bool> was = referenced_set_slots(true);
        std::vector<bool> kept(XDPCTL_POL_SET_SLOTS);
        for (const auto& [_, slot] : prepared.set_slot)
            kept[slot] = true;
        for (uint32_t slot = 0; slot < XDPCTL_POL_SET_SLOTS; slot++)
            if (was[slot] && !kept[slot])
                old_sets.push_back(slot);
    }

    // ---- the flip: packets that read gen from here on see only the new generation ----
    std::atomic_thread_fence(std::memory_order_seq_cst);
    xdpctl_pol_ctl next{target, 1, ctl.commits + 1};
    __u32 zero = 0;
    if (bpf_map_update_elem(fds_.ctl.get(), &zero, &next, BPF_ANY) != 0)
        fail("cannot switch to the new policy: {}", errno_str(errno));
    const uint64_t t4 = mono_ns();
    times_.flip_ns = t4 - t3;

    // ---- free the old generation's address tables (the outer map held their last
    // references) and wait out the packets still on it, in one batch update. A packet of the
    // old gen that meets a placeholder starts again under the new gen (lib/bpf/classify.h);
    // one that does not saw the old tables. Its rows map and fixed tables stay as they are
    // until the next commit rewrites them, which the wait makes safe. With nothing to free,
    // nothing waits here: the policy is in force from the flip, and the next commit (or
    // settle()) waits before it touches the old generation. So a commit returns one RCU
    // grace period (5-15 ms here) sooner.
    // Tables up to keep_table_lines_ stay for the commit after next to refill in place; the
    // large ones (a big prefix set) are freed, so memory does not hold two of them.
    std::vector<uint32_t> old_keys;
    if (ctl.installed)
        for (uint32_t k = 0; k < XDPCTL_POL_TABS_PER_GEN; k++) {
            const uint32_t slot = old * XDPCTL_POL_TABS_PER_GEN + k;
            uint32_t id = slot_map_id(tabs, slot);
            if (!id || is_placeholder(id))
                continue;
            UniqueFd fd(bpf_map_get_fd_by_id(id));
            if (!fd || map_lines(fd.get()) > keep_table_lines_)
                old_keys.push_back(slot);
        }
    if (!old_keys.empty()) {
        free_slots(tabs, old_keys);
        hdrs[target].settled = 1;
    }
    if (!old_sets.empty()) {
        free_slots(fds_.set_tabs.get(), old_sets);
        hdrs[target].settled = 1;
    }
    const uint64_t t5 = mono_ns();
    times_.free_ns = t5 - t4;
    times_.total_ns = t5 - t0;
    free_in_background(std::move(prepared), std::move(prints[0]), std::move(prints[1]));
}

xdpctl_rule_ctr PolicyMaps::read_rule_counters(uint32_t slot) const
{
    std::vector<xdpctl_rule_ctr> per_cpu(possible_cpus());
    if (bpf_map_lookup_elem(fds_.counters.get(), &slot, per_cpu.data()) != 0)
        fail("cannot read the counters of slot {}: {}", slot, errno_str(errno));
    xdpctl_rule_ctr sum{};
    for (const auto& c : per_cpu) {
        sum.packets += c.packets;
        sum.bytes += c.bytes;
        sum.last_hit_ns = std::max(sum.last_hit_ns, c.last_hit_ns);
    }
    return sum;
}

std::vector<xdpctl_rule_ctr> PolicyMaps::read_all_rule_counters() const
{
    const size_t ncpu = size_t(possible_cpus());
    const auto rows = read_percpu_array<xdpctl_rule_ctr>(fds_.counters.get(), XDPCTL_POL_COUNTER_SLOTS, ncpu,
                                                         "the rule counters");
    std::vector<xdpctl_rule_ctr> out(XDPCTL_POL_COUNTER_SLOTS);
    for (uint32_t i = 0; i < rows.n; i++) {
        xdpctl_rule_ctr& o = out[rows.keys[i]];
        for (size_t cpu = 0; cpu < ncpu; cpu++) {
            const xdpctl_rule_ctr& c = rows.values[size_t(i) * ncpu + cpu];
            o.packets += c.packets;
            o.bytes += c.bytes;
            o.last_hit_ns = std::max(o.last_hit_ns, c.last_hit_ns);
        }
    }
    return out;
}

void PolicyMaps::reset_rule_counters(uint32_t slot)
{
    std::vector<xdpctl_rule_ctr> zero(possible_cpus());
    if (bpf_map_update_elem(fds_.counters.get(), &slot, zero.data(), BPF_ANY) != 0)
        fail("cannot reset the counters of slot {}: {}", slot, errno_str(errno));
}

}  // namespace xdpctl::policy
