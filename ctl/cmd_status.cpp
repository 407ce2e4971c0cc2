#include <ctime>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "attach/datapath_paths.h"
#include "attach/dispatcher_probe.h"
#include "attach/loader.h"
#include "stats/status.h"
#include "util/system_checks.h"

namespace xdpctl::ctl {

namespace {

std::string iso_time(__u64 ns)
{
    if (!ns)
        return "";
    time_t t = static_cast<time_t>(ns / 1000000000ull);
    tm g{};
    gmtime_r(&t, &g);
    char buf[32];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &g);
    return buf;
}

// The paths a program contains, by name; an older xdpctl's program has them all.
std::vector<std::string> paths_of(const ProgStatus& p)
{
    return path_names(p.paths.value_or(XDPCTL_PATHS_ALL));
}

std::string paths_text(const ProgStatus& p)
{
    std::string out;
    for (const auto& n : paths_of(p))
        out += (out.empty() ? "" : ",") + n;
    return out.empty() ? "none" : out;
}

nlohmann::json ns_per_packet(const ProgStatus& p)
{
    if (!p.run_cnt)
        return nullptr;
    return double(p.run_time_ns) / double(p.run_cnt);
}

// "loaded"; "stale": pinned links detached (their interface or namespace is gone) or
// attached to another namespace's interface; "partial": an interrupted load left pins.
std::string state_of(const IfaceStatus& s)
{
    if (!s.stale.empty())
        return "stale";
    if (!s.meta)
        return "partial";
    return "loaded";
}

nlohmann::json to_json(const IfaceStatus& s)
{
    nlohmann::json j;
    j["interface"] = s.iface.ifname;
    j["netns"] = s.iface.netns;
    j["netns_id"] = s.netns_id;
    j["pin_dir"] = s.pin_dir;
    j["state"] = state_of(s);
    j["stale"] = s.stale;
    if (s.meta) {
        nlohmann::json hooks = nlohmann::json::array();
        if (s.meta->hooks & XDPCTL_HOOKS_XDP)
            hooks.push_back("xdp");
        if (s.meta->hooks & XDPCTL_HOOKS_TC)
            hooks.push_back("tc");
        j["hooks"] = hooks;
        j["ifindex"] = s.meta->ifindex;
        j["xdp_mode"] = xdp_mode_name(s.meta->xdp_mode);
        j["xdp_multi_buffer"] = (s.meta->flags & XDPCTL_META_F_XDP_FRAGS) != 0;
        j["tc_attach"] = tc_attach_name(s.meta->tc_attach);
        j["malformed"] = malformed_name(s.meta->malformed);
        j["loaded_at"] = iso_time(s.meta->loaded_at_ns);
        j["reloaded_at"] = iso_time(s.meta->reloaded_at_ns);
    }
    j["next"] = s.next ? nlohmann::json{{"id", s.next->id}, {"name", s.next->name}} : nlohmann::json();
    j["programs"] = nlohmann::json::array();
    for (const auto& p : s.progs)
        j["programs"].push_back({{"hook", p.hook},
                                 {"attach", p.attach},
                                 {"id", p.id},
                                 {"name", p.name},
                                 {"attached", p.linked},
                                 {"verified_insns", p.verified_insns},
                                 {"xlated_bytes", p.xlated_bytes},
                                 {"jited_bytes", p.jited_bytes},
                                 {"paths", paths_of(p)},
                                 {"run_cnt", p.run_cnt},
                                 {"run_time_ns", p.run_time_ns},
                                 {"ns_per_packet", ns_per_packet(p)}});
    __u64 mem = 0;
    j["maps"] = nlohmann::json::array();
    for (const auto& m : s.maps) {
        mem += m.memlock_bytes;
        j["maps"].push_back({{"name", m.name},
                             {"id", m.id},
                             {"type", m.type},
                             {"max_entries", m.max_entries},
                             {"memlock_bytes", m.memlock_bytes}});
    }
    j["memlock_bytes"] = mem;
    return j;
}

void print_table(const std::vector<IfaceStatus>& all, bool stats_on)
{
    if (all.empty()) {
        fmt::print("xdpctl is not loaded on any interface\n");
        return;
    }
    for (const auto& s : all) {
        if (!s.stale.empty()) {
            // A namespace without a name cannot be named with -n: only --all reaches it.
            fmt::print("{}: stale (pins under {}; 'xdpctl unload {}' removes them)\n", s.display,
                       s.pin_dir, s.display == s.iface.display() ? s.iface.cli_args() : "--all");
            for (const auto& why : s.stale)
                fmt::print("  {}\n", why);
            if (!s.meta)
                continue;
        }
        if (!s.meta) {
            fmt::print("{}: partial (an interrupted load left pins; 'xdpctl load' or 'xdpctl "
                       "unload' finishes it)\n",
                       s.display);
            continue;
        }
        fmt::print("{}  {}  ifindex {}  malformed: {}  loaded {}{}\n", s.display, state_of(s),
                   s.meta->ifindex, malformed_name(s.meta->malformed),
                   iso_time(s.meta->loaded_at_ns),
                   s.meta->reloaded_at_ns ? ", reloaded " + iso_time(s.meta->reloaded_at_ns) : "");
        fmt::print("  {:<11} {:<7} {:>6} {:<14} {:>9} {:>7} {:>7} {:>12} {:>8}  {}\n", "HOOK", "ATTACH",
                   "ID", "PROGRAM", "VERIFIED", "XLATED", "JITED", "RUNS", "NS/PKT", "PATHS");
        for (const auto& p : s.progs) {
            auto nspp = ns_per_packet(p);
            fmt::print("  {:<11} {:<7} {:>6} {:<14} {:>9} {:>7} {:>7} {:>12} {:>8}  {}{}\n", p.hook,
                       p.attach, p.id, p.name, p.verified_insns, p.xlated_bytes, p.jited_bytes,
                       stats_on ? fmt::format("{}", p.run_cnt) : "-",
                       nspp.is_null() ? "-" : fmt::format("{:.1f}", nspp.get<double>()),
                       paths_text(p), p.linked ? "" : "  (detached: device gone)");
        }
        if (s.meta->flags & XDPCTL_META_F_XDP_FRAGS)
            fmt::print("  xdp: multi-buffer (frames over one buffer, e.g. jumbo frames)\n");
        if (s.next)
            fmt::print("  xdp next: {}\n", s.next->id ? fmt::format("program id {} ('{}'): runs on what "
                                                                    "xdpctl passes", s.next->id, s.next->name)
                                                        : std::string("none (slot empty: XDP_PASS)"));
        __u64 mem = 0;
        std::string maps;
        for (const auto& m : s.maps) {
            mem += m.memlock_bytes;
            maps += fmt::format("{}{} {} x{} {} B", maps.empty() ? "" : ", ", m.name, m.type,
                                m.max_entries, m.memlock_bytes);
        }
        fmt::print("  maps: {} (total {} B)\n", maps, mem);
    }
    if (!stats_on)
        fmt::print("(run time per packet: sysctl -w kernel.bpf_stats_enabled=1)\n");
}

void print_shared(const std::vector<MapStatus>& shared)
{
    if (shared.empty())
        return;
    __u64 total = 0;
    for (const auto& m : shared)
        total += m.memlock_bytes;
    fmt::print("shared maps (policy and load balancer, all interfaces): {} maps, {:.1f} MiB\n", shared.size(),
               double(total) / (1 << 20));
    for (const auto& m : shared)
        fmt::print("  {:<22} {:<14} x{:<9} {:>12} B\n", m.name, m.type, m.max_entries,
                   m.memlock_bytes);
}

void print_decaps(const std::vector<DecapStatus>& decaps)
{
    for (const auto& d : decaps) {
        if (d.stale.empty()) {
            fmt::print("decapsulator on {}: attached\n", d.display);
            continue;
        }
        fmt::print("decapsulator on {}: stale (pins under {}; 'xdpctl {}' removes them)\n",
                   d.display, d.pin_dir,
                   d.display == d.iface.display()
                       ? (d.iface.netns.empty() ? "" : "-n " + d.iface.netns + " ") +
                             "lb decap detach " + d.iface.ifname
                       : std::string("unload --all"));
        for (const auto& why : d.stale)
            fmt::print("  {}\n", why);
    }
}

void print_lb(const std::optional<LbStatus>& lb)
{
    if (!lb || lb->vips == 0)
        return;
    fmt::print("load balancer: {} VIPs, {} backends; connection table {} entries: {} hits, {} "
               "misses ('xdpctl lb list' for more)\n",
               lb->vips, lb->backends, lb->conntrack_entries, lb->conntrack_hits, lb->conntrack_misses);
}

}  // namespace

void add_status_command(CLI::App& app, const GlobalOptions& g, Runner& run)
{
    auto json = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand("status", "Where xdpctl is loaded: programs, verified "
                                             "instructions, JIT size, run time, map memory");
    cmd->add_flag("-j,--json", *json, "JSON output (keys in docs/cli.md)");
    cmd->callback([&g, &run, json] {
        run = [&g, json] {
            require_privileges();
            require_bpffs();
            auto all = collect_status();
            auto shared = collect_shared_maps();
            auto lb = collect_lb_status();
            auto decaps = collect_decap_status();
            bool stats_on = bpf_stats_enabled();
            const DispatcherSupport dispatcher = probe_libxdp_dispatcher();
            if (*json || g.pretty) {
                nlohmann::json j;
                j["bpf_stats_enabled"] = stats_on;
                j["libxdp_dispatcher"] = {{"available", dispatcher.available}, {"reason", dispatcher.reason}};
                j["shared_maps"] = nlohmann::json::array();
                __u64 shared_mem = 0;
                for (const auto& m : shared) {
                    shared_mem += m.memlock_bytes;
                    j["shared_maps"].push_back({{"name", m.name},
                                                {"id", m.id},
                                                {"type", m.type},
                                                {"max_entries", m.max_entries},
                                                {"memlock_bytes", m.memlock_bytes}});
                }
                j["shared_memlock_bytes"] = shared_mem;
                j["load_balancer"] = nullptr;
                if (lb)
                    j["load_balancer"] = {{"vips", lb->vips},
                                          {"backends", lb->backends},
                                          {"conntrack_entries", lb->conntrack_entries},
                                          {"conntrack_hits", lb->conntrack_hits},
                                          {"conntrack_misses", lb->conntrack_misses}};
                j["interfaces"] = nlohmann::json::array();
                for (const auto& s : all)
                    j["interfaces"].push_back(to_json(s));
                j["decapsulators"] = nlohmann::json::array();
                for (const auto& d : decaps)
                    j["decapsulators"].push_back({{"interface", d.iface.ifname},
                                                  {"netns", d.iface.netns},
                                                  {"pin_dir", d.pin_dir},
                                                  {"state", d.stale.empty() ? "attached" : "stale"},
                                                  {"stale", d.stale}});
                print_json(g, j);
            } else {
                print_table(all, stats_on);
                print_shared(shared);
                print_lb(lb);
                print_decaps(decaps);
                // Other XDP programs beside xdpctl's: `load --next`, or libxdp where it can run.
                if (!dispatcher.available)
                    fmt::print("libxdp's dispatcher cannot run here ('load --next' chains XDP programs "
                               "instead): {}\n", dispatcher.reason);
            }
            return 0;
        };
    });
}

}  // namespace xdpctl::ctl
