#include "state/restore.h"

#include <algorithm>
#include <functional>

#include "util/error.h"
#include "attach/iface_index.h"
#include "attach/iface_pins.h"
#include "lb/decap.h"
#include "lb/lb_store.h"
#include "attach/loader.h"
#include "attach/netns.h"
#include "attach/pin_layout.h"
#include "policy/policy_store.h"
#include "state/state_record.h"
#include "util/writer_lock.h"

namespace xdpctl::state {

namespace {

bool empty_policy(const policy::Policy& p)
{
    return p.rules.empty() && p.sets.empty() && p.default_action == policy::ActionKind::pass;
}

// Whether xdpctl is fully loaded on the interface (links pinned and the meta record there).
bool loaded(const IfaceRef& iface)
{
    for (const auto& p : pinned_ifaces())
        if (p.ref() == iface) {
            IfacePins pins(p.dir);
            return pins.attached() && pins.read_meta().has_value();
        }
    return false;
}

// What is missing for a load on the interface; "" when it is there.
std::string missing(const IfaceRef& iface)
{
    if (!iface.netns.empty() && !netns_exists(iface.netns))
        return "no network namespace " + iface.netns;
    NetnsScope ns(iface.netns);
    if (find_ifindex(iface) == 0)
        return "no interface " + iface.ifname + (iface.netns.empty() ? "" : " in " + iface.netns);
    return "";
}

// The recorded VIPs in their recorded order (state_record.cpp: by id, backends by slot),
// onto maps without a VIP: each gets the id and slots it had.
void install_lb(lb::LbMaps& maps, const lb::LbConfig& c)
{
    for (const auto& v : c.vips) {
        maps.add_vip(v.spec, v.opts);
        if (!v.backends.empty())
            maps.set_backends(v.spec, v.backends);
        // Health checks: every backend comes back up with its configured weight; xdpd's
        // checks take a failing one out again.
        if (v.check)
            maps.set_check(v.spec, std::nullopt, v.check);
        for (const auto& b : v.backends)
            if (b.check)
                maps.set_check(v.spec, b.addr, b.check);
    }
}

LoadOptions load_options(const IfaceRecord& r, uint32_t lb_conntrack)
{
    LoadOptions lo;
    lo.iface = r.iface;
    const bool xdp = r.hooks & XDPCTL_HOOKS_XDP, tc = r.hooks & XDPCTL_HOOKS_TC;
    lo.hooks = xdp && tc ? HookSelection::both : tc ? HookSelection::tc : HookSelection::xdp;
    lo.xdp_mode = r.xdp_mode == XDPCTL_XDP_MODE_NATIVE ? XdpModeRequest::native
                  : r.xdp_mode == XDPCTL_XDP_MODE_SKB  ? XdpModeRequest::skb
                                                       : XdpModeRequest::automatic;
    lo.tc_mode = r.tc_attach == XDPCTL_TC_TCX      ? TcModeRequest::tcx
                 : r.tc_attach == XDPCTL_TC_CLSACT ? TcModeRequest::clsact
                                                   : TcModeRequest::automatic;
    lo.malformed = static_cast<xdpctl_malformed_action>(r.malformed);
    lo.lb_conntrack = lb_conntrack;
    return lo;
}

}  // namespace

namespace {
template <typename Entries>
bool any_outcome(const Entries& all, std::initializer_list<RestoreReport::Outcome> which)
{
    return std::any_of(all.begin(), all.end(), [&](const auto& e) {
        return std::find(which.begin(), which.end(), e.outcome) != which.end();
    });
}

// Attaches one recorded thing (`attach`) unless it is there (`present`) or its interface is
// missing; the outcome and why go into `out`.
template <typename Entry>
void restore_one(Entry& out, const IfaceRef& iface, const std::function<bool()>& present,
                 const std::function<void()>& attach)
{
    try {
        if (present()) {
            out.outcome = RestoreReport::Outcome::already_loaded;
        } else if (std::string why = missing(iface); !why.empty()) {
            out.outcome = RestoreReport::Outcome::missing;
            out.detail = why;
        } else {
            attach();
            out.outcome = RestoreReport::Outcome::loaded;
        }
    } catch (const std::exception& e) {
        out.outcome = RestoreReport::Outcome::failed;
        out.detail = e.what();
    }
}

bool decap_attached(const IfaceRef& iface)
{
    for (const auto& p : pinned_decaps())
        if (p.ref() == iface)
            return path_exists(p.dir + "/link");
    return false;
}
}  // namespace

bool RestoreReport::unchanged() const
{
    return !policy_restored && !lb_restored && !any_outcome(ifaces, {Outcome::loaded}) &&
           !any_outcome(decaps, {Outcome::loaded});
}

int RestoreReport::exit_code() const
{
    const bool skipped = any_outcome(ifaces, {Outcome::missing, Outcome::failed}) ||
                         any_outcome(decaps, {Outcome::missing, Outcome::failed});
    return skipped ? int(ExitCode::runtime) : int(ExitCode::ok);
}

const char* outcome_name(RestoreReport::Outcome o)
{
    switch (o) {
    case RestoreReport::Outcome::loaded:
        return "loaded";
    case RestoreReport::Outcome::already_loaded:
        return "already loaded";
    case RestoreReport::Outcome::missing:
        return "missing";
    case RestoreReport::Outcome::failed:
        return "failed";
    }
    return "?";
}

RestoreReport restore_state(const StateDir& dir)
{
    WriterLock lock;
    RestoreReport rep;
    rep.dir = dir.path();
    // Everything read and checked first: a damaged file changes nothing.
    std::optional<SavedState> saved = dir.load();
    if (!saved)
        return rep;
    rep.recorded = true;
    rep.generation = saved->generation;
    rep.rules = saved->policy.rules.size();
    rep.sets = saved->policy.sets.size();
    rep.vips = saved->lb.vips.size();
    PauseRecording pause;  // the directory is the source here, not a copy to update

    // The policy first, so that the programs loaded below filter from their first packet.
    // An empty policy on a host without the shared maps is already in force.
    const bool have_maps = path_exists(shared_maps_dir() + "/xdpctl_pctl");
    if (have_maps || !empty_policy(saved->policy)) {
        policy::PolicyStore store;
        if (!(store.current() == saved->policy)) {
            store.commit(saved->policy);
            rep.policy_restored = true;
        }
    }
    if (path_exists(shared_maps_dir() + "/xdpctl_lb_vips") || !saved->lb.vips.empty()) {
        lb::LbStore store;
        const lb::LbConfig cur = lb::read_lb_config(store.maps());
        if (!lb::lb_diff(cur, saved->lb).empty()) {
            if (cur.vips.empty())
                install_lb(store.maps(), saved->lb);
            else
                lb::apply_lb_config(store.maps(), saved->lb);
            rep.lb_restored = true;
        }
    }

    for (const IfaceRecord& r : saved->ifaces) {
        RestoreReport::Iface out;
        out.rec = r;
        restore_one(out, r.iface, [&] { return loaded(r.iface); }, [&] {
            // The recorded connection-table size, when this load makes the table (the
            // first one: a resize under another interface's program is refused).
            const bool first = pinned_ifaces().empty();
            load(load_options(r, first ? saved->lb_conntrack : 0));
        });
        rep.ifaces.push_back(std::move(out));
    }
    for (const DecapRecord& r : saved->decaps) {
        RestoreReport::Decap out;
        out.rec = r;
        restore_one(out, r.iface, [&] { return decap_attached(r.iface); },
                    [&] { lb::decap_attach(r.iface, r.addrs); });
        rep.decaps.push_back(std::move(out));
    }
    // As after a load: --iif rules match the keys of the interfaces now loaded.
    if (std::any_of(rep.ifaces.begin(), rep.ifaces.end(),
                    [](const auto& i) { return i.outcome == RestoreReport::Outcome::loaded; }))
        policy::PolicyStore().refresh_iif_keys();
    return rep;
}

}  // namespace xdpctl::state
