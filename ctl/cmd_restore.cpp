// `xdpctl restore`: what the state directory records, made live again (after a reboot:
// bpffs empty). On a running system that already has it, a no-op that says so.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "util/error.h"
#include "attach/loader.h"
#include "state/restore.h"
#include "state/state_record.h"

namespace xdpctl::ctl {

namespace {

std::string hooks_text(const state::IfaceRecord& r)
{
    std::string s;
    if (r.hooks & XDPCTL_HOOKS_XDP)
        s = fmt::format("xdp ({})", xdp_mode_name(r.xdp_mode));
    if (r.hooks & XDPCTL_HOOKS_TC)
        s += fmt::format("{}tc ({})", s.empty() ? "" : ", ", tc_attach_name(r.tc_attach));
    return s;
}

nlohmann::json report_json(const state::RestoreReport& r)
{
    nlohmann::json ifaces = nlohmann::json::array();
    for (const auto& i : r.ifaces)
        ifaces.push_back({{"interface", i.rec.iface.ifname},
                          {"netns", i.rec.iface.netns},
                          {"hooks", hooks_text(i.rec)},
                          {"outcome", state::outcome_name(i.outcome)},
                          {"detail", i.detail}});
    nlohmann::json decaps = nlohmann::json::array();
    for (const auto& d : r.decaps)
        decaps.push_back({{"interface", d.rec.iface.ifname},
                          {"netns", d.rec.iface.netns},
                          {"addresses", d.rec.addrs.size()},
                          {"outcome", state::outcome_name(d.outcome)},
                          {"detail", d.detail}});
    return {{"state_dir", r.dir},         {"recorded", r.recorded},
            {"generation", r.generation}, {"unchanged", r.unchanged()},
            {"policy_restored", r.policy_restored}, {"rules", r.rules},
            {"sets", r.sets},             {"lb_restored", r.lb_restored},
            {"vips", r.vips},             {"interfaces", std::move(ifaces)},
            {"decapsulators", std::move(decaps)}};
}

void print_report(const state::RestoreReport& r)
{
    if (!r.recorded) {
        fmt::print("nothing to restore: no state recorded in {}\n", r.dir);
        return;
    }
    if (r.unchanged() && r.exit_code() == 0) {
        fmt::print("nothing to restore: the running system already has the state of {} "
                   "(generation {})\n", r.dir, r.generation);
        return;
    }
    fmt::print("policy: {} ({} rule(s), {} set(s))\n",
               r.policy_restored ? "restored" : "already in force", r.rules, r.sets);
    fmt::print("load balancer: {} ({} VIP(s))\n", r.lb_restored ? "restored" : "already in force", r.vips);
    auto why = [](const auto& e) {
        return e.detail.empty() ? std::string()
                                : fmt::format(" ({}){}", e.detail,
                                              e.outcome == state::RestoreReport::Outcome::missing ? ": skipped" : "");
    };
    for (const auto& i : r.ifaces)
        fmt::print("{}: {}{}{}\n", i.rec.iface.display(), state::outcome_name(i.outcome),
                   i.outcome == state::RestoreReport::Outcome::loaded ? ", " + hooks_text(i.rec) : "", why(i));
    for (const auto& d : r.decaps)
        fmt::print("decapsulator on {}: {}{}\n", d.rec.iface.display(), state::outcome_name(d.outcome), why(d));
}

}  // namespace

void add_restore_command(CLI::App& app, const GlobalOptions& g, Runner& run)
{
    auto json = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand("restore", "Re-create the policy, the load balancer and the "
                                              "loaded interfaces recorded in the state directory "
                                              "(after a reboot); a no-op when they are in force");
    cmd->add_flag("-j,--json", *json, "JSON output");
    cmd->callback([&g, &run, json] {
        run = [&g, json] {
            if (state::state_dir().empty())
                fail_usage("restore: --state-dir is empty: no state directory to restore from");
            const state::RestoreReport r = state::restore_state(state::StateDir(state::state_dir()));
            if (*json || g.pretty)
                print_json(g, report_json(r));
            else
                print_report(r);
            return r.exit_code();
        };
    });
}

}  // namespace xdpctl::ctl
