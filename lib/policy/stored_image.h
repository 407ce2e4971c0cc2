// The committed policy as xdpctl_psrc holds it: per generation, the binary image
// (policy_binary.h) in chunks of the map's value size, keyed (generation << 24) | chunk, the
// first chunk starting with the image's length (u64). Read by the chunk size the map has,
// not this build's, so an upgrade reads a table an xdpctl of another layout wrote.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "policy/policy_binary.h"
#include "policy/rule.h"

namespace xdpctl::policy {

inline uint32_t stored_image_key(uint32_t gen, uint32_t chunk)
{
    return (gen << 24) | chunk;
}

// The image (or an older xdpctl's text) generation `gen` stored in the map `src_fd`; "" when
// none is stored (the empty policy). Throws when it is cut short. `sized`, when given, is
// called with the image's length before its buffer is made (PolicyStore::current() chooses
// its heap by it).
std::string read_stored_image(int src_fd, uint32_t gen, const std::function<void(uint64_t)>& sized = {});

// The policy such a stored image holds (text from an xdpctl before the binary image is
// parsed). Throws Error naming `source` when it does not decode.
Policy decode_stored(const std::string& stored, const std::string& source, IifIndexes* resolved = nullptr);

// Changes to a set made after the image was stored, without a commit (`set add`/`set del`
// that patch the set's table in place: set_tables.h): beside a generation's image, one map
// element each, keyed (generation << 24) | (kSetChangeChunk + n), written whole by one
// update (a reader sees it or not). Each holds the set's name and a set journal record
// (state/set_journal.h) whose generation field is the set index's `base` (below): records of
// another count are an older image's (an xdpctl before these records does not clear them)
// and are not applied.
inline constexpr uint32_t kSetChangeChunk = 0x800000;
inline constexpr uint32_t kMaxSetChanges = 64;
struct StoredSetChange {
    std::string set;
    std::string record;  // encode_journal_record(commits, change)
};
std::vector<StoredSetChange> read_set_changes(int src_fd, uint32_t gen, uint64_t base);
// False when the generation has kMaxSetChanges already or the map is full: commit instead.
bool append_set_change(int src_fd, uint32_t gen, size_t at, const StoredSetChange& c);
void clear_set_changes(int src_fd, uint32_t gen);
// What the commit that stored a generation's image knew of each set: where its entries lie
// in the image, their print (set_tables.h), and the fields (direction, 0 src / 1 dst) rules
// name it in. One element, key (generation << 24) | kSetIndexChunk, written after the flip.
// `base`: the commit count then, which the set changes stored since carry; `now`: the count
// it holds for (a change in place moves the count, PolicyMaps::count_change_in_place, then
// writes `now`: a count one past it is a change killed in between, whole in the tables). One
// whose `now` is neither the count nor one short of it is not read, nor the changes beside it
// (none: `set add` commits; an xdpctl before it commits with a flip to the other generation,
// whose index is older still).
inline constexpr uint32_t kSetIndexChunk = 0x7fffff;
struct StoredSetIndex {
    ImageSet at;
    uint64_t print = 0;
    std::vector<std::pair<uint32_t, uint32_t>> fields;
};
struct StoredSets {
    uint64_t base = 0, now = 0;
    std::vector<StoredSetIndex> sets;
    // Each print is the sum of the set's entries' prints as the image holds them (0 for an
    // empty set, whose print says 1), and the changes in place since began from that sum. An
    // xdpctl before this index began an empty set's changes from 1, so its sums may be one
    // off: they find tables, but give no state directory key (state_dir.cpp). Written as "XSI2"
    // when set, "XSI1" when not.
    bool exact_sums = true;
    // The sum of `s`'s entries' prints as the image holds them, from its print.
    uint64_t sum_of(const StoredSetIndex& s) const { return exact_sums && !s.at.count ? 0 : s.print; }
};
// `p`'s sets as `where` (encode_policy) puts them, with their `prints`.
std::vector<StoredSetIndex> stored_set_index(const Policy& p, std::vector<ImageSet> where,
                                             const std::map<std::string, uint64_t>& prints);
void write_set_index(int src_fd, uint32_t gen, const StoredSets& index);
// nullopt when there is none for this commit count.
std::optional<StoredSets> read_set_index(int src_fd, uint32_t gen, uint64_t commits);

// Bytes of a stored image read as they are needed, a map element (chunk) at a time.
class StoredImageBytes {
public:
    StoredImageBytes(int src_fd, uint32_t gen);
    void copy(size_t offset, void* out, size_t n);

private:
    int fd_;
    uint32_t gen_, chunk_bytes_;
    std::map<uint32_t, std::vector<char>> chunks_;
};

// `n` bytes from `offset` of the image generation `gen` stored, read a chunk at a time into
// one buffer (nothing kept). Throws when it is cut short.
void copy_stored_bytes(int src_fd, uint32_t gen, size_t offset, char* out, size_t n);

// The policy stored as generation `gen` with the set changes made since (what commands read).
// `as_read`, when given, gets the set index's entry (where in the image, print: set_tables.h)
// of each set whose entries are those of the image, as the commit that stored it computed
// them: a set with a change made since, or without an index for this commit count, is left
// out; and whether the image is of this version (its sets' bytes are what encode_policy
// makes of them). `leave_sets`: such a set's entries are left undecoded (PrefixSet::undecoded),
// for a command that does not change them. `pending`, given with `leave_sets`: a set with
// changes made since is left undecoded too, as the image holds it, and its changes (journal
// records, set_journal.h, in order) go into (*pending)[name] instead of being applied.
struct SetsAsRead {
    std::map<std::string, StoredSetIndex> sets;
    bool image_current = false;
    // With `leave_sets` (and no `pending`): a set changed in place since, left undecoded as
    // the stored bytes with the changes spliced in (set_splice.h: not the image's bytes as
    // they lie), and its print.
    std::map<std::string, uint64_t> spliced;
    // The index's StoredSets::exact_sums (true without one).
    bool exact_sums = true;
    // The sum of `s`'s entries' prints as the image holds them, from its print.
    uint64_t sum_of(const StoredSetIndex& s) const { return exact_sums && !s.at.count ? 0 : s.print; }
};
Policy read_stored_policy(int src_fd, uint32_t gen, uint64_t commits, const std::string& source,
                          IifIndexes* resolved = nullptr, const std::function<void(uint64_t)>& sized = {},
                          SetsAsRead* as_read = nullptr, bool leave_sets = false,
                          std::map<std::string, std::string>* pending = nullptr);

}  // namespace xdpctl::policy
