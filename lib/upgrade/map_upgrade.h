// A load across a pinned-layout change (`load --force` of a build whose maps differ from the
// pinned ones): every pinned map whose type, key or value size differs from what this build
// declares is migrated by its kind, not refused by libbpf:
//   counters   (per-rule, per-interface, LB)  recreated, carried exactly (counter_carry.h)
//   restart    (rate buckets, the load record) recreated empty; the load rewrites the record
//   conntrack  the LB's connection table: lib/lb/conntrack_table.h converts and copies it
//   state      the policy's maps (xdpctl_p*) and the LB's (its VIPs, backends, tables): when
//              any map of a group differs, or the group's record layout (layout_versions.h: kPolicyRecordLayout,
//              kLbRecordLayout) does, the whole group is read through the old layout
//              (state_snapshot.h), recreated, and applied to the new maps in one commit before
//              any program runs on them: rules in their counter slots, VIPs and backends in
//              their ids and slots, so counters and connections stay theirs. A state that
//              cannot be read, or a map of no known group, is refused before anything changed.
// The old maps are moved aside (maps/upgrade/) before the object's load, so libbpf creates
// and pins new ones; a load that fails puts them back, and so does the next load after one
// killed half-way (before the swap, or after it: the old counters are then carried again).
// Programs still run on the old maps until the swap (bpf_link_update: each packet runs the
// old or the new program, each with a whole policy), then what the old counters took
// meanwhile is added (after_swap). The new programs get every path while a state group is
// migrated (the paths in force cannot be read from maps of another layout); the load then
// reloads them with just the paths in force (finish_paths).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <optional>
#include <string>
#include <vector>

#include "util/unique_fd.h"
#include "upgrade/counter_carry.h"
#include "upgrade/layout_versions.h"

struct bpf_object;

namespace xdpctl::upgrade {

class MapUpgrade {
public:
    MapUpgrade();
    ~MapUpgrade();
    MapUpgrade(const MapUpgrade&) = delete;
    MapUpgrade& operator=(const MapUpgrade&) = delete;

    // Before Skel::load, after the pin paths are set: moves aside each map to migrate (the
    // first call first puts back what a killed load left aside); throws, having changed
    // nothing, when one cannot be migrated (a `state` map).
    void before_load(bpf_object* obj);
    // After the load: counters copied into the new maps, and the state read before the load
    // committed to the new maps of its group.
    void after_load(bpf_object* obj);
    // Whether a state group is migrated: the programs loaded must have every path.
    bool migrates_state() const { return !states_.empty(); }
    // Before a pinned link is moved onto a program of this load: what it runs now is kept, so
    // that a load failing after it (another interface's reload refused) puts every link back
    // on its old program along with the old maps: the old datapath whole, not one interface
    // on maps nothing pins any more. Only while maps are replaced.
    void before_swap(int link_fd);
    // After every program was swapped: waits out runs of the old ones, adds what their
    // counters took since the copy, records kLayoutVersion. Returns what happened, for notes.
    std::vector<std::string> after_swap();
    // Whether a shared map (not one interface's) was replaced: the programs of the other
    // interfaces must be reloaded too, or they keep running on the old maps.
    bool replaced_shared() const;

private:
    struct Replaced {
        std::string name;
        std::string pin;
        UniqueFd old_fd;
        bool counters = false;
        uint64_t latest_words = 0;
        bool shared = false;
    };
    void detect_once(bpf_object* obj);
    // Reads the state of `group` through the pinned maps' layout; throws, naming what is
    // damaged, having changed nothing.
    void read_state(const std::string& group);

    struct GroupState;  // a group's state, read before its maps were moved aside

    std::vector<Replaced> replaced_;
    std::vector<std::pair<UniqueFd, UniqueFd>> swapped_;  // link, the program it ran before
    std::vector<std::unique_ptr<CounterCarry>> carries_;
    std::vector<std::string> notes_;
    std::vector<std::unique_ptr<GroupState>> states_;
    std::map<std::string, uint32_t> groups_current_;  // groups this load found or made current
    std::set<std::string> groups_migrating_;          // groups whose maps differ (detect_once)
    std::optional<uint32_t> from_version_;
    bool detected_ = false;
    bool finished_ = false;
};

}  // namespace xdpctl::upgrade
