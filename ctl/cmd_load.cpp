#include <fmt/core.h>

#include "command.h"
#include "attach/loader.h"
#include "policy/policy_store.h"
#include "policy/rule_parse.h"
#include "state/state_record.h"
#include "util/writer_lock.h"
#include "policy_json.h"

namespace xdpctl::ctl {

void add_load_command(CLI::App& app, const GlobalOptions& g, Runner& run)
{
    struct Opts {
        std::string iface;
        std::string mode = "auto";
        std::string hook = "xdp";
        std::string tc_mode = "auto";
        std::string malformed = "pass";
        bool force = false;
        uint32_t lb_conntrack = 0;
        std::string next;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("load", "Attach xdpctl to an interface; it stays attached after "
                                           "xdpctl exits (pinned links)");
    cmd->add_option("iface", o->iface, "Interface name")->required();
    cmd->add_option("--mode", o->mode, "XDP mode: auto takes native where the driver has it")
        ->check(CLI::IsMember({"auto", "native", "skb"}))
        ->capture_default_str();
    cmd->add_option("--hook", o->hook, "Where to attach: xdp, tc (ingress+egress) or both")
        ->check(CLI::IsMember({"xdp", "tc", "both"}))
        ->capture_default_str();
    cmd->add_option("--tc-mode", o->tc_mode, "TC attach: tcx links, or the clsact fallback")
        ->check(CLI::IsMember({"auto", "tcx", "clsact"}))
        ->capture_default_str();
    cmd->add_option("--malformed", o->malformed,
                    "What malformed frames get (they are counted either way)")
        ->check(CLI::IsMember({"pass", "drop"}))
        ->capture_default_str();
    cmd->add_flag("--force", o->force,
                  "Replace another XDP program, or reload xdpctl's own (counters are kept)");

    cmd->add_option("--lb-conntrack", o->lb_conntrack,
                    "Load balancer: connection-table entries (per CPU), when the first load "
                    "creates the table (default 65536)")
        ->check(CLI::Range(1u, 1u << 26));
    cmd->add_option("--next", o->next,
                    "An XDP program pinned in bpffs that runs on what xdpctl passes (a tail "
                    "call), or 'none'; on a loaded interface only this changes");
    cmd->callback([&g, &run, o] {
        run = [&g, o] {
            LoadOptions lo;
            lo.iface = iface_arg(g, o->iface);
            lo.hooks = o->hook == "tc" ? HookSelection::tc
                       : o->hook == "both" ? HookSelection::both
                                           : HookSelection::xdp;
            lo.xdp_mode = o->mode == "native" ? XdpModeRequest::native
                          : o->mode == "skb"  ? XdpModeRequest::skb
                                              : XdpModeRequest::automatic;
            lo.tc_mode = o->tc_mode == "tcx"      ? TcModeRequest::tcx
                         : o->tc_mode == "clsact" ? TcModeRequest::clsact
                                                  : TcModeRequest::automatic;
            lo.malformed = o->malformed == "drop" ? XDPCTL_MALFORMED_DROP : XDPCTL_MALFORMED_PASS;
            lo.force = o->force;
            lo.lb_conntrack = o->lb_conntrack;
            if (!o->next.empty())
                lo.next = o->next;

            // Held to the end: the policy's commit below nests in it.
            WriterLock lock;
            LoadResult r = load(lo);
            state::iface_loaded(lo, r);
            std::string hooks;
            if (r.meta.hooks & XDPCTL_HOOKS_XDP)
                hooks += fmt::format("xdp ({})", xdp_mode_name(r.meta.xdp_mode));
            if (r.meta.hooks & XDPCTL_HOOKS_TC)
                hooks += fmt::format("{}tc ingress+egress ({})", hooks.empty() ? "" : ", ",
                                     tc_attach_name(r.meta.tc_attach));
            for (const auto& n : r.notes)
                fmt::print("note: {}\n", n);
            fmt::print("{} {}: {}; malformed frames: {}\n", r.reloaded ? "reloaded on" : "loaded on",
                       lo.iface.display(), hooks, malformed_name(r.meta.malformed));
            // The filtering policy is host-wide: say which one this interface now runs. Its
            // --iif rules match interface keys, and this one may be new (or named by an
            // --iif-pending rule): commit them again.
            policy::PolicyStore store;
            store.refresh_iif_keys();
            policy::Policy p = store.current();
            if (!p.rules.empty() || p.default_action != policy::ActionKind::pass)
                fmt::print("filtering policy in force (shared by all interfaces): {} rule(s), "
                           "default {} ('xdpctl rule list')\n",
                           p.rules.size(), policy::action_name(p.default_action));
            return 0;
        };
    });
}

}  // namespace xdpctl::ctl
