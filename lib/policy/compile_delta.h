// A commit that adds, deletes or changes a few rules among thousands patches the classes the
// last compile made (kept beside its image: compile_cache.h) where those rules are, instead of
// compiling every rule again: at 10,000 rules the whole compile was ~5-7 ms of a ~25 ms
// `rule add` (calls cheap, no microcode), the patch is a pass over the tables the changed
// rules name.
//
// A rule is known by the print of its match fields (match_print) at its rank: the ranks
// whose print differs between the cached compile and this one are the changes. A rank taken
// out is found in the rows (the classes that hold it), so the old rule itself is not needed;
// a rank put in adds its bit to the classes of the cells its values cover (table entries,
// ports, protocols, VLANs), a prefix no entry has getting an entry of its own. Equal rows stay
// one class and a prefix whose class becomes its parent's loses its entry, as in a whole
// compile, so the tables classify exactly as the whole compile's would (numbered otherwise:
// align_classes numbers them after either).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "policy/compiled_policy.h"

namespace xdpctl::policy {

// The fields a rule matches on (not its id, priority, action or direction) as 64 bits, never 0
// (a free rank's).
uint64_t match_print(const Rule& r);

// Whether a direction holding `r` may be patched: an interface's index changes when it is
// made again, without a commit of its rules. (A rule naming a set is patched where its field
// is split by the sets its rules name, AddrClassTable::split: the classes are then the rules'
// alone, whatever the sets hold; compile_direction checks that.)
bool patchable_rule(const Rule& r);

// More ranks changed than this: the direction is compiled whole.
inline constexpr size_t kMaxPatchedRanks = 32;

// `c`: a cached compile's tables and rows (`old_prints` per rank), patched in place into those
// of `ranked` (rank -> rule, nullptr at a free rank; `prints`: match_print of each, 0 at a free
// rank), all of whose rules are patchable. Classes no table names are dropped and the rest
// renumbered (row_base, n_classes, rows.rows/ranks/dense); rows.base and rows.anchored are
// left to the caller. `split_by`: the sets the source and destination fields are split by
// after the patch (AddrClassTable::split; empty: not split), as a whole compile of `ranked`
// splits them; every set a rule names in a field must be among them. False when more than
// kMaxPatchedRanks ranks changed, rows are of another size, or a field would pass 65,535
// classes: `c` is then not usable.
bool patch_classes(CompiledDirection& c, const std::vector<uint64_t>& old_prints,
                   const std::vector<const Rule*>& ranked, const std::vector<uint64_t>& prints,
                   const std::array<std::vector<std::string>, 2>& split_by);

}  // namespace xdpctl::policy
