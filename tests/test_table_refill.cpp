// refill_table_map (lib/policy/table_refill.h): a map refilled by the pages its record says
// changed holds exactly the table, zeros past it, whatever it held before: tables that grow,
// shrink and change a line or a page at a time; maps an older xdpctl filled (no record);
// records that are damaged. Read back through bpf_map_lookup_elem, not through the record.
#include <bpf/bpf.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "policy/prefix_table.h"
#include "policy/table_refill.h"
#include "require_root.h"
#include "util/unique_fd.h"

using namespace xdpctl;
using namespace xdpctl::policy;

namespace {

using Lines = std::vector<xdpctl_pfx_line>;

UniqueFd make_map(uint32_t lines)
{
    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE);
    return UniqueFd(bpf_map_create(BPF_MAP_TYPE_ARRAY, "refill_test", 4, sizeof(xdpctl_pfx_line), lines, &opts));
}

Lines read_map(int fd, uint32_t lines)
{
    Lines out(lines);
    for (uint32_t k = 0; k < lines; k++)
        EXPECT_EQ(bpf_map_lookup_elem(fd, &k, &out[k]), 0);
    return out;
}

bool same(const xdpctl_pfx_line& a, const xdpctl_pfx_line& b) { return std::memcmp(&a, &b, sizeof(a)) == 0; }

// The map holds `t` and zeros from its end up to its record.
void expect_holds(int fd, uint32_t map_lines, const Lines& t, const char* what)
{
    const Lines got = read_map(fd, map_lines);
    const xdpctl_pfx_line zero{};
    const uint64_t record = map_lines - table_record_lines(t.size());
    for (uint64_t l = 0; l < record; l++) {
        const xdpctl_pfx_line& want = l < t.size() ? t[l] : zero;
        if (!same(got[l], want)) {
            ADD_FAILURE() << what << ": line " << l << " of " << t.size() << " differs";
            return;
        }
    }
}

xdpctl_pfx_line random_line(std::mt19937_64& rng)
{
    xdpctl_pfx_line l{};
    for (auto& w : l.word)
        w = uint32_t(rng());
    return l;
}

// The next table: mostly the last one, changed a line, a page or a stretch at a time,
// grown or shrunk now and then.
Lines next_table(const Lines& last, std::mt19937_64& rng, uint32_t max_lines)
{
    Lines t = last;
    switch (rng() % 6) {
    case 0:  // a line
        if (!t.empty())
            t[rng() % t.size()] = random_line(rng);
        break;
    case 1:  // a stretch, across pages
        if (!t.empty())
            for (size_t at = rng() % t.size(), n = 1 + rng() % 200; n-- && at < t.size(); at++)
                t[at] = random_line(rng);
        break;
    case 2:  // grown, often by zero lines (a table has whole pages of them)
        for (size_t n = 1 + rng() % 300, zeros = rng() % 2; n-- && t.size() < max_lines;)
            t.push_back(zeros ? xdpctl_pfx_line{} : random_line(rng));
        break;
    case 3:  // shrunk
        t.resize(t.size() - std::min<size_t>(t.size(), rng() % 300));
        break;
    case 4:  // lines inserted in the middle: everything after them moves
        if (!t.empty() && t.size() + 16 <= max_lines)
            t.insert(t.begin() + long(rng() % t.size()), 16, random_line(rng));
        break;
    default:  // unchanged
        break;
    }
    return t;
}

}  // namespace

TEST(TableRefill, MapHoldsEachTableAndWritesOnlyWhatChanged)
{
    XDPCTL_REQUIRE_ROOT();
    std::mt19937_64 rng(12);
    for (uint32_t map_lines : {1030u, 4096u}) {
        // The largest table that leaves room for its record.
        uint32_t max_lines = map_lines;
        while (max_lines + table_record_lines(max_lines) > map_lines)
            max_lines--;
        UniqueFd fd = make_map(map_lines);
        ASSERT_TRUE(fd) << "cannot create a map";
        Lines t(std::min<uint32_t>(max_lines, 700));
        for (auto& l : t)
            l = random_line(rng);
        TableRefill r = refill_table_map(fd.get(), t, true);
        expect_holds(fd.get(), map_lines, t, "fresh");
        size_t guided = 0;
        for (int step = 0; step < 120; step++) {
            const Lines next = next_table(t, rng, max_lines);
            size_t pages_changed = 0;
            for (size_t p = 0; p * 64 < std::max(t.size(), next.size()); p++)
                for (size_t l = p * 64; l < (p + 1) * 64; l++) {
                    const xdpctl_pfx_line zero{};
                    if (!same(l < t.size() ? t[l] : zero, l < next.size() ? next[l] : zero)) {
                        pages_changed++;
                        break;
                    }
                }
            r = refill_table_map(fd.get(), next);
            expect_holds(fd.get(), map_lines, next, "refilled");
            ASSERT_TRUE(r.guided) << "step " << step << ": the record written last time was not read back";
            guided++;
            // Pages that changed, and the record's own lines when it moves: no more.
            EXPECT_LE(r.lines_written, 64 * pages_changed + 2 * table_record_lines(max_lines) + 64)
                << "step " << step;
            t = next;
        }
        EXPECT_EQ(guided, 120u);
    }
}

TEST(TableRefill, MapWithoutATrustedRecordIsComparedWhole)
{
    XDPCTL_REQUIRE_ROOT();
    std::mt19937_64 rng(7);
    const uint32_t map_lines = 2048;
    UniqueFd fd = make_map(map_lines);
    ASSERT_TRUE(fd);
    Lines a(900), b(1500);
    for (auto& l : a)
        l = random_line(rng);
    for (auto& l : b)
        l = random_line(rng);

    // Filled by an older xdpctl: everything past the table zeroed, no record.
    refill_table_map(fd.get(), b, true);
    fill_prefix_table_map(fd.get(), std::span<const xdpctl_pfx_line>(a));
    TableRefill r = refill_table_map(fd.get(), b);
    EXPECT_FALSE(r.guided);
    expect_holds(fd.get(), map_lines, b, "after an older xdpctl's fill");

    // A record whose print of a page no longer matches the page (a byte of it changed):
    // its check fails, and the page is compared, not trusted.
    const uint32_t print_line = map_lines - uint32_t(table_record_lines(b.size()));
    xdpctl_pfx_line l{};
    ASSERT_EQ(bpf_map_lookup_elem(fd.get(), &print_line, &l), 0);
    l.byte[3] ^= 1;
    ASSERT_EQ(bpf_map_update_elem(fd.get(), &print_line, &l, BPF_ANY), 0);
    const uint32_t line5 = 5;
    xdpctl_pfx_line junk = random_line(rng);
    ASSERT_EQ(bpf_map_update_elem(fd.get(), &line5, &junk, BPF_ANY), 0);
    r = refill_table_map(fd.get(), b);
    EXPECT_FALSE(r.guided);
    expect_holds(fd.get(), map_lines, b, "after a damaged record");

    // A refill cut short after it cleared the head: not trusted either.
    const uint32_t head = map_lines - 1;
    const xdpctl_pfx_line zero{};
    ASSERT_EQ(bpf_map_update_elem(fd.get(), &head, &zero, BPF_ANY), 0);
    ASSERT_EQ(bpf_map_update_elem(fd.get(), &line5, &junk, BPF_ANY), 0);
    r = refill_table_map(fd.get(), a);
    EXPECT_FALSE(r.guided);
    expect_holds(fd.get(), map_lines, a, "after a refill cut short");
    r = refill_table_map(fd.get(), b);
    EXPECT_TRUE(r.guided);
    expect_holds(fd.get(), map_lines, b, "guided again");

    // No room for a record after the table: filled whole, and the old record zeroed.
    Lines full(map_lines - 1);
    for (auto& x : full)
        x = random_line(rng);
    r = refill_table_map(fd.get(), full);
    EXPECT_FALSE(r.guided);
    const Lines got = read_map(fd.get(), map_lines);
    EXPECT_TRUE(std::equal(full.begin(), full.end(), got.begin(), same));
    EXPECT_TRUE(same(got.back(), zero));
    r = refill_table_map(fd.get(), a);
    EXPECT_FALSE(r.guided);
    expect_holds(fd.get(), map_lines, a, "after a table with no room for its record");
}

// A table whose last page reaches into its record: the page's print says its lines past the
// table are zero, the map holds the record there. A smaller next table moves the record up:
// the old record's first line must end up zero, though the page's prints agree.
TEST(TableRefill, RecordInsideTheTablesLastPageIsNotTakenForZeros)
{
    XDPCTL_REQUIRE_ROOT();
    std::mt19937_64 rng(3);
    const uint32_t map_lines = 576;  // 9 pages
    UniqueFd fd = make_map(map_lines);
    ASSERT_TRUE(fd);
    // 573 lines: 9 pages, a record of 3 lines at 573; lines 512-572 zero.
    Lines a(573);
    for (size_t l = 0; l < 512; l++)
        a[l] = random_line(rng);
    ASSERT_EQ(a.size() + table_record_lines(a.size()), map_lines);
    refill_table_map(fd.get(), a, true);
    expect_holds(fd.get(), map_lines, a, "first");
    // 512 lines: 8 pages, a record of 2 lines at 574.
    const Lines b(a.begin(), a.begin() + 512);
    ASSERT_EQ(table_record_lines(b.size()), 2u);
    const TableRefill r = refill_table_map(fd.get(), b);
    EXPECT_TRUE(r.guided);
    expect_holds(fd.get(), map_lines, b, "smaller");
}
