// Sets' own prefix tables (abi: "Sets' own tables"; docs/prefix-sets.md, "A set's own table"):
// a set named in a split address field is looked up in a table of its own, in a slot of
// xdpctl_pset, with its IPv4 level 1 in the same element of xdpctl_psl1. A table is built when
// its set's entries change and is found again by their print (kept in the table's header), so
// a commit that leaves the set as it is neither reads the set into a table nor writes one.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "abi/xdpctl_abi.h"
#include "policy/rule.h"

namespace xdpctl::policy {

// The print of a set's entries (never 0): equal entries, equal prints; different ones differ
// with a chance of about 2^-64.
uint64_t set_print(const PrefixSet& s);

// Slot -> the print of the set whose table is in it (0: none, or a freed slot's placeholder).
std::array<uint64_t, XDPCTL_POL_SET_SLOTS> set_slot_prints(int pset_fd);

// Builds `s`'s table (leaf 1: member, XDPCTL_PFX_EXCEPTED: excepted) and puts it into `slot`,
// its level 1 into psl1's element first. No packet may read the slot meanwhile (no
// generation refers to it). The map-in-map update waits one grace period.
void install_set_table(int pset_fd, int psl1_fd, uint32_t slot, const PrefixSet& s, bool sparse);

}  // namespace xdpctl::policy
