#include "policy/table_refill.h"

#include <bpf/bpf.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "policy/prefix_table.h"
#include "util/error.h"

namespace xdpctl::policy {

namespace {

constexpr uint64_t kPageLines = 4096 / sizeof(xdpctl_pfx_line);
constexpr uint64_t kPrintsPerLine = sizeof(xdpctl_pfx_line) / sizeof(uint64_t);
constexpr uint64_t kMagic = 0x31504654434458ull;  // "XDCTFP1"
constexpr uint32_t kVersion = 1;
// Lines a batch update takes at once: bounds the copy the kernel makes of them.
constexpr size_t kBatchLines = 4096;

struct RecordHead {
    uint64_t magic;
    uint32_t version;
    uint32_t zero;
    uint64_t seed;
    uint64_t table_lines;
    uint64_t map_lines;
    uint64_t check;  // of the fields above and the prints
    uint64_t unused[2];
};
static_assert(sizeof(RecordHead) == sizeof(xdpctl_pfx_line), "the record's head is one line");

uint64_t pages_of(uint64_t lines) { return (lines + kPageLines - 1) / kPageLines; }

// Page `p` of `lines` (lines past the end as zero), printed with `seed`.
uint64_t page_print(std::span<const xdpctl_pfx_line> lines, uint64_t p, uint64_t seed)
{
    const uint64_t at = p * kPageLines;
    const uint64_t n = at < lines.size() ? std::min(kPageLines, lines.size() - at) : 0;
    if (n == kPageLines)
        return XXH3_64bits_withSeed(&lines[at], kPageLines * sizeof(xdpctl_pfx_line), seed);
    xdpctl_pfx_line page[kPageLines] = {};
    std::copy_n(lines.begin() + at, n, page);
    return XXH3_64bits_withSeed(page, sizeof(page), seed);
}

uint64_t head_check(const RecordHead& h, std::span<const uint64_t> prints)
{
    RecordHead fields = h;
    fields.check = 0;
    return XXH3_64bits_withSeed(prints.data(), prints.size_bytes(), XXH3_64bits(&fields, sizeof(fields)));
}

uint32_t map_lines(int map_fd)
{
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_map_get_info_by_fd(map_fd, &info, &len) != 0)
        fail("cannot read an address table's map info: {}", errno_str(errno));
    if (info.value_size != sizeof(xdpctl_pfx_line))
        fail("map value size {} is not a prefix-table line", info.value_size);
    return info.max_entries;
}

struct Held {
    uint64_t seed = 0;
    uint64_t table_lines = 0;
    std::vector<uint64_t> prints;
};

// What the record of an `m`-line map says it holds, if it is a record.
std::optional<Held> read_record(int map_fd, uint64_t m)
{
    RecordHead h{};
    const uint32_t head_key = uint32_t(m - 1);
    if (bpf_map_lookup_elem(map_fd, &head_key, &h) != 0 || h.magic != kMagic || h.version != kVersion ||
        h.map_lines != m || h.table_lines >= m || h.table_lines + table_record_lines(h.table_lines) > m)
        return std::nullopt;
    Held held{h.seed, h.table_lines, std::vector<uint64_t>(pages_of(h.table_lines))};
    if (held.prints.empty())
        return head_check(h, held.prints) == h.check ? std::optional<Held>(std::move(held)) : std::nullopt;
    // The prints through a read-only mapping of their pages only (a few for a large table).
    const uint64_t first = m - table_record_lines(h.table_lines);
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    const size_t from = first * sizeof(xdpctl_pfx_line) / page * page;
    const size_t to = (m - 1) * sizeof(xdpctl_pfx_line);
    void* p = mmap(nullptr, to - from, PROT_READ, MAP_SHARED, map_fd, off_t(from));
    if (p == MAP_FAILED)
        fail("cannot map an address table's record: {}", errno_str(errno));
    std::memcpy(held.prints.data(), static_cast<const char*>(p) + (first * sizeof(xdpctl_pfx_line) - from),
                held.prints.size() * sizeof(uint64_t));
    munmap(p, to - from);
    if (head_check(h, held.prints) != h.check)
        return std::nullopt;
    return held;
}

// Writes lines [lo, hi) of the map from `src` (nullptr: zeros) with batch updates, straight
// from where they lie: a copy of them would be fresh memory, and each page of that a fault
// (~30 us on a PVM guest; ~6 ms for the 1.7 MiB a new rule at 10,000 rules writes).
void write_run(int map_fd, uint64_t lo, uint64_t hi, const xdpctl_pfx_line* src)
{
    static const xdpctl_pfx_line zeros[256] = {};
    uint32_t keys[kBatchLines];
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    const uint64_t step = src ? kBatchLines : std::size(zeros);
    for (uint64_t at = lo; at < hi; at += step) {
        __u32 n = __u32(std::min(step, hi - at));
        for (uint32_t i = 0; i < n; i++)
            keys[i] = uint32_t(at + i);
        if (bpf_map_update_batch(map_fd, keys, src ? src + (at - lo) : zeros, &n, &opts) != 0)
            fail("cannot write lines {}-{} of an address table: {}", at, at + n, errno_str(errno));
    }
}

// Lines [lo, hi) of the map as the table (lines) and zeros past it.
void write_lines_of(int map_fd, std::span<const xdpctl_pfx_line> lines, uint64_t lo, uint64_t hi)
{
    const uint64_t split = std::clamp<uint64_t>(lines.size(), lo, hi);
    if (lo < split)
        write_run(map_fd, lo, split, &lines[lo]);
    if (split < hi)
        write_run(map_fd, split, hi, nullptr);
}

// The record of `lines` printed with `seed`, into the last lines of an `m`-line map: the
// prints first, the head last.
void write_record(int map_fd, uint64_t m, uint64_t seed, uint64_t table_lines, const std::vector<uint64_t>& prints)
{
    const uint64_t r = table_record_lines(table_lines);
    RecordHead h{kMagic, kVersion, 0, seed, table_lines, m, 0, {}};
    h.check = head_check(h, prints);
    std::vector<xdpctl_pfx_line> values(r);
    std::memcpy(values.data(), prints.data(), prints.size() * sizeof(uint64_t));
    std::memcpy(&values[r - 1], &h, sizeof(h));
    write_run(map_fd, m - r, m, values.data());  // in key order: the head last
}

void clear_head(int map_fd, uint64_t m)
{
    const xdpctl_pfx_line zero{};
    const uint32_t key = uint32_t(m - 1);
    if (bpf_map_update_elem(map_fd, &key, &zero, BPF_ANY) != 0)
        fail("cannot write an address table's record: {}", errno_str(errno));
}

uint64_t new_seed()
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
        seed = uint64_t(reinterpret_cast<uintptr_t>(&seed)) ^ uint64_t(getpid()) * 0x9e3779b97f4a7c15ull;
    return seed;
}

}  // namespace

uint64_t table_record_lines(uint64_t table_lines)
{
    return 1 + (pages_of(table_lines) + kPrintsPerLine - 1) / kPrintsPerLine;
}

TableRefill refill_table_map(int map_fd, std::span<const xdpctl_pfx_line> lines, bool fresh)
{
    const uint64_t m = map_lines(map_fd);
    const uint64_t t = lines.size();
    const uint64_t r = table_record_lines(t);
    TableRefill out;
    if (t + r > m) {  // no room for a record: compared whole, and all past the table zeroed
        fill_prefix_table_map(map_fd, lines);
        return out;
    }
    // A map just made is all zero: as if it held an empty table.
    const std::optional<Held> held = fresh ? std::optional<Held>(Held{new_seed(), 0, {}}) : read_record(map_fd, m);
    const uint64_t seed = held ? held->seed : new_seed();
    std::vector<uint64_t> prints(pages_of(t));
    for (uint64_t p = 0; p < prints.size(); p++)
        prints[p] = page_print(lines, p, seed);
    if (!held) {  // all of it compared; all past the table zeroed, a head that was there too
        fill_prefix_table_map(map_fd, lines);
        write_record(map_fd, m, seed, t, prints);
        return out;
    }
    // From here to the new head, the map holds what no record describes.
    if (!fresh)
        clear_head(map_fd, m);
    out.guided = true;
    const uint64_t held_pages = held->prints.size();
    const uint64_t held_record = m - table_record_lines(held->table_lines);
    const uint64_t record = m - r;
    const uint64_t pages = std::max<uint64_t>(prints.size(), held_pages);
    const uint64_t zero_print = page_print({}, 0, seed);
    // Runs of lines to write: the pages whose print changed, up to the new record.
    uint64_t run_lo = 0, run_hi = 0;
    auto flush = [&] {
        if (run_lo < run_hi)
            write_lines_of(map_fd, lines, run_lo, run_hi);
        out.lines_written += run_hi - run_lo;
        run_lo = run_hi = 0;
    };
    for (uint64_t p = 0; p < pages; p++) {
        const uint64_t lo = p * kPageLines, hi = std::min(lo + kPageLines, record);
        // Lines from the held table's end to its record are zero: a page below the record
        // holds what its print (or the zero page's) says.
        const bool known = lo + kPageLines <= held_record;
        const uint64_t was = p < held_pages ? held->prints[p] : zero_print;
        const uint64_t now = p < prints.size() ? prints[p] : zero_print;
        if ((known && was == now) || lo >= hi)
            continue;
        if (run_hi != lo)
            flush();
        if (run_lo == run_hi)
            run_lo = lo;
        run_hi = hi;
    }
    flush();
    out.pages = pages;
    // The held record where the pages above and the new record leave it: zero.
    const uint64_t from = std::max(held_record, pages * kPageLines);
    if (from < record) {
        write_run(map_fd, from, record, nullptr);
        out.lines_written += record - from;
    }
    write_record(map_fd, m, seed, t, prints);
    return out;
}

}  // namespace xdpctl::policy
