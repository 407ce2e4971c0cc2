// Sets' own prefix tables (abi: "Sets' own tables"; docs/prefix-sets.md, "A set's own table"):
// a set named in a split address field is looked up in a table of its own, in a slot of
// xdpctl_pset, with its IPv4 level 1 in the same element of xdpctl_psl1. A table is built when
// its set's entries change and is found again by their print (kept in the table's header), so
// a commit that leaves the set as it is neither reads the set into a table nor writes one.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "abi/xdpctl_abi.h"
#include "policy/rule.h"

namespace xdpctl::policy {

// The print of a set's entries (never 0): equal entries, equal prints; different ones differ
// with a chance of about 2^-64. A sum of the entries' own prints, so that `set add` and
// `set del` can say what the set's print becomes from the entries they change.
uint64_t set_print(const PrefixSet& s);
uint64_t set_entry_print(const SetEntry& e);
// set_print() of a set whose entries' prints sum to `sum`.
inline uint64_t set_print_of_sum(uint64_t sum)
{
    return sum ? sum : 1;
}

// Slot -> the print of the set whose table is in it (0: none, or a freed slot's placeholder).
std::array<uint64_t, XDPCTL_POL_SET_SLOTS> set_slot_prints(int pset_fd);

// Builds `s`'s table (leaf 1: member, XDPCTL_PFX_EXCEPTED: excepted) and puts it into `slot`,
// its level 1 into psl1's element first. No packet may read the slot meanwhile (no
// generation refers to it). The map-in-map update waits one grace period.
void install_set_table(int pset_fd, int psl1_fd, uint32_t slot, const PrefixSet& s, bool sparse);

// `set add` / `set del` of a few IPv4 prefixes of /16 or longer, without a commit
// (docs/prefix-sets.md, "Changing a set in place"): each /16 they touch gets new lines
// (its level-2 chunk, the level-3 chunks and sparse lines of the /24s the change touches;
// the others' are shared with the lines before) in the room the table has past its lines,
// then its level-1 word is switched, one aligned 4-byte store, so a packet reads the /16's
// old lines or its new ones. The old lines are never reused, so no grace period is waited
// for; the next build of the table (when the room runs out, or a commit that rebuilds it)
// gives their room back.
//
// Staged first (the new lines written, nothing a packet reads changed, the room taken
// recorded in the header), then published (the level-1 words, then the set's print).
struct SetPatch {
    uint32_t slot = 0;
    std::vector<std::pair<uint32_t, uint32_t>> l1;  // /16 (top 16 address bits) -> its new level-1 word
};
// The set's entries after the change that bear on the /16 `x16` (its top 16 address bits):
// those inside it and those of /16 or shorter that cover it, any order.
using SetEntriesOf16 = std::function<std::vector<SetEntry>(uint32_t x16)>;
// nullopt, having changed nothing a packet reads, when the change does not fit: a prefix
// shorter than /16 or of IPv6, a table without room (an older xdpctl's, or full).
std::optional<SetPatch> stage_set_patch(int pset_fd, uint32_t slot, const std::vector<Prefix>& changed,
                                        const SetEntriesOf16& entries_of16);
// Switches the staged /16s' level-1 words (xdpctl_psl1's and the table's own copy), then
// records `print`, the set's print after the change, in the table's header.
void publish_set_patch(int pset_fd, int psl1_fd, const SetPatch& patch, uint64_t print);

}  // namespace xdpctl::policy
