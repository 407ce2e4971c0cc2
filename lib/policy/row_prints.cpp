#include "policy/row_prints.h"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "util/error.h"
#include "util/map_memory.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace xdpctl::policy {

namespace {

// "owprint2": a record that also holds the other tables' prints (an "owprints" record,
// without them, is not believed: the commit after an upgrade compares everything once).
constexpr uint64_t kMagic = 0x32746e697270776full;

// The record's first line.
struct AreaHdr {
    uint64_t magic;
    uint64_t commit;
    uint32_t n_rows[XDPCTL_POL_DIRS];
    uint32_t words[XDPCTL_POL_DIRS];
    uint32_t agg_words[XDPCTL_POL_DIRS];
    uint32_t row_lines[XDPCTL_POL_DIRS];
    uint32_t rows_per_elem[XDPCTL_POL_DIRS];
    uint32_t rows_elem[XDPCTL_POL_DIRS];
};
static_assert(sizeof(AreaHdr) <= sizeof(xdpctl_pol_row_line));
// Lines 1-2: the address tables (map id 0: none recorded).
struct TableRec {
    RowPrint print;
    uint32_t map_id, pad;
};
static_assert(sizeof(TableRec) * XDPCTL_POL_DIRS * 2 <= 2 * sizeof(xdpctl_pol_row_line));
// Lines 3-6: the other tables' prints (FixedPrints).
constexpr size_t kFixedLine = 3;
static_assert(sizeof(FixedPrints) <= 4 * sizeof(xdpctl_pol_row_line));
constexpr size_t kPrintsLine = 7;  // the rows' prints from here on

uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 32)) * 0xd6e8feb86659fd93ull;
    z = (z ^ (z >> 32)) * 0xd6e8feb86659fd93ull;
    return z ^ (z >> 32);
}

}  // namespace

FixedPrinter::FixedPrinter(FixedTable which) : state_(XXH3_createState())
{
    if (!state_)
        fail("out of memory for a table's print");
    XXH3_128bits_reset_withSeed(static_cast<XXH3_state_t*>(state_), 0x6669786564ull + which);
}

FixedPrinter::~FixedPrinter()
{
    XXH3_freeState(static_cast<XXH3_state_t*>(state_));
}

FixedPrinter& FixedPrinter::add(const void* data, size_t bytes)
{
    const uint64_t n = bytes;
    XXH3_128bits_update(static_cast<XXH3_state_t*>(state_), &n, sizeof(n));
    if (bytes)
        XXH3_128bits_update(static_cast<XXH3_state_t*>(state_), data, bytes);
    return *this;
}

FixedPrint FixedPrinter::done() const
{
    const XXH128_hash_t h = XXH3_128bits_digest(static_cast<const XXH3_state_t*>(state_));
    // {0, 0} means none recorded.
    return h.low64 || h.high64 ? FixedPrint{h.low64, h.high64} : FixedPrint{1, 0};
}

RowPrint table_print(const AddrClassTable& v4, const AddrClassTable& v6, TableLayout layout)
{
    const uint64_t kind = uint64_t(layout);
    uint64_t a = 0x452821e638d01377ull ^ kind, b = 0xbe5466cf34e90c6cull + kind;
    auto take = [&](uint64_t w) {
        a = mix(a ^ w);
        b = mix(b + w * 0x9e3779b97f4a7c15ull);
    };
    for (const AddrClassTable* t : {&v4, &v6}) {
        take(t->entries.size());
        take(t->default_class);
        for (const AddrClassTable::Entry& e : t->entries) {
            uint64_t hi = 0, lo = 0;
            std::memcpy(&hi, e.prefix.addr.data(), 8);
            std::memcpy(&lo, e.prefix.addr.data() + 8, 8);
            take(hi);
            take(lo);
            take(uint64_t(e.prefix.len) << 32 | e.cls);
        }
    }
    return {a, b};
}

size_t RowPrintArea::bytes_for(uint64_t rows)
{
    return std::min<uint64_t>(kPrintsLine * sizeof(xdpctl_pol_row_line) + rows * sizeof(RowPrint),
                              XDPCTL_POL_ROWS_ELEM_BYTES);
}

size_t RowPrintArea::recorded_bytes(const xdpctl_pol_row_line& head)
{
    AreaHdr h;
    std::memcpy(&h, &head, sizeof(h));
    if (h.magic != kMagic)
        return sizeof(xdpctl_pol_row_line);
    uint64_t rows = 0;
    for (uint32_t n : h.n_rows)
        rows += n;
    return bytes_for(rows);
}

RowPrintArea::RowPrintArea(std::span<xdpctl_pol_row_line> elem, uint64_t held_commit,
                           const RowPlace (&now)[XDPCTL_POL_DIRS])
    : lines_(elem)
{
    if (elem.size() < kPrintsLine || elem.size() > XDPCTL_POL_ROWS_ELEM_LINES)
        fail("the policy rows record is {} lines, not within an element", elem.size());
    AreaHdr h;
    std::memcpy(&h, &lines_[0], sizeof(h));
    if (h.magic != kMagic || h.commit != held_commit)
        return;
    const auto* recs = reinterpret_cast<const TableRec*>(&lines_[1]);
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++)
        for (uint32_t dst = 0; dst < 2; dst++)
            if (const TableRec& t = recs[d * 2 + dst]; t.map_id)
                tables_[d][dst] = HeldTable{t.print, t.map_id};
    static_assert(std::is_trivially_copyable_v<FixedPrints>);
    std::memcpy(static_cast<void*>(&fixed_), &lines_[kFixedLine], sizeof(fixed_));
    const auto* prints = reinterpret_cast<const RowPrint*>(&lines_[kPrintsLine]);
    const uint64_t room = (lines_.size() - kPrintsLine) * sizeof(xdpctl_pol_row_line) / sizeof(RowPrint);
    uint64_t off = 0;
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++) {
        const RowPlace was{h.n_rows[d], h.words[d], h.agg_words[d], h.row_lines[d], h.rows_per_elem[d],
                           h.rows_elem[d]};
        if (off + h.n_rows[d] > room)
            return;  // not a record this code wrote
        recorded_[d].assign(prints + off, prints + off + h.n_rows[d]);
        same_spot_[d] = was.same_spot(now[d]);
        off += h.n_rows[d];
    }
}

void RowPrintArea::restamp(xdpctl_pol_row_line& head, uint64_t from, uint64_t to)
{
    AreaHdr h;
    std::memcpy(&h, &head, sizeof(h));
    if (h.magic != kMagic || h.commit != from)
        return;
    // One aligned 8-byte store: a reader sees the stamp before or after, never half of it.
    std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(reinterpret_cast<char*>(&head) + offsetof(AreaHdr, commit)))
        .store(to, std::memory_order_seq_cst);
}

void RowPrintArea::clear()
{
    const uint64_t zero = 0;
    std::memcpy(&lines_[0], &zero, sizeof(zero));
    // Before anything of the generation is written (a process killed in between leaves the
    // record cleared).
    std::atomic_thread_fence(std::memory_order_seq_cst);
}

void RowPrintArea::write(uint64_t commit, const RowPlace (&now)[XDPCTL_POL_DIRS],
                         const std::vector<RowPrint> (&prints)[XDPCTL_POL_DIRS], const HeldTables& tables,
                         const FixedPrints& fixed)
{
    AreaHdr h{};
    auto* out = reinterpret_cast<RowPrint*>(&lines_[kPrintsLine]);
    const uint64_t room = (lines_.size() - kPrintsLine) * sizeof(xdpctl_pol_row_line) / sizeof(RowPrint);
    uint64_t off = 0;
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++) {
        const RowPlace& p = now[d];
        if (!p.n_rules)
            continue;
        if (off + prints[d].size() > room)
            continue;  // not recorded: n_rows 0
        // Only the pages that differ: the area holds the prints of two commits ago, mostly
        // the same rows, and a page written through a mapping costs ~9 us where the
        // hypervisor tracks page tables (a PVM guest), ~100 of them at 10,000 rules.
        write_changed(out + off, prints[d].data(), prints[d].size() * sizeof(RowPrint));
        off += prints[d].size();
        h.n_rows[d] = uint32_t(prints[d].size());
        h.words[d] = p.words;
        h.agg_words[d] = p.agg_words;
        h.row_lines[d] = p.row_lines;
        h.rows_per_elem[d] = p.rows_per_elem;
        h.rows_elem[d] = p.rows_elem;
    }
    TableRec recs[XDPCTL_POL_DIRS * 2] = {};
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++)
        for (uint32_t dst = 0; dst < 2; dst++)
            if (const auto& t = tables[d][dst])
                recs[d * 2 + dst] = {t->print, t->map_id, 0};
    std::memcpy(&lines_[1], recs, sizeof(recs));
    std::memcpy(&lines_[kFixedLine], &fixed, sizeof(fixed));
    h.commit = commit;
    std::memcpy(&lines_[0].word[1], &h.commit, sizeof(h) - sizeof(h.magic));
    // All of it before the magic that makes it believed.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    h.magic = kMagic;
    std::memcpy(&lines_[0], &h.magic, sizeof(h.magic));
}

}  // namespace xdpctl::policy
