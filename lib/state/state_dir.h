// The state directory (default /var/lib/xdpctl): what `xdpctl restore` re-creates after a
// reboot. Every successful commit writes its part here; docs/service.md describes the files.
//
//   manifest            JSON: generation, the files below with their sizes and checksums,
//                       the load balancer's VIPs and backends, the loaded interfaces and
//                       decapsulators
//   policy.GEN          the rules and the default action: the policy's binary image
//                       (policy_binary.h) with no sets, written by generation GEN
//   policy.GEN.log      its journal (rules_journal.h): `rule add`/`rule del` changes since
//                       policy.GEN was written, appended while they stay under 1/8 of its size
//   set.KEY             one prefix set: the binary image of a policy holding only it, named
//                       by a key of its contents, so a commit that leaves a set as it was
//                       (a `rule add` next to a 1,000,000-prefix set) does not write it again
//   set.KEY.log         its journal (set_journal.h): `set add`/`set del` changes since set.KEY
//                       was written, appended while they stay under 1/8 of its size
//
// The manifest is the one commit point: a writer writes the data files it needs under new
// names first (each written to a temporary name, fsynced, renamed), fsyncs the directory,
// then replaces the manifest the same way and fsyncs the directory again; only after that
// are files no manifest names removed. A reader goes by the manifest alone, so it sees one
// generation whole: the old one until the manifest's rename is on disk, the new one after.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attach/iface_ref.h"
#include "lb/lb_config.h"
#include "policy/rule.h"
#include "state/rules_journal.h"
#include "state/set_journal.h"

namespace xdpctl::state {

// One interface as it was loaded: the modes it got (not the ones asked for, so that a
// restore attaches the same way).
struct IfaceRecord {
    IfaceRef iface;
    uint32_t hooks = 0;       // XDPCTL_HOOKS_*
    uint32_t xdp_mode = 0;    // XDPCTL_XDP_MODE_* attached
    uint32_t tc_attach = 0;   // XDPCTL_TC_* used
    uint32_t malformed = 0;   // xdpctl_malformed_action
    bool operator==(const IfaceRecord&) const = default;
};

// A load-balancer decapsulator (`lb decap attach`) and the addresses it strips for.
struct DecapRecord {
    IfaceRef iface;
    std::vector<lb::IpAddr> addrs;
    bool operator==(const DecapRecord&) const = default;
};

struct SavedState {
    uint64_t generation = 0;
    policy::Policy policy;
    lb::LbConfig lb;
    std::vector<IfaceRecord> ifaces;  // in the order they were first loaded
    std::vector<DecapRecord> decaps;
    uint32_t lb_conntrack = 0;        // --lb-conntrack of the last load that gave one (0: default)
};

class StateDir {
public:
    explicit StateDir(std::string path) : path_(std::move(path)) {}
    const std::string& path() const { return path_; }

    // Everything recorded, every file checked (size, checksum, decoding) before it returns;
    // none when nothing was ever recorded (no directory or no manifest). Throws naming the
    // file that is damaged. Reads only: the directory is not created.
    std::optional<SavedState> load() const;

    // The writers: the caller holds the writer lock (writer_lock.h). Each writes one new
    // generation when anything changed, and nothing when not.
    // `before`: the set as the command found it (`set add`, `set del`); when the directory
    // recorded exactly that, a small change is appended to the set's journal. `rules`: how
    // the command changed the rules it found (`rule add`, `rule del`); when the directory
    // recorded exactly those, the change is appended to the rules' journal the same way.
    void save_policy(const policy::Policy& p, const policy::PrefixSet* before = nullptr,
                     const RulesSplice* rules = nullptr);
    // `set add`/`set del` changed set `name` of `p` in place by `change`, with no commit. `p`:
    // the policy as stored before it, its sets as the image holds them (undecoded or not). When
    // the directory records exactly that policy, with the set's key of the print sum before
    // the change (SetChange::print_sums), appends the change to the set's journal, reading no
    // entry of the set, and returns true; otherwise writes nothing and returns false (then
    // save_policy() of the policy with the change).
    bool append_set_change(const policy::Policy& p, const std::string& name, const SetChange& change);
    void save_lb(const lb::LbConfig& c);
    // Adds or replaces the interface's record; `lb_conntrack` 0 keeps the recorded size.
    void save_iface(const IfaceRecord& r, uint32_t lb_conntrack);
    void forget_iface(const IfaceRef& iface);
    void save_decap(const DecapRecord& r);
    void forget_decap(const IfaceRef& iface);
    // `unload --all`: nothing loaded, no policy, no VIP.
    void clear();

private:
    std::string path_;
};

}  // namespace xdpctl::state
