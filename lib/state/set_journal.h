// A set's journal (set.KEY.log beside its base file set.KEY): what `set add` and `set del`
// changed since the base was written, so that adding one prefix to a 1,000,000-prefix set
// appends a few dozen bytes instead of rewriting ~6 MiB (docs/service.md, "State directory").
//
// A record: "XSJ1", the entry count (u32), the generation that wrote it (u64), per entry an
// op byte (1 added, 0 removed), family, length, exception flag and 16 address bytes, then a
// checksum64 of everything before it in the record; little-endian. The manifest names how
// many bytes of the journal belong to its generation: a record appended by a writer killed
// before its manifest was renamed lies past that length, is never read, and is cut off by
// the next append.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy/rule.h"

namespace xdpctl::state {

struct SetChange {
    std::vector<policy::SetEntry> added, removed;  // each sorted as PrefixSet::normalize sorts
    // When known (a change in place: PolicyStore::change_set_in_place), the sums of the set's
    // entries' prints (set_tables.h) before and after it: what the state directory's key of
    // the set follows from, without a pass over its entries.
    std::optional<std::pair<uint64_t, uint64_t>> print_sums;
    size_t size() const { return added.size() + removed.size(); }
};

// What turns `before` into `after` (both normalized): one pass over each.
SetChange diff_sets(const policy::PrefixSet& before, const policy::PrefixSet& after);

std::string encode_journal_record(uint64_t generation, const SetChange& c);

// Applies the whole records at the start of `bytes` to `s` (normalized, stays so) in order
// and returns how many bytes they took: a record cut short or failing its checksum ends it.
size_t replay_journal(policy::PrefixSet& s, std::string_view bytes);

// The ops of the whole records at the start of `bytes`, in order (true: added), and how many
// bytes they took, as replay_journal reads them.
size_t journal_ops(std::string_view bytes, std::vector<std::pair<policy::SetEntry, bool>>& ops);

}  // namespace xdpctl::state
