// Where the commands record their commits (state_dir.h), and the calls the stores and the
// load/unload commands make after each one. The library records nothing until a program
// names a state directory (xdpctl's main: --state-dir, $XDPCTL_STATE_DIR, /var/lib/xdpctl),
// so tests and benchmarks that link the library leave /var/lib alone.
#pragma once

#include <string>

#include "attach/iface_ref.h"
#include "lb/lb_model.h"
#include "attach/loader.h"
#include "policy/rule.h"
#include "state/set_journal.h"

namespace xdpctl::lb {
class LbMaps;
}

namespace xdpctl::state {

inline constexpr const char* kDefaultStateDir = "/var/lib/xdpctl";
inline constexpr const char* kStateDirEnv = "XDPCTL_STATE_DIR";

// $XDPCTL_STATE_DIR when set (tests; set but empty: none), else /var/lib/xdpctl.
std::string default_state_dir();
// "" (the library's default): record nothing.
void set_state_dir(const std::string& dir);
const std::string& state_dir();

// While one lives, nothing is recorded: `restore` re-creates what the directory holds and
// must not rewrite it on the way (an interface that is missing would drop out of it).
class PauseRecording {
public:
    PauseRecording();
    ~PauseRecording();
    PauseRecording(const PauseRecording&) = delete;
    PauseRecording& operator=(const PauseRecording&) = delete;
};

// While one lives, a commit is of a change to one set (`set add`, `set del`) made from
// `before`: the record may append it to the set's journal instead of rewriting the set.
class SetChangeFrom {
public:
    explicit SetChangeFrom(const policy::PrefixSet& before);
    ~SetChangeFrom();
    SetChangeFrom(const SetChangeFrom&) = delete;
    SetChangeFrom& operator=(const SetChangeFrom&) = delete;
};

// While one lives, a commit is of the rules of `before` (as the command read them) with
// rules [at, at + removed) replaced by the `inserted` rules the committed policy holds from
// `at` (`rule add`: at the end, none removed, one inserted): the record may append that to
// the rules' journal instead of rewriting the rules. Keys `before` (~0.1 ms at 10,000 rules)
// only when a state directory is recorded; `before` may change once it is made.
class RulesChangeFrom {
public:
    RulesChangeFrom(const policy::Policy& before, size_t at, size_t removed, size_t inserted);
    ~RulesChangeFrom();
    RulesChangeFrom(const RulesChangeFrom&) = delete;
    RulesChangeFrom& operator=(const RulesChangeFrom&) = delete;
};

// After PolicyStore::commit made `p` the policy in force. Throws (runtime) when it cannot
// be written: the commit stands, the message says so.
void policy_committed(const policy::Policy& p);
// After `set add`/`set del` changed set `name` in place by `change` (no commit): `p` is the
// policy as stored before it (PolicyStore::current_as_stored), `pending` the journal records
// of the set's changes in place before this one. The change is appended to the set's journal
// without decoding a set when the directory records that policy; else the whole policy with
// the change is recorded (`p`'s set decoded). Throws as policy_committed().
void set_changed_in_place(policy::Policy& p, const std::string& name, const std::string& pending,
                          const SetChange& change);
// After a writer's LbStore is done (from its destructor, so it cannot throw): on failure
// prints why and marks record_failed().
void lb_changed(const lb::LbMaps& maps) noexcept;
// After a load, and after an unload of one interface or of everything.
void iface_loaded(const LoadOptions& opts, const LoadResult& r);
void iface_unloaded(const IfaceRef& iface);
void all_unloaded();
// After `lb decap attach` and `lb decap detach`.
void decap_attached(const IfaceRef& iface, const std::vector<lb::IpAddr>& addrs);
void decap_detached(const IfaceRef& iface);

// Whether a commit now would be recorded (a state directory is named, and not paused).
bool recording_enabled();

// A recording that could not throw failed: the command's exit code is 1 (main).
bool record_failed();

}  // namespace xdpctl::state
