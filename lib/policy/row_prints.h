// What a generation's rows map holds, recorded in its last element: the prints of its rows
// (RowTable::prints), of the inputs of its address tables and of its other tables' bytes
// (FixedPrints). A commit refills the spare generation, which holds the policy of two commits
// ago: with these at hand it writes only the rows whose print changed and reads no other (it
// compared every row, ~24 MiB at 10,000 rules, ~5 ms, to find the few that differ), and leaves
// an address table whose classes did not change where it is (building and comparing one of
// 10,000 prefixes took ~5 ms). The rows' prints also name the generation's classes, which the
// next commit's keep their ids after (align_classes()), so that a new class does not move the
// others.
//
// The record is only believed when the commit that wrote it was the one that wrote the
// generation last (its number, the control map's count two commits back) and, for rows, they
// sit where they sat then; a commit clears it before it writes anything of the generation, so
// a commit cut short, or one by an xdpctl that keeps no record, leaves nothing that would be
// believed. The datapath never reads it.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "abi/xdpctl_abi.h"
#include "policy/compiled_policy.h"
#include "policy/prefix_table.h"

namespace xdpctl::policy {

// Where one direction's rows sit in the rows map (n_rules 0: none).
struct RowPlace {
    uint32_t n_rules = 0, words = 0, agg_words = 0, row_lines = 0, rows_per_elem = 0, rows_elem = 0;
    bool same_spot(const RowPlace& o) const
    {
        return n_rules && o.n_rules && words == o.words && agg_words == o.agg_words && row_lines == o.row_lines &&
               rows_per_elem == o.rows_per_elem && rows_elem == o.rows_elem;
    }
};

// An address table as the generation holds it: the map in its slot, and the print of what
// it was built from (table_print()).
struct HeldTable {
    RowPrint print;
    uint32_t map_id = 0;
};
// Per direction, source and destination.
using HeldTables = std::optional<HeldTable>[XDPCTL_POL_DIRS][2];

// The print of an address table's inputs: its classes (both families) and its format.
RowPrint table_print(const AddrClassTable& v4, const AddrClassTable& v6, TableLayout layout);

// The generation's other tables, by direction: the port fields' class tables (xdpctl_pport),
// L4's, VLAN's and the interfaces' (xdpctl_pl4, xdpctl_pvlan, xdpctl_piif), the rule records
// (xdpctl_prule) and the anchor lists' element (xdpctl_panc). One whose print equals the one
// recorded is neither read nor written: comparing them through mappings and the anchor
// element by a lookup cost ~1-2 ms of a `rule add` at 10,000 rules that went back to the
// policy of two commits ago (a PVM guest; calls cheap, no microcode).
enum FixedTable : uint32_t {
    kFixedSport,
    kFixedDport,
    kFixedL4,
    kFixedVlan,
    kFixedIif,
    kFixedRecords,
    kFixedAnchors,
    kFixedTables
};
struct FixedPrint {
    uint64_t lo = 0, hi = 0;  // both 0: none recorded
    bool operator==(const FixedPrint&) const = default;
    bool none() const { return !lo && !hi; }
};
using FixedPrints = std::array<std::array<FixedPrint, kFixedTables>, XDPCTL_POL_DIRS>;

// The print of what a table's bytes are (XXH3, 128 bits), seeded by which table it is.
// Pieces are printed one after the other, each with its length.
class FixedPrinter {
public:
    explicit FixedPrinter(FixedTable which);
    ~FixedPrinter();
    FixedPrinter(const FixedPrinter&) = delete;
    FixedPrinter& operator=(const FixedPrinter&) = delete;
    FixedPrinter& add(const void* data, size_t bytes);
    FixedPrint done() const;

private:
    void* state_;
};

class RowPrintArea {
public:
    // Bytes from the element's start that a record of `rows` prints takes.
    static size_t bytes_for(uint64_t rows);
    // Bytes that the record starting with line `head` takes (its first line only when it
    // holds none).
    static size_t recorded_bytes(const xdpctl_pol_row_line& head);

    // The record in `elem`, the start of the last element of a rows map (at least
    // recorded_bytes() of it, for writing bytes_for() the rows), believed when written by
    // commit `held_commit`; rows count when placed as `now` places them.
    RowPrintArea(std::span<xdpctl_pol_row_line> elem, uint64_t held_commit, const RowPlace (&now)[XDPCTL_POL_DIRS]);

    // The print the map holds for row r of direction d, when known.
    const RowPrint* held(uint32_t d, uint32_t r) const
    {
        return same_spot_[d] && r < recorded_[d].size() ? &recorded_[d][r] : nullptr;
    }
    const HeldTables& tables() const { return tables_; }
    // The other tables' prints as recorded (none when the record is not believed).
    const FixedPrints& fixed() const { return fixed_; }
    // All prints recorded for direction d, wherever its rows sat (align_classes()).
    const std::vector<RowPrint>& recorded(uint32_t d) const { return recorded_[d]; }
    // Clears the record: from here until write(), nothing in it is believed.
    void clear();
    // The record whose first line is `head`, believed as by commit `from`, believed as by
    // commit `to` from here on (a change that moved the commit count and left what the record
    // describes as it was); any other record is left as it is.
    static void restamp(xdpctl_pol_row_line& head, uint64_t from, uint64_t to);
    // Records `prints` (per direction), `tables` and `fixed` as what the generation holds, by
    // commit `commit`. Rows too many for the element are not recorded (the next commit
    // compares them).
    void write(uint64_t commit, const RowPlace (&now)[XDPCTL_POL_DIRS],
               const std::vector<RowPrint> (&prints)[XDPCTL_POL_DIRS], const HeldTables& tables,
               const FixedPrints& fixed);

private:
    std::span<xdpctl_pol_row_line> lines_;  // the record's element
    std::vector<RowPrint> recorded_[XDPCTL_POL_DIRS];
    bool same_spot_[XDPCTL_POL_DIRS] = {};
    HeldTables tables_;
    FixedPrints fixed_{};
};

}  // namespace xdpctl::policy
