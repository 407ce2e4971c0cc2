#include "state/state_record.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include <fmt/core.h>

#include "util/error.h"
#include "lb/lb_config.h"
#include "lb/lb_maps.h"
#include "policy/commit_trace.h"
#include "policy/policy_binary.h"
#include "state/rules_journal.h"
#include "state/set_journal.h"
#include "state/state_dir.h"

namespace xdpctl::state {

namespace {
std::string g_dir;
int g_paused = 0;
const policy::PrefixSet* g_set_before = nullptr;
std::optional<RulesSplice> g_rules_change;
bool g_failed = false;

// The live configuration with VIPs in id order and each VIP's backends in slot order (not
// by address, as read_lb_config gives them): a restore that adds them in this order gives
// them the same ids and slots, so `lb list` shows them as before.
lb::LbConfig lb_in_map_order(const lb::LbMaps& maps)
{
    lb::LbConfig c = lb::read_lb_config(maps);
    std::vector<lb::VipConfig> ordered;
    for (const auto& e : maps.vips()) {  // by id
        auto it = std::find_if(c.vips.begin(), c.vips.end(), [&](const lb::VipConfig& v) {
            return v.spec.addr == e.spec.addr && v.spec.port == e.spec.port && v.spec.proto == e.spec.proto;
        });
        if (it == c.vips.end())
            continue;
        std::vector<lb::BackendSpec> backends;
        for (const auto& b : maps.backends(e.rec.id))  // by slot
            for (const auto& want : it->backends)
                if (want.addr == b.addr())
                    backends.push_back(want);
        it->backends = std::move(backends);
        ordered.push_back(std::move(*it));
    }
    c.vips = std::move(ordered);
    return c;
}

bool recording()
{
    return !g_dir.empty() && g_paused == 0;
}

// The commit is in force whatever happens here: say that first.
template <typename F>
void record(const char* what, F&& write)
{
    if (!recording())
        return;
    try {
        policy::CommitTrace trace;  // XDPCTL_TRACE_COMMIT: what the record adds to the commit
        write(StateDir(g_dir));
        trace.mark("state directory");
    } catch (const std::exception& e) {
        throw Error(ExitCode::runtime,
                    fmt::format("{} is in force, but the state directory was not updated ({}): "
                                "'xdpctl restore' after a reboot would not re-create it",
                                what, e.what()));
    }
}
}  // namespace

std::string default_state_dir()
{
    // Set but empty: record nothing (bench/private_bpffs.sh: a private bpffs's commits are
    // not the host's state).
    const char* env = std::getenv(kStateDirEnv);
    return env ? env : kDefaultStateDir;
}

void set_state_dir(const std::string& dir)
{
    g_dir = dir;
}

const std::string& state_dir()
{
    return g_dir;
}

PauseRecording::PauseRecording()
{
    g_paused++;
}

PauseRecording::~PauseRecording()
{
    g_paused--;
}

SetChangeFrom::SetChangeFrom(const policy::PrefixSet& before)
{
    g_set_before = &before;
}

SetChangeFrom::~SetChangeFrom()
{
    g_set_before = nullptr;
}

RulesChangeFrom::RulesChangeFrom(const policy::Policy& before, size_t at, size_t removed, size_t inserted)
{
    if (recording())
        g_rules_change = RulesSplice{rules_key(before), before.rules.size(), at, removed, inserted};
}

RulesChangeFrom::~RulesChangeFrom()
{
    g_rules_change.reset();
}

void policy_committed(const policy::Policy& p)
{
    record("the policy", [&](StateDir d) {
        d.save_policy(p, g_set_before, g_rules_change ? &*g_rules_change : nullptr);
    });
}

void set_changed_in_place(policy::Policy& p, const std::string& name, const std::string& pending,
                          const SetChange& change)
{
    record("the set change", [&](StateDir d) {
        if (d.append_set_change(p, name, change))
            return;
        // The directory records something else (a command that recorded nothing committed
        // since, or the journal is long): all of the policy, with the set decoded.
        policy::PrefixSet& set = p.sets.at(name);
        policy::decode_entries(set);
        const std::string applied = encode_journal_record(0, change);
        if (replay_journal(set, pending) != pending.size())
            fail("the changes stored in place to set '{}' do not apply", name);
        const policy::PrefixSet before = set;
        if (replay_journal(set, applied) != applied.size())
            fail("the change of set '{}' does not apply", name);
        d.save_policy(p, &before);
    });
}

void lb_changed(const lb::LbMaps& maps) noexcept
{
    try {
        record("the load-balancer change", [&](StateDir d) { d.save_lb(lb_in_map_order(maps)); });
    } catch (const std::exception& e) {
        fmt::print(stderr, "xdpctl: {}\n", e.what());
        g_failed = true;
    }
}

void iface_loaded(const LoadOptions& opts, const LoadResult& r)
{
    record("the load", [&](StateDir d) {
        d.save_iface({opts.iface, r.meta.hooks, r.meta.xdp_mode, r.meta.tc_attach, r.meta.malformed},
                     opts.lb_conntrack);
    });
}

void iface_unloaded(const IfaceRef& iface)
{
    record("the unload", [&](StateDir d) { d.forget_iface(iface); });
}

void all_unloaded()
{
    record("the unload", [](StateDir d) { d.clear(); });
}

void decap_attached(const IfaceRef& iface, const std::vector<lb::IpAddr>& addrs)
{
    record("the decapsulator", [&](StateDir d) { d.save_decap({iface, addrs}); });
}

void decap_detached(const IfaceRef& iface)
{
    record("the decapsulator's removal", [&](StateDir d) { d.forget_decap(iface); });
}

bool recording_enabled()
{
    return recording();
}

bool record_failed()
{
    return g_failed;
}

}  // namespace xdpctl::state
