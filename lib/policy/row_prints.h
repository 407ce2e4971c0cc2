// The prints (RowTable::prints) of the rows a generation's rows map holds, kept in that map
// past its rows. A commit refills the spare generation, which holds the rows of two commits
// ago: with their prints at hand it writes the rows whose print changed and reads no other,
// where it compared every row (~24 MiB at 10,000 rules, ~5 ms) to find the few that differ.
//
// The area is only trusted when the commit that wrote it was the one that wrote the
// generation last (its commit number, the control map's count two commits back) and the
// rows sit where they sat then; a commit clears it before it writes a row, so a commit cut
// short, or one by an xdpctl that knows no prints, leaves nothing that would be believed.
// The datapath never reads it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "abi/xdpctl_abi.h"
#include "policy/compiled_policy.h"

namespace xdpctl::policy {

// Where one direction's rows sit in the rows map (0 rules: none).
struct RowPlace {
    uint32_t n_rules = 0, words = 0, agg_words = 0, row_lines = 0, rows_per_elem = 0, rows_elem = 0;
    uint32_t n_rows = 0;
    bool same_spot(const RowPlace& o) const
    {
        return n_rules && o.n_rules && words == o.words && agg_words == o.agg_words && row_lines == o.row_lines &&
               rows_per_elem == o.rows_per_elem && rows_elem == o.rows_elem;
    }
};

class RowPrintArea {
public:
    // Elements of the rows map the prints of `rows` rows take (after the rows' elements).
    static uint64_t elems_for(uint64_t rows);

    // The area at element `at` of `map` (all of a rows map's lines). The prints it holds
    // count when it was written by commit `held_commit` for rows placed as `now` places
    // them (per direction).
    RowPrintArea(std::span<xdpctl_pol_row_line> map, uint64_t at, uint64_t held_commit,
                 const RowPlace (&now)[XDPCTL_POL_DIRS]);

    // The print the map holds for row r of direction d, when known.
    const RowPrint* held(uint32_t d, uint32_t r) const
    {
        return r < held_[d].size() ? &held_[d][r] : nullptr;
    }
    // Clears the area: from here until write(), no print in it is believed.
    void clear();
    // Records `prints` (per direction) as what the map holds, by commit `commit`.
    void write(uint64_t commit, const RowPlace (&now)[XDPCTL_POL_DIRS],
               const std::vector<RowPrint> (&prints)[XDPCTL_POL_DIRS]);

private:
    std::span<xdpctl_pol_row_line> lines_;  // the area's lines
    std::vector<RowPrint> held_[XDPCTL_POL_DIRS];
};

}  // namespace xdpctl::policy
