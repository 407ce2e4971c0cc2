// The filtering policy kept in the pinned maps shared by all interfaces: read the current
// one, commit a new one (one generation flip), read rule counters. Every policy command
// (rule, set, policy default, apply) is read -> change -> commit.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "abi/xdpctl_abi.h"
#include "util/error.h"
#include "policy/compile_cache.h"
#include "policy/rank_gaps.h"
#include "policy/rule.h"
#include "policy/stored_image.h"
#include "util/task_pool.h"
#include "util/unique_fd.h"
#include "util/writer_lock.h"

namespace xdpctl::state {
struct SetChange;
}

namespace xdpctl::policy {

class PolicyMaps;

struct RuleCounters {
    uint64_t packets = 0, bytes = 0;
    uint64_t last_hit_ns = 0;  // CLOCK_MONOTONIC (bpf_ktime_get_ns), 0: never
    // --log: decision events sent, and not sent (over the rule's rate); lib/trace/log_state.h
    uint64_t events = 0, events_not_sent = 0;
};

class PolicyStore {
public:
    // A writer holds the writer lock (writer_lock.h) for the store's life; a reader does
    // not wait for it, and reads through read_consistent(). Creates the shared maps if
    // needed (a reader takes the lock for that). --iif names do not depend on the command's
    // namespace: each rule records its own (iif_resolve.h).
    // `settle_now`: a writer starts waiting out the packets on the generation before the
    // active one at once (beside reading the policy); false for a command that may not commit
    // (`set add`, which may change the set in place): commit() waits then.
    explicit PolicyStore(Access access = Access::write, bool settle_now = true);
    ~PolicyStore();

    // The committed policy (empty, default pass, before the first commit). `resolved`, when
    // given, gets the ifindex each --iif rule's name had at that commit (0: not found).
    Policy current(IifIndexes* resolved = nullptr) const;
    // current() for a command that changes no set (`rule add`/`del`): each set the stored set
    // index places in the image, with no change made in place since, is left undecoded
    // (PrefixSet::undecoded: ~16-27 ms and ~20 MiB a 1M-prefix set). commit_sets_as_read()
    // takes such sets as they are (their bytes, their print); commit() decodes them.
    Policy current_rules() const;
    // The policy as stored, every set the index places in the image left undecoded as it
    // holds it, also one changed in place since: those changes (journal records, in order)
    // go into pending[name]. What `set add` needs to record its change in the state
    // directory without decoding a set (state_record.h: set_changed_in_place).
    Policy current_as_stored(std::map<std::string, std::string>& pending) const;
    // Checks `next`, gives rules without an id the next free ids, resolves every --iif
    // name in its rule's namespace, compiles it and switches every interface to it at once.
    // Returns the policy as committed.
    Policy commit(Policy next);
    // An upgrade's commit into policy maps it has just recreated in a new layout (no program
    // runs on them yet): `p` as it was in force, each rule in the counter slot it had there
    // (`slots`, by rule id), so the counters carried over by slot stay each rule's.
    Policy commit_in_slots(Policy p, const std::unordered_map<uint32_t, uint32_t>& slots);
    // commit() of a policy whose sets are those the last current() read, not changed since
    // (a rule command): each set's print (what finds its table, set_tables.h) is the one the
    // stored set index gives (the commit that stored them computed it), not a sum over its
    // entries again (~9 ms at 1M). A set with a change stored in place since, or whose entry
    // count differs from what was read, has its print computed.
    Policy commit_sets_as_read(Policy next);
    // For a command that exits soon after its commits (`rule add`, `set add`, `apply`): each
    // commit leaves the wait for the packets still on the generation before it to a keeper
    // process that outlives the command (grace_keeper.h), where grace periods are not
    // expedited, so that the next command finds it over. A process that goes on (xdpd,
    // tests) leaves it to the next commit, which waits in a thread beside its work.
    void exits_after_commit() { exits_after_commit_ = true; }
    // Resolves the --iif names again (--iif-pending ones that appeared, names that went or
    // moved to another ifindex) and commits the current policy if any changed. Returns
    // whether it committed. A daemon calls this on RTM_NEWLINK / RTM_DELLINK; until there
    // is one, every commit does the same.
    bool resolve_pending();
    // Commits the current policy again when it has --iif rules: what they match is the key of
    // their interface where xdpctl is loaded (iif_resolve.h), which a load or an unload
    // changes. Returns whether it committed.
    bool refresh_iif_keys();
    // `set add` / `set del` of `added` / `removed` (each entry of IPv4, /16 or longer) to
    // the set `name` without a commit, when only the set's own table holds its members:
    // its table is patched in place (set_tables.h), the change stored beside the policy's
    // image (stored_image.h); no generation, class, row or rule changes. False, having
    // changed nothing packets or readers see, when that does not apply (the set is merged
    // into a field's classes, its table has no room, a prefix shorter than /16 or of IPv6,
    // a member that the change would also make an exception, ...): commit() then.
    // Throws a usage error for a removed entry the set does not hold.
    // `applied`, when given, gets the change as made (state/set_journal.h: what the set
    // journal records; empty when the set was as it was already).
    bool change_set_in_place(const std::string& name, const std::vector<SetEntry>& added,
                             const std::vector<SetEntry>& removed, state::SetChange* applied = nullptr);
    // Every check commit runs before it changes anything (ids, limits, compiling, the
    // stored size), changing nothing: what `apply --dry-run` runs.
    Policy check(Policy next) const;
    // The checks of check() that do not depend on this host (its interfaces, the programs
    // loaded here, its maps): what `xdpctl fleet push` runs before it hands a file to every
    // host of a fleet, each of which runs check() itself. Needs no privileges.
    static Policy check_portable(Policy next);
    // Counters by rule id, summed over CPUs.
    std::map<uint32_t, RuleCounters> counters() const;
    uint64_t commits() const;
    // CLOCK_REALTIME of the last commit in ns (maps/xdpctl_pcommit, abi/xdpctl_abi.h); 0 when
    // none was recorded (no commit yet, or only by an xdpctl before it).
    uint64_t last_commit_unix_ns() const;

    // For a reader, which holds no lock: runs read() (current(), counters(), ...) again
    // until no commit came in between, since a commit may rewrite what it reads (the
    // stored text of the generation before the last one). A read that fails while a commit
    // came is a torn one, tried again; one that fails without is a real error.
    template <typename F>
    auto read_consistent(F&& read) const -> decltype(read())
    {
        for (int attempt = 1;; attempt++) {
            const uint64_t before = commits();
            try {
                auto result = read();
                if (commits() == before)
                    return result;
            } catch (const std::exception&) {
                if (commits() == before)
                    throw;
            }
            if (attempt == max_read_attempts)
                fail("the policy changed {} times while it was read: try again", attempt);
        }
    }

    // Whether the last commit patched the compile the one before kept (compile_delta.h), not
    // compiled every rule: for the trace and the tests.
    bool last_commit_patched() const { return last_patched_; }

private:
    static constexpr int max_read_attempts = 100;
    // current(), or current_rules() with `leave_sets`, or current_as_stored() with `pending`.
    Policy read_current(IifIndexes* resolved, bool leave_sets,
                        std::map<std::string, std::string>* pending = nullptr) const;
    // Ids for rules without one, sets normalized, check_policy.
    // `as_read`: sets whose entries are a commit's, unchanged (commit_sets_as_read), neither
    // normalized nor checked again.
    static void complete(Policy& next, const std::function<bool(const PrefixSet&)>& as_read = {});
    static void check_stored_size(size_t image_bytes);
    // The policy as committed (policy_binary.h), per generation, in chunks of xdpctl_psrc.
    std::string read_stored(uint32_t gen) const;
    bool last_patched_ = false;  // last_commit_patched()
    // The id of the map holding the stored policy: what the kept compile is for.
    uint32_t maps_id() const;
    void write_stored(uint32_t gen, const ImagePieces& image);
    void clear_stored(uint32_t gen);
    void record_commit_time();

    std::optional<WriterLock> lock_;
    const std::unordered_map<uint32_t, uint32_t>* seed_slots_ = nullptr;  // commit_in_slots
    // The sets' prints and entry counts as the last current() read them (read_stored_policy),
    // and whether the commit under way may take them (commit_sets_as_read).
    mutable SetsAsRead sets_read_;
    mutable uint32_t read_gen_ = 0;  // the generation whose image they are in
    bool sets_as_read_ = false;
    bool exits_after_commit_ = false;
    UniqueFd src_;
    std::unique_ptr<PolicyMaps> maps_;
    // The ranks generation read_gen_ gives its rules (rank_gaps.h), read once its image is
    // decoded, beside what follows: mapping its rule records is ~1 ms where the hypervisor
    // tracks page tables, which the commit would otherwise wait for before its compile. After maps_: it
    // reads them, and is joined before they go.
    // Then, in the same thread, the compile the last commit kept (compile_cache.h).
    struct InForce {
        RankHints ranks;
        std::optional<CompileCache> compiled;
    };
    mutable Task<InForce> in_force_read_;
    // A writer's wait for the packets still on the generation before the active one
    // (settle_pinned), started when the store opens, before the other maps are opened: it
    // runs while the command reads and changes the policy, and the first commit takes it
    // over. Declared last: it is joined first.
    Task<void> settling_;
};

}  // namespace xdpctl::policy
