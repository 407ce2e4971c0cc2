// PolicyStore::change_set_in_place: `set add` / `set del` of a few prefixes without a commit
// (docs/prefix-sets.md, "Changing a set in place"). A split field's class is
// node_class[node << sets | membership]: a change of a set's members changes no class, row or
// rule, only the set's own table, when every field that names the set is split by it. So the
// command decodes nothing of the stored policy: the last commit's index of its sets
// (stored_image.h) says where the set's entries lie in the image, their print and the fields
// that name the set; its IPv4 entries lie sorted, six bytes each, so a binary search over the
// image's chunks finds what bears on a /16. It patches the set's table (set_tables.h) and
// stores the change beside the image.
#include <algorithm>
#include <cstring>
#include <map>

#include "attach/loaded_abi.h"
#include "policy/commit_trace.h"
#include "policy/policy_maps.h"
#include "policy/policy_store.h"
#include "policy/set_splice.h"
#include "policy/set_tables.h"
#include "policy/stored_image.h"
#include "state/set_journal.h"

namespace xdpctl::policy {

namespace {

// A stored set's entries as the image holds them (policy_binary.h, ImageSet), and the changes
// stored or made since, as "is it a member now" of each entry they touch.
class StoredSet {
public:
    StoredSet(StoredImageBytes& image, const StoredSetIndex& s)
        : v4_(s.at.v4_count, [&image, at = s.at.offset](size_t off, void* out, size_t n) { image.copy(at + off, out, n); })
    {
    }

    SetEntry v4(size_t i) const { return v4_.at(i); }
    size_t lower_bound(const SetEntry& e) const { return v4_.lower_bound(e); }
    bool in_image(const SetEntry& e) const { return v4_.contains(e); }
    bool member(const SetEntry& e) const
    {
        auto it = now_.find(e);
        return it != now_.end() ? it->second : in_image(e);
    }
    void set(const SetEntry& e, bool member) { now_[e] = member; }

    // The sum of the entries' prints (set_tables.h) now, given the image's.
    uint64_t print_sum(uint64_t image_sum) const
    {
        for (const auto& [e, m] : now_)
            image_sum += (uint64_t(m) - uint64_t(in_image(e))) * set_entry_print(e);
        return image_sum;
    }

    // Every entry that is a member now and bears on IPv4 /16 `x`: inside it, or /16 or shorter
    // above it.
    std::vector<SetEntry> entries_of16(uint32_t x) const
    {
        std::vector<SetEntry> out;
        auto bears = [x](const SetEntry& e) {
            if (e.prefix.family != Family::v4)
                return false;
            const uint32_t a = uint32_t(e.prefix.addr[0]) << 8 | e.prefix.addr[1];  // top 16 bits
            return e.prefix.len >= 16 ? a == x : e.prefix.len == 0 || a >> (16 - e.prefix.len) == x >> (16 - e.prefix.len);
        };
        auto keep = [&](const SetEntry& e) {
            if (!now_.count(e))
                out.push_back(e);
        };
        SetEntry first;
        first.prefix.addr[0] = uint8_t(x >> 8);
        first.prefix.addr[1] = uint8_t(x);
        for (size_t i = lower_bound(first); i < v4_.count(); i++) {
            const SetEntry e = v4(i);
            if (uint32_t(e.prefix.addr[0]) << 8 != (x & 0xff00) || e.prefix.addr[1] != uint8_t(x))
                break;
            keep(e);
        }
        for (uint8_t len = 0; len < 16; len++) {
            SetEntry e;
            const uint32_t top = len ? x >> (16 - len) << (16 - len) : 0;
            if (top == x)
                continue;  // at the /16's own first address: found above
            e.prefix.addr[0] = uint8_t(top >> 8);
            e.prefix.addr[1] = uint8_t(top);
            e.prefix.len = len;
            for (bool ex : {false, true}) {
                e.except = ex;
                if (in_image(e))
                    keep(e);
            }
        }
        for (const auto& [e, m] : now_)
            if (m && bears(e))
                out.push_back(e);
        return out;
    }

private:
    StoredV4Entries v4_;
    std::map<SetEntry, bool, decltype(&set_entry_less)> now_{set_entry_less};
};

}  // namespace

bool PolicyStore::change_set_in_place(const std::string& name, const std::vector<SetEntry>& added,
                                      const std::vector<SetEntry>& removed, state::SetChange* applied)
{
    if (applied)
        *applied = {};
    for (const auto* list : {&added, &removed})
        for (const SetEntry& e : *list)
            if (e.prefix.family != Family::v4 || e.prefix.len < 16)
                return false;
    if (!maps_->installed() || !maps_->can_split() || oldest_loaded_abi() < 3)
        return false;
    CommitTrace trace;  // XDPCTL_TRACE_COMMIT: the phases of a change in place
    const uint32_t gen = maps_->active_gen();
    const uint64_t commits = maps_->commits();
    std::optional<StoredSets> index = read_set_index(src_.get(), gen, commits);
    if (!index)
        return false;  // no index of this commit count: commit
    auto it = std::find_if(index->sets.begin(), index->sets.end(), [&](const StoredSetIndex& s) { return s.at.name == name; });
    if (it == index->sets.end())
        return false;  // no such set: the commit path says so
    const std::vector<StoredSetChange> stored = read_set_changes(src_.get(), gen, index->base);
    if (stored.size() >= kMaxSetChanges)
        return false;  // a commit folds them into the image
    StoredImageBytes image(src_.get(), gen);
    StoredSet set(image, *it);
    for (const StoredSetChange& c : stored) {
        if (c.set != name)
            continue;
        std::vector<std::pair<SetEntry, bool>> ops;
        if (state::journal_ops(c.record, ops) != c.record.size())
            return false;
        for (const auto& [e, m] : ops)
            set.set(e, m);
    }
    // The change, as the commit path makes it: the added entries, then each removed one,
    // which must be there.
    state::SetChange change;
    std::map<SetEntry, bool, decltype(&set_entry_less)> was(set_entry_less);
    for (const SetEntry& e : added) {
        SetEntry other = e;
        other.except = !e.except;
        if (set.member(other))
            return false;  // both a member and an exception: the commit's check says so
        was.try_emplace(e, set.member(e));
        set.set(e, true);
    }
    for (const SetEntry& e : removed) {
        if (!set.member(e))
            return false;  // not in the set: the commit path says so
        was.try_emplace(e, true);
        set.set(e, false);
    }
    std::vector<Prefix> changed;
    for (const auto& [e, before] : was)
        if (set.member(e) != before) {
            (before ? change.removed : change.added).push_back(e);
            changed.push_back(e.prefix);
        }
    if (changed.empty())
        return true;  // the set is as it was
    trace.mark("in place: change");
    // The print before the change finds the set's table.
    const uint64_t sum_after = set.print_sum(index->sum_of(*it));
    uint64_t sum_before = sum_after;
    for (const SetEntry& e : change.added)
        sum_before -= set_entry_print(e);
    for (const SetEntry& e : change.removed)
        sum_before += set_entry_print(e);
    const std::optional<uint32_t> slot = maps_->set_patch_slot(set_print_of_sum(sum_before), it->fields);
    trace.mark("in place: print");
    if (!slot)
        return false;
    const std::optional<SetPatch> patch = stage_set_patch(maps_->set_tables_fd(), *slot, changed,
                                                          [&](uint32_t x) { return set.entries_of16(x); });
    trace.mark("in place: lines");
    if (!patch)
        return false;
    // The change stored before a packet sees it: a command killed between the two leaves the
    // table with the print before, which the next commit does not take for the set's.
    if (!append_set_change(src_.get(), gen, stored.size(),
                           {name, state::encode_journal_record(index->base, change)}))
        return false;
    publish_set_patch(maps_->set_tables_fd(), maps_->set_l1_fd(), *patch, set_print_of_sum(sum_after));
    // The count, then the index for it (read_set_index takes one a count short).
    maps_->count_change_in_place();
    index->now = commits + 1;
    write_set_index(src_.get(), gen, *index);
    trace.mark("in place: published");
    if (applied) {
        *applied = std::move(change);
        if (index->exact_sums)
            applied->print_sums = {sum_before, sum_after};
    }
    return true;
}

}  // namespace xdpctl::policy
