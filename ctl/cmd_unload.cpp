#include <unistd.h>

#include <fmt/core.h>

#include "command.h"
#include "util/error.h"
#include "attach/iface_pins.h"
#include "attach/loader.h"
#include "policy/policy_store.h"
#include "state/state_record.h"
#include "stats/status.h"
#include "util/system_checks.h"
#include "util/writer_lock.h"

namespace xdpctl::ctl {

namespace {

// The stored policy that `unload --all` deletes with the shared maps.
struct StoredPolicy {
    size_t rules = 0, sets = 0, vips = 0;
    bool default_drop = false;

    bool empty() const { return !rules && !sets && !vips && !default_drop; }
    std::string describe() const
    {
        return fmt::format("{} rule(s), {} set(s), {} VIP(s){}", rules, sets, vips,
                           default_drop ? ", default drop" : "");
    }
};

// Read without creating anything: no shared maps, no policy.
StoredPolicy stored_policy()
{
    StoredPolicy s;
    if (path_exists(shared_maps_dir() + "/xdpctl_pctl") &&
        path_exists(shared_maps_dir() + "/xdpctl_psrc")) {
        policy::Policy p = policy::PolicyStore().current();
        s.rules = p.rules.size();
        s.sets = p.sets.size();
        s.default_drop = p.default_action != policy::ActionKind::pass;
    }
    if (auto lb = collect_lb_status())
        s.vips = lb->vips;
    return s;
}

int unload_everything(bool yes)
{
    require_privileges();
    require_bpffs();
    WriterLock lock;
    const StoredPolicy policy = stored_policy();
    // With nothing loaded, the policy is all that would go: a slip of the keyboard must not
    // take a host's whole policy.
    if (!yes && !policy.empty() && pinned_ifaces().empty())
        fail_usage("unload --all: xdpctl is loaded on no interface; it would delete the stored "
                   "policy ({}): give --yes to delete it",
                   policy.describe());
    auto gone = unload_all();
    state::all_unloaded();
    unlink(policy::kCompileCachePath);  // the last commit's compile, kept for the next
    for (const auto& i : gone)
        fmt::print("unloaded from {}\n", i.display());
    if (!policy.empty())
        fmt::print("deleted the policy: {}\n", policy.describe());
    if (gone.empty() && policy.empty())
        fmt::print("nothing was loaded\n");
    return 0;
}

}  // namespace

void add_unload_command(CLI::App& app, const GlobalOptions& g, Runner& run)
{
    struct Opts {
        std::string iface;
        bool all = false;
        bool yes = false;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("unload", "Remove exactly what xdpctl attached and pinned");
    auto* iface = cmd->add_option("iface", o->iface, "Interface name");
    auto* all = cmd->add_flag("--all", o->all,
                              "Every interface, and all of /sys/fs/bpf/xdpctl (the policy too)");
    auto* yes = cmd->add_flag("--yes", o->yes,
                              "With --all: delete the stored policy even when no interface is loaded");
    iface->excludes(all);
    yes->needs(all);

    cmd->callback([&g, &run, o] {
        run = [&g, o] {
            if (o->all)
                return unload_everything(o->yes);
            if (o->iface.empty())
                fail_usage("unload: name an interface or give --all");
            IfaceRef ref = iface_arg(g, o->iface);
            WriterLock lock;  // the policy's commit below nests in it
            unload(ref);
            fmt::print("unloaded from {}\n", ref.display());
            state::iface_unloaded(ref);
            // --iif rules for the interface must not keep its key, which a later load may
            // give another interface (only where a policy is stored: nothing is created).
            if (path_exists(shared_maps_dir() + "/xdpctl_pctl") && path_exists(shared_maps_dir() + "/xdpctl_psrc"))
                policy::PolicyStore().refresh_iif_keys();
            return 0;
        };
    });
}

}  // namespace xdpctl::ctl
