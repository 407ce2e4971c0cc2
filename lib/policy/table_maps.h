// The inner maps of the policy's map-in-map slots (xdpctl_ptabs, xdpctl_pset): making one of
// prefix-table lines, reading and filling slots. Shared by the commit (policy_maps.cpp) and
// the sets' own tables (set_tables.cpp).
#pragma once

#include <bpf/bpf.h>

#include <cstdint>
#include <vector>

#include "policy/prefix_table.h"
#include "policy/rule.h"
#include "util/unique_fd.h"

namespace xdpctl::policy {

Prefix4 to_prefix4(const Prefix& p);
Prefix6 to_prefix6(const Prefix& p);
// The map's info; throws naming `what`.
bpf_map_info map_info_of(int fd, const char* what);
// A new mmapable inner map of `lines` zeroed prefix-table lines.
UniqueFd create_lines_map(const char* name, uint64_t lines);
// The inner map's id in `slot` of an ARRAY_OF_MAPS, 0 for an empty slot.
uint32_t slot_map_id(int outer_fd, uint32_t slot);
// Whether map `map_id` is the one-line map that stands in a freed slot.
bool is_placeholder(uint32_t map_id);
// Points each of `keys` at the map of the same index in `fds`: one batch update, one grace period.
void update_slots(int outer_fd, std::vector<uint32_t> keys, std::vector<uint32_t> fds);
// Empties `keys` (a one-line placeholder takes each): one batch update, one grace period.
void free_slots(int outer_fd, const std::vector<uint32_t>& keys);

}  // namespace xdpctl::policy
