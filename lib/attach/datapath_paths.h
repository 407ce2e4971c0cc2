// The paths (abi/xdpctl_abi.h: enum xdpctl_path) the attached programs contain. A program is
// loaded with only the paths the policy in force and the load balancer need (its read-only
// cfg_paths; the verifier deletes the code of the others), so one rule runs a program a few
// KB long. A change that needs a path some attached program lacks first reloads that program
// with the paths of both sides of the change and swaps it in (bpf_link_update; clsact: the
// filter replaced in place), so every packet, whichever side of the flip it reads, finds its
// path; after the change the programs are reloaded with just the paths then in force. Counters
// live in pinned maps the new program reuses: nothing is lost.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "abi/xdpctl_abi.h"
#include "policy/policy_paths.h"

namespace xdpctl {

struct DatapathPaths {
    policy::DirPaths dir{};  // the policy's, per direction (0: ingress, 1: egress)
    bool lb = false;         // a VIP exists

    // The cfg_paths of each object: XDP applies the ingress rules and balances; the TC
    // object's two programs share one read-only section and apply both directions.
    uint32_t xdp() const { return dir[0] | (lb ? XDPCTL_PATH_LB : 0); }
    uint32_t tc() const { return dir[0] | dir[1]; }
    DatapathPaths operator|(const DatapathPaths& o) const
    {
        return {{dir[0] | o.dir[0], dir[1] | o.dir[1]}, lb || o.lb};
    }
    bool operator==(const DatapathPaths&) const = default;
    // Whether programs with these paths decide everything `o`'s programs decide.
    bool covers(const DatapathPaths& o) const;
};

// Waits until every program run that started before has finished (one RCU grace period): a
// packet that took a replaced program just before the swap is done with the maps it read.
void wait_for_runs();

// Whether a program with the paths `have` decides every generation that needs `need`: it has
// them, or has the tables, which decide any generation (abi: xdpctl_pol_dir_hdr.decide); any
// shape's path reads the default as XDPCTL_PATH_DEFAULT does.
bool paths_cover(uint32_t have, uint32_t need);

// Every path: what a program gets when what is in force cannot be read.
DatapathPaths all_paths();

// What the policy generation in force and the load balancer need, from the pinned shared
// maps: nothing before they exist or before the first commit; every path when they cannot be
// read (another xdpctl's layout).
DatapathPaths paths_in_force();

// The cfg_paths a loaded program was given, read from its read-only data in the kernel;
// nullopt for a program that has none (an xdpctl from before them: it has every path).
std::optional<uint32_t> program_paths(int prog_fd);

// The names of the paths set, in this order: small, field, tables, rate, lb, log, default.
std::vector<std::string> path_names(uint32_t paths);

// One change of what is in force (a policy commit, the first VIP added or the last removed),
// made between the constructor and finish(). The constructor reads what is in force, lets
// `change` make of it what the change leaves, and when that needs a path some attached
// program lacks, reloads those programs with paths that cover both (the new ones when they
// do: the tables; else both sets), and waits out the packets on the programs replaced
// (throws if one cannot be reloaded: the change must not be made then). finish() reloads the
// programs whose paths are no longer exactly what is in force; a program holding more than it
// needs is left as it is if that reload fails. So a change of shape costs one reload of each
// program; changes that keep the paths (most commits) read three map entries and reload
// nothing.
// The caller holds the writer lock (writer_lock.h).
class PathsChange {
public:
    explicit PathsChange(const std::function<void(DatapathPaths&)>& change);
    // The same with what is in force read already (paths_in_force(), under the same lock):
    // a commit reads it beside its compile (its records' pages, ~0.3 ms at 10,000 rules).
    PathsChange(const DatapathPaths& in_force, const std::function<void(DatapathPaths&)>& change);
    void finish() const;
    // How many programs the constructor and finish() reloaded (for tests and -v output).
    int reloaded() const { return reloaded_; }

private:
    DatapathPaths before_, after_;
    mutable int reloaded_ = 0;
};

// While one lives, PathsChange reloads no program: a load that migrates the policy and load
// balancer into maps of a new layout (upgrade/state_migration.h) commits them into maps no
// attached program runs on yet; the programs it then swaps in have every path.
class HoldProgramReloads {
public:
    HoldProgramReloads();
    ~HoldProgramReloads();
    HoldProgramReloads(const HoldProgramReloads&) = delete;
    HoldProgramReloads& operator=(const HoldProgramReloads&) = delete;
};

// Reloads every attached xdpctl program whose paths do not cover `want` (paths_cover();
// `exact`: are not exactly `want`) with `want`, on every interface of every namespace;
// returns how many. A
// program lacking a path that cannot be reloaded throws; one that only holds more is left as
// it is then. Programs of an older xdpctl (no cfg_paths) and links whose interface or
// namespace is gone are left alone.
int reload_programs(const DatapathPaths& want, bool exact);

}  // namespace xdpctl
