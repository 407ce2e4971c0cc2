// A policy address table refilled in place, page by page where it changed.
//
// A commit refills the address table its target generation held two commits ago. Before,
// it read all of that map to find what differs (write_changed): a 10,000-rule table is
// ~9.4 MiB, and reading a map's pages through a new mapping costs ~3 us a page, writing
// ~9 us (calls cheap, no microcode: a PVM guest), so a `rule add` of a new prefix spent
// 7-15 ms there while one 4 KiB page or a few changed. Now the map carries, past the table,
// a record of what it holds: a print (XXH3, seeded) of each 4 KiB page of the table. The
// refill prints the new table's pages (~1 ms at 9.4 MiB), compares, and writes only the
// lines of pages whose print differs, with one batch update: no mapping at all.
//
// Map layout (lines of 64 bytes; M lines in all, the table T):
//   [0, T)            the table
//   [T, M - R)        zero
//   [M - R, M - 1)    the prints, 8 to a line, of the table's pages [0, ceil(T / 64)),
//                     each page read as its 64 lines with those past T zero
//   M - 1             the record's head (magic, version, seed, T, M, a check of the rest)
// R = table_record_lines(T). The datapath never reads past the table's own references.
// A map whose head is not a valid record (made by an older xdpctl, whose refill zeroes all
// past its table; or left by a refill cut short: the head is zeroed first and written last)
// is refilled the old way, by comparing all of it, and gets a record then.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "abi/xdpctl_abi.h"

namespace xdpctl::policy {

// Lines a map needs past a table of `table_lines` for its record.
uint64_t table_record_lines(uint64_t table_lines);

struct TableRefill {
    bool guided = false;        // the map's record said what it held
    size_t pages = 0;           // pages compared
    size_t lines_written = 0;   // lines written (table lines and zeros, not the record)
};

// Writes `lines` into the mmapable array of lines `map_fd` as laid out above. A map with no
// room for the record after the table is filled the old way, with no record. `fresh`: the
// map was just made (all zero), so nothing of it is read. Throws Error.
TableRefill refill_table_map(int map_fd, std::span<const xdpctl_pfx_line> lines, bool fresh = false);

}  // namespace xdpctl::policy
