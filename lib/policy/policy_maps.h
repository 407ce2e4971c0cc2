// The writer of the filtering policy's maps (lib/bpf/policy_maps.h; layout in the "filtering
// policy" section of abi/xdpctl_abi.h): puts a CompiledPolicy into the generation packets do
// not use, switches every program to it with one map update, and frees the old one.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <bpf/libbpf.h>

#include "abi/xdpctl_abi.h"
#include "attach/iface_pins.h"
#include "policy/compiled_policy.h"
#include "policy/prefix_table.h"
#include "policy/row_prints.h"
#include "policy/shapes.h"
#include "util/unique_fd.h"

namespace xdpctl::policy {

// Every policy map, by its pinned name (the loader pins maps by name).
struct PolicyMapFds {
    UniqueFd ctl;       // xdpctl_pctl
    UniqueFd hdr;       // xdpctl_phdr
    UniqueFd port;      // xdpctl_pport
    UniqueFd l4;        // xdpctl_pl4
    UniqueFd vlan;      // xdpctl_pvlan
    UniqueFd iif;       // xdpctl_piif
    UniqueFd rules;     // xdpctl_prule
    UniqueFd counters;  // xdpctl_rctr
    UniqueFd rate;      // xdpctl_rrate
    UniqueFd tabs;      // xdpctl_ptabs
    UniqueFd rows;      // xdpctl_prows
    UniqueFd rows_small;  // xdpctl_prows_small
    UniqueFd l1;          // xdpctl_pl1
    // xdpctl_psmall; empty where an older xdpctl's maps are pinned and no load made it yet:
    // then no direction is decided by the small path (the tables decide, as before).
    UniqueFd small;
    UniqueFd decide;  // xdpctl_pdecide; empty the same way (then no one-field path)
    // xdpctl_pset, xdpctl_psl1, xdpctl_psplit (sets' own tables); empty the same way (then
    // every set is merged into its fields' classes).
    UniqueFd set_tabs, set_l1, split;
    UniqueFd anc;     // xdpctl_panc; empty the same way (then no anchor lists)
    // xdpctl_rpurse (the rate limit's per-CPU purses); empty the same way: then the program
    // in force is one without purses, and a bucket reset has none to empty.
    UniqueFd purse;
};

// The maps of a loaded xdpctl_xdp or xdpctl_tc skeleton (both declare all of them).
template <typename Skel>
PolicyMapFds policy_map_fds(const Skel& s)
{
    auto d = [](const bpf_map* m) { return dup_map_fd(m); };
    return PolicyMapFds{d(s.maps.xdpctl_pctl),  d(s.maps.xdpctl_phdr), d(s.maps.xdpctl_pport),
                        d(s.maps.xdpctl_pl4),   d(s.maps.xdpctl_pvlan), d(s.maps.xdpctl_piif),
                        d(s.maps.xdpctl_prule), d(s.maps.xdpctl_rctr), d(s.maps.xdpctl_rrate),
                        d(s.maps.xdpctl_ptabs), d(s.maps.xdpctl_prows), d(s.maps.xdpctl_prows_small),
                        d(s.maps.xdpctl_pl1),   d(s.maps.xdpctl_psmall), d(s.maps.xdpctl_pdecide),
                        d(s.maps.xdpctl_pset),  d(s.maps.xdpctl_psl1),  d(s.maps.xdpctl_psplit),
                        d(s.maps.xdpctl_panc),  d(s.maps.xdpctl_rpurse)};
}

// The maps pinned under `dir` (e.g. /sys/fs/bpf/xdpctl/maps) by their names.
PolicyMapFds policy_map_fds_pinned(const std::string& dir);

// How long the parts of the last commit took, in ns (for the benchmark and `-v` output).
struct CommitTimes {
    uint64_t tables_ns = 0;   // the fixed arrays and rule records, through mmap
    uint64_t inner_ns = 0;    // building and filling the rows and address tables
    uint64_t install_ns = 0;  // installing the new generation's inner maps (a grace period each map)
    uint64_t flip_ns = 0;     // the flip
    uint64_t free_ns = 0;     // freeing the old generation's address tables: a grace period
    uint64_t total_ns = 0;
    uint64_t rows_bytes = 0;  // the new generation's rows table
    uint64_t rows_written = 0;  // the part of it that differed from what it held
    uint64_t rows_compared = 0; // rows read to find that out (the others' prints were equal)
    uint64_t addr_bytes = 0;  // its address tables
    uint64_t addr_lines_written = 0;  // lines of them written (table_refill.h)
    bool rows_reused = false; // the rows map of two commits ago was refilled in place
    bool rows_small = false;  // the rows went to xdpctl_prows_small
    uint32_t addr_reused = 0; // address tables of two commits ago refilled in place
    uint32_t addr_kept = 0;   // address tables of two commits ago left as they were (same classes)
};

// Per direction, its anchor lists when the commit decides it by them (shapes.h).
using DirAnchorLists = std::array<std::optional<AnchorLists>, XDPCTL_POL_DIRS>;

// Rule id -> its counter slot (< XDPCTL_POL_COUNTER_SLOTS), looked up once per rule a commit.
using SlotOf = std::unordered_map<uint32_t, uint32_t>;

// 32 MiB of 64-byte lines: the address table of 10,000 /32 rules spread over all of IPv4
// (~18 MiB with its headroom) is kept; a 1M-prefix set's (~80 MiB) is not.
inline constexpr uint64_t kDefaultKeepTableLines = (32ull << 20) / 64;

// The part of a commit that reads and writes no map: the address tables, built while the
// kernel waits out the packets on the target generation (see PolicyStore::commit).
struct PreparedCommit {
    // Per direction, source and destination; empty when every IP packet has one class
    // there (no rule names such an address): `const_class` holds it then.
    std::optional<PrefixTable> addr[XDPCTL_POL_DIRS][2];
    uint32_t const_class[XDPCTL_POL_DIRS][2] = {};
    // A table too large to be kept after its generation (over kDefaultKeepTableLines: a big
    // prefix set's) is built straight into the new map that will hold it (`addr` is empty
    // then): no copy of its own first, which was ~60-120 MiB of fresh memory at 1M
    // prefixes, and a copy of it. The commit installs it as it is, with its IPv4 level 1
    // (`built_l1`, XDPCTL_PFX_L1_ENTRIES words) where the datapath reads it.
    UniqueFd built[XDPCTL_POL_DIRS][2];
    std::vector<uint32_t> built_l1[XDPCTL_POL_DIRS][2];
    uint64_t built_bytes[XDPCTL_POL_DIRS][2] = {};
    // The print of each table's classes (row_prints.h), and the tables the target
    // generation holds already (take_address_tables with `held`): not built, left in place.
    RowPrint print[XDPCTL_POL_DIRS][2];
    HeldTables kept;
    // Each direction's RowTable::prints(), when the caller computed them before the commit
    // (beside the address tables, while the grace period runs): the commit compares and
    // records them, and computes them itself when these do not match the rows' count.
    std::vector<RowPrint> row_prints[XDPCTL_POL_DIRS];
    // Each direction's anchor lists (shapes.h), when the caller computed them before the
    // commit (PolicyMaps::prepare_anchors, while the grace period runs: ~1 ms at 10,000
    // rules that would otherwise follow the wait); the commit computes them itself without.
    std::optional<DirAnchorLists> anchors;
    // Set name -> the slot of xdpctl_pset holding its table (PolicyMaps::place_sets): every
    // set a split field names, and the policy's others while slots are free.
    std::map<std::string, uint32_t> set_slot;
    uint32_t sets_built = 0;  // of them, the tables place_sets built (the others were there)
};
// `layout`: what the address tables may hold (sparse chunks, sparse /16s), which every
// loaded program must know (loaded_abi.h). Creates no map.
PreparedCommit prepare_commit(const CompiledPolicy& c, TableLayout layout = TableLayout::sparse16);
// The same, emptying c's address class tables (AddrClassTable::entries) as each becomes a
// prefix table: a 1M-prefix set's take ~25 MiB, which a commit need not hold twice. The
// rest of c is untouched, as PolicyMaps::commit needs it. Large tables go straight into
// new maps (PreparedCommit::built), which nothing uses until the commit installs them.
// `held` (PolicyMaps::held_tables()): the tables the generation the commit fills holds
// already; those whose classes are the same are left where they are, not built.
PreparedCommit take_address_tables(CompiledPolicy& c, TableLayout layout, const HeldTables* held = nullptr);

// PolicyMaps::settle() on the maps pinned in `dir`, opening only the three it needs (not
// mapping the others: ~0.7 ms), so that a writer starts the wait as soon as it holds the lock.
void settle_pinned(const std::string& dir);

class PolicyMaps {
public:
    // The memory the anchor lists are read into (write_anchors), taken from the heap when it
    // is new (heap_pages.h): in 2 MiB pages.
    void reserve_anchor_buffer();
    explicit PolicyMaps(PolicyMapFds fds);
    ~PolicyMaps();
    PolicyMaps(PolicyMaps&&) noexcept;
    PolicyMaps& operator=(PolicyMaps&&) = delete;

    static PolicyMaps open_pinned(const std::string& dir) { return PolicyMaps(policy_map_fds_pinned(dir)); }
    template <typename Skel>
    static PolicyMaps from_skeleton(const Skel& s)
    {
        return PolicyMaps(policy_map_fds(s));
    }

    // Writes `c` into the generation not in use, flips to it, waits until no packet can
    // still be on the old one, and frees the old generation's address tables (its rows map
    // is kept for the next commit to refill in place). Every rule must have
    // a counter slot (< XDPCTL_POL_COUNTER_SLOTS) in `counter_slot_of_rule_id`; a rate-limit
    // rule whose slot, rate or burst is new starts with a full bucket. Throws Error; on a
    // throw before the flip, packets never saw anything of `c`.
    // Two writers must not commit at once (the caller holds a lock): both would fill the
    // same inactive generation.
    // `prepared` is prepare_commit(c).
    // `prepared` is taken apart: each address table is released as it is copied into its
    // map, so a 1M-prefix table is not held twice.
    void commit(const CompiledPolicy& c, PreparedCommit prepared, const SlotOf& counter_slot_of_rule_id);
    void commit(const CompiledPolicy& c, const SlotOf& counter_slot_of_rule_id)
    {
        commit(c, prepare_commit(c), counter_slot_of_rule_id);
    }
    // What the generation the next commit fills holds (row_prints.h): its address tables,
    // for take_address_tables, and its classes, for align_classes. Only this process may
    // commit until then (the caller holds the lock).
    void held(HeldTables& tables, ClassLayout (&classes)[XDPCTL_POL_DIRS]) const;
    // Rule id -> counter slot of every rule of the active generation, from its rule records.
    SlotOf active_slots() const;
    // The ranks the generation in force gives each direction's rules (rank_gaps.h): what a
    // commit keeps where it can. Empty when no policy is installed.
    RankHints active_ranks() const;
    // fn(direction, its header, its records by rank, its edge rule's record or nullptr) for
    // each direction of the generation in force; nothing when no policy is installed.
    void each_active_direction(const std::function<void(uint32_t, const xdpctl_pol_dir_hdr&,
                                                        std::span<const xdpctl_rule_rec>, const xdpctl_rule_rec*)>& fn) const;

    // Whether the maps of split fields (sets' own tables) are there: not in maps an older
    // xdpctl pinned until a load makes them.
    bool can_split() const { return split_ && fds_.set_tabs && fds_.set_l1; }
    // Before commit(): gives every set that c's split fields name a slot holding its table,
    // built into a slot no generation refers to when none holds its entries, and builds the
    // policy's other sets' tables while slots are free, so that a rule naming one later finds
    // it (prepared.set_slot). Frees the slots of sets no longer there. False when the slots
    // do not suffice for the split fields' sets: compile without splitting then.
    // `prints`: set_print() of the sets by name where the caller has them (computed beside the
    // compile: ~9 ms for a 1M-prefix set); the others are computed here.
    bool place_sets(const CompiledPolicy& c, const std::map<std::string, PrefixSet>& sets, PreparedCommit& prepared,
                    bool sparse, const std::map<std::string, uint64_t>& prints = {});

    // The slot of the set whose table's print is `print`, when `set add`/`set del` may patch
    // that table in place (set_tables.h, stage_set_patch): exactly one slot holds the print,
    // and in the active generation every field that names the set (`fields`: direction,
    // 0 src / 1 dst, of each rule naming it) is split by it, in that slot. A set merged into
    // a field's classes (too many sets in the field or in all) is not: nullopt, commit then.
    std::optional<uint32_t> set_patch_slot(uint64_t print, const std::vector<std::pair<uint32_t, uint32_t>>& fields) const;
    // After a set's table changed in place: moves the commit count with no flip, so that no
    // flow-cache entry of a packet that read the table before is taken after (the entry
    // carries the count its packet read first: lib/bpf/classify.h), and readers of the stored
    // policy read again (PolicyStore::read_consistent).
    void count_change_in_place();
    int set_tables_fd() const { return fds_.set_tabs.get(); }
    int set_l1_fd() const { return fds_.set_l1.get(); }

    // Waits until no packet can still be on the generation before the active one, if the
    // commit that left it did not (commit() returns without that wait when it frees
    // nothing). Needed before anything the old generation refers to is reused: commit()
    // calls it; PolicyStore calls it before it hands a freed rule counter slot to a new rule.
    void settle();
    // The wait settle() would do, left to a keeper process that outlives this one
    // (grace_keeper.h), for a process that exits soon after this commit. The keeper's pid,
    // or -1 when none was started (none needed, or it could not be).
    int settle_after_exit();

    // Summed over CPUs.
    xdpctl_rule_ctr read_rule_counters(uint32_t slot) const;
    // Every slot, summed over CPUs, in one batch read: index = slot.
    std::vector<xdpctl_rule_ctr> read_all_rule_counters() const;
    void reset_rule_counters(uint32_t slot);

    uint32_t active_gen() const;  // 0 before the first commit
    bool installed() const;
    uint64_t commits() const;
    const CommitTimes& last_commit_times() const { return times_; }
    // Address tables up to this many lines are kept after their generation is left, to be
    // refilled in place two commits later (no install, so one grace period less); larger
    // ones are freed right after the flip. Tests set 0 to free every table.
    void set_keep_table_lines(uint64_t lines) { keep_table_lines_ = lines; }
    // Small policies' rows go to xdpctl_prows_small unless this is off (tests of the other
    // path).
    void set_use_small_rows(bool on) { use_small_rows_ = on; }
    // Directions of few rules are decided by comparing them (xdpctl_psmall) unless this is
    // off (tests and benchmarks of the tables).
    void set_decide_small(bool on) { decide_small_ = on; }
    // Directions whose rules name one address field only are decided by its class
    // (xdpctl_pdecide) unless this is off (tests and benchmarks of the tables).
    void set_decide_field(bool on) { decide_field_ = on; }
    // Directions of drop and pass rules naming no set and no interface are decided by their
    // anchor lists (xdpctl_panc) unless this is off (tests and benchmarks of the tables).
    void set_decide_anchors(bool on) { decide_anchors_ = on; }
    // The anchor lists commit() would compute for c (for PreparedCommit::anchors): they read
    // only c, so a caller computes them before the grace period is over. c's classes must be
    // numbered as they will be committed (after align_classes()).
    DirAnchorLists prepare_anchors(const CompiledPolicy& c) const;

private:
    std::unique_ptr<char[]> anchor_buffer_;
    xdpctl_pol_ctl read_ctl() const;
    // Which of the decisions commit() tries first (in this order) takes direction cd; a
    // direction taken by neither is decided by its anchor lists when it has them.
    bool decides_small(const CompiledDirection& cd) const;
    bool decides_by_field(const CompiledDirection& cd) const;
    // Waits until every packet that started before has finished (one RCU grace period).
    void grace_period();

    PolicyMapFds fds_;
    // The mmapable fixed-size maps: xdpctl_phdr whole, the others by generation where a
    // command uses one (MappedMap::Parts).
    std::unique_ptr<MappedMap> hdr_, port_, l4_, vlan_, iif_, rules_, rows_small_, l1_, small_, decide_, split_;
    // The record element of the rows map `fd` (row_prints.h), mapped at least as far as its
    // record reaches and `bytes`. held() and commit() read, clear and write the target's
    // record through one mapping: the pages of each new one are inserted and, first touched,
    // filled by the hypervisor again (~0.3 ms a mapping at 10,000 rules where a page table
    // change goes through it, a PVM guest; calls cheap, no microcode).
    const MappedMap& record_view(int fd, size_t bytes = 0) const;
    mutable std::unique_ptr<MappedMap> record_;
    mutable uint32_t record_map_id_ = 0;
    // The set slots the generations' split fields refer to (both generations: the packets of
    // the one not in force may still be reading them until the next commit settles it).
    std::vector<bool> referenced_set_slots(bool active_only = false) const;
    CommitTimes times_;
    uint64_t keep_table_lines_ = kDefaultKeepTableLines;
    bool use_small_rows_ = true;
    bool decide_small_ = true;
    bool decide_field_ = true;
    bool decide_anchors_ = true;
};

}  // namespace xdpctl::policy
