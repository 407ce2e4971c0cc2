#include "policy/row_prints.h"

#include <atomic>
#include <cstring>

#include "util/error.h"

namespace xdpctl::policy {

namespace {

constexpr uint64_t kMagic = 0x73746e697270776full;  // "owprints"
constexpr size_t kPrintsPerLine = sizeof(xdpctl_pol_row_line) / sizeof(RowPrint);

// The area's first line.
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

RowPlace place_of(const AreaHdr& h, uint32_t d)
{
    return {h.n_rows[d] ? 1u : 0u, h.words[d], h.agg_words[d], h.row_lines[d], h.rows_per_elem[d], h.rows_elem[d],
            h.n_rows[d]};
}

}  // namespace

uint64_t RowPrintArea::elems_for(uint64_t rows)
{
    const uint64_t lines = 1 + (rows + kPrintsPerLine - 1) / kPrintsPerLine;
    return (lines + XDPCTL_POL_ROWS_ELEM_LINES - 1) / XDPCTL_POL_ROWS_ELEM_LINES;
}

RowPrintArea::RowPrintArea(std::span<xdpctl_pol_row_line> map, uint64_t at, uint64_t held_commit,
                           const RowPlace (&now)[XDPCTL_POL_DIRS])
{
    const uint64_t first = at * XDPCTL_POL_ROWS_ELEM_LINES;
    if (first >= map.size())
        fail("the policy rows map has no room for its row prints");
    lines_ = map.subspan(first);
    AreaHdr h;
    std::memcpy(&h, &lines_[0], sizeof(h));
    if (h.magic != kMagic || h.commit != held_commit)
        return;
    const auto* prints = reinterpret_cast<const RowPrint*>(&lines_[1]);
    const uint64_t room = (lines_.size() - 1) * kPrintsPerLine;
    uint64_t off = 0;
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++) {
        const RowPlace was = place_of(h, d);
        if (off + was.n_rows > room)
            return;  // not an area this code wrote
        if (was.same_spot(now[d]))
            held_[d].assign(prints + off, prints + off + was.n_rows);
        off += was.n_rows;
    }
}

void RowPrintArea::clear()
{
    const uint64_t zero = 0;
    std::memcpy(&lines_[0], &zero, sizeof(zero));
    // Before any row is written (a process killed in between leaves the area cleared).
    std::atomic_thread_fence(std::memory_order_seq_cst);
}

void RowPrintArea::write(uint64_t commit, const RowPlace (&now)[XDPCTL_POL_DIRS],
                         const std::vector<RowPrint> (&prints)[XDPCTL_POL_DIRS])
{
    AreaHdr h{};
    auto* out = reinterpret_cast<RowPrint*>(&lines_[1]);
    const uint64_t room = (lines_.size() - 1) * kPrintsPerLine;
    uint64_t off = 0;
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++) {
        const RowPlace& p = now[d];
        if (!p.n_rules)
            continue;
        if (off + prints[d].size() > room)
            fail("the policy rows map has no room for {} row prints", off + prints[d].size());
        std::memcpy(out + off, prints[d].data(), prints[d].size() * sizeof(RowPrint));
        off += prints[d].size();
        h.n_rows[d] = uint32_t(prints[d].size());
        h.words[d] = p.words;
        h.agg_words[d] = p.agg_words;
        h.row_lines[d] = p.row_lines;
        h.rows_per_elem[d] = p.rows_per_elem;
        h.rows_elem[d] = p.rows_elem;
    }
    h.commit = commit;
    std::memcpy(&lines_[0].word[1], &h.commit, sizeof(h) - sizeof(h.magic));
    // The prints and the header before the magic that makes them believed.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    h.magic = kMagic;
    std::memcpy(&lines_[0], &h.magic, sizeof(h.magic));
}

}  // namespace xdpctl::policy
