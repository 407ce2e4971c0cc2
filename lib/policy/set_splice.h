// A stored set's entries read and changed without decoding them. A normalized set's IPv4
// entries come first in its stored bytes, sorted, six bytes each (policy_binary.h), so one
// entry is found by a binary search of ~20 reads, and a change of a few entries is a splice
// of a few six-byte pieces into bytes left where they are: what `set add` in place looks up,
// and how a rule command reads a set changed in place since the last commit (a streamed
// merge of 1M entries cost ~10-15 ms of such a `rule add`, calls cheap: no microcode).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "policy/rule.h"

namespace xdpctl::policy {

// The IPv4 entries of a stored set read one at a time through `copy(offset from the first
// entry, out, n)`.
class StoredV4Entries {
public:
    using Copy = std::function<void(size_t offset, void* out, size_t n)>;
    StoredV4Entries(size_t count, Copy copy) : count_(count), copy_(std::move(copy)) {}
    size_t count() const { return count_; }
    SetEntry at(size_t i) const;
    // The first entry not before `e` in a normalized set's order (count() when none is).
    size_t lower_bound(const SetEntry& e) const;
    // `e` is one of them (never an entry of another family).
    bool contains(const SetEntry& e) const;

private:
    size_t count_;
    Copy copy_;
};

// `u`'s entries (a normalized set's, as stored) with `ops` applied in order (the last op on an
// entry wins, as replay_journal applies them), left undecoded: the result's bytes are u's with
// the changed entries spliced in or out, read from u's as something needs them. `print_sum`
// (the sum of u's entries' prints, set_tables.h) becomes the result's. nullopt when an op is
// not of an IPv4 entry (changes in place never are: PolicyStore::change_set_in_place).
std::optional<UndecodedEntries> splice_set_changes(const UndecodedEntries& u,
                                                   const std::vector<std::pair<SetEntry, bool>>& ops,
                                                   uint64_t& print_sum);

}  // namespace xdpctl::policy
