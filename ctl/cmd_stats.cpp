// `xdpctl stats`: counters per interface and hook; with --interval, rates per period.
#include <csignal>
#include <thread>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "util/error.h"
#include "attach/iface_pins.h"
#include "attach/pin_layout.h"
#include "stats/stats_snapshot.h"
#include "util/system_checks.h"

namespace xdpctl::ctl {

namespace {

volatile std::sig_atomic_t g_stop = 0;

struct Rate {
    double pps = 0, bps = 0;
};

// Counters of one hook as JSON: {"l3": {"ipv4": {...}}, "l4": ..., "verdict": ..., "malformed": ...}
nlohmann::json counters_json(const HookCounters& c, const HookCounters* prev, double secs)
{
    nlohmann::json j = {{"l3", nlohmann::json::object()},
                        {"l4", nlohmann::json::object()},
                        {"verdict", nlohmann::json::object()},
                        {"malformed", nlohmann::json::object()}};
    for (int i = 0; i < XDPCTL_CNT_MAX; i++) {
        nlohmann::json v = {{"packets", c[i].packets}, {"bytes", c[i].bytes}};
        if (prev) {
            v["pps"] = double(c[i].packets - (*prev)[i].packets) / secs;
            v["bps"] = double(c[i].bytes - (*prev)[i].bytes) * 8.0 / secs;
        }
        j[std::string(counter_group(i))][std::string(counter_name(i))] = v;
    }
    return j;
}

nlohmann::json snapshot_json(const IfaceSnapshot& s, const IfaceSnapshot* prev, double secs)
{
    nlohmann::json hooks = nlohmann::json::object();
    for (size_t h = 0; h < s.hooks.size(); h++) {
        const auto& hs = s.hooks[h];
        const HookCounters* p = prev ? &prev->hooks[h].total : nullptr;
        nlohmann::json hj = counters_json(hs.total, p, secs);
        if (!hs.per_cpu.empty()) {
            hj["per_cpu"] = nlohmann::json::array();
            for (size_t cpu = 0; cpu < hs.per_cpu.size(); cpu++) {
                const HookCounters* pc = prev ? &prev->hooks[h].per_cpu[cpu] : nullptr;
                hj["per_cpu"].push_back(
                    {{"cpu", cpu}, {"counters", counters_json(hs.per_cpu[cpu], pc, secs)}});
            }
        }
        hooks[std::string(hook_name(hs.hook))] = hj;
    }
    return {{"interface", s.iface.ifname}, {"netns", s.iface.netns}, {"hooks", hooks}};
}

std::string human(double v, const char* unit)
{
    const char* prefix[] = {"", "k", "M", "G", "T"};
    int i = 0;
    while (v >= 1000.0 && i < 4) {
        v /= 1000.0;
        i++;
    }
    return fmt::format("{:.{}f} {}{}", v, i ? 2 : 0, prefix[i], unit);
}

void print_snapshot(const IfaceSnapshot& s, const IfaceSnapshot* prev, double secs)
{
    fmt::print("{}\n", s.iface.display());
    if (prev)
        fmt::print("  {:<11} {:<26} {:>14} {:>14} {:>14} {:>14}\n", "HOOK", "COUNTER", "PACKETS",
                   "BYTES", "PPS", "BIT/S");
    else
        fmt::print("  {:<11} {:<26} {:>14} {:>14}\n", "HOOK", "COUNTER", "PACKETS", "BYTES");
    for (size_t h = 0; h < s.hooks.size(); h++) {
        const auto& hs = s.hooks[h];
        bool any = false;
        for (int i = 0; i < XDPCTL_CNT_MAX; i++)
            any |= hs.total[i].packets != 0;
        if (!any) {
            fmt::print("  {:<11} (no packets yet)\n", hook_name(hs.hook));
            continue;
        }
        for (int i = 0; i < XDPCTL_CNT_MAX; i++) {
            const auto& c = hs.total[i];
            // Malformed reasons are many and mostly zero: list the ones that happened.
            bool always = counter_group(i) == "verdict";
            if (!c.packets && !always)
                continue;
            std::string name = fmt::format("{}/{}", counter_group(i), counter_name(i));
            if (prev) {
                const auto& p = prev->hooks[h].total[i];
                fmt::print("  {:<11} {:<26} {:>14} {:>14} {:>14} {:>14}\n", hook_name(hs.hook),
                           name, c.packets, c.bytes,
                           human(double(c.packets - p.packets) / secs, "pps"),
                           human(double(c.bytes - p.bytes) * 8.0 / secs, "bit/s"));
            } else {
                fmt::print("  {:<11} {:<26} {:>14} {:>14}\n", hook_name(hs.hook), name,
                           c.packets, c.bytes);
            }
            for (size_t cpu = 0; cpu < hs.per_cpu.size(); cpu++)
                if (hs.per_cpu[cpu][i].packets)
                    fmt::print("  {:<11}   cpu{:<22} {:>14} {:>14}\n", "", cpu,
                               hs.per_cpu[cpu][i].packets, hs.per_cpu[cpu][i].bytes);
        }
    }
}

}  // namespace

void add_stats_command(CLI::App& app, const GlobalOptions& g, Runner& run)
{
    struct Opts {
        std::string iface;
        bool all = false, json = false, per_cpu = false;
        double interval = 0;
        long count = 0;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("stats", "Counters per hook: packets and bytes by L3, L4, "
                                            "verdict and malformed reason; rates with --interval");
    auto* iface = cmd->add_option("iface", o->iface, "Interface name");
    auto* all = cmd->add_flag("--all", o->all, "Every interface xdpctl is loaded on");
    iface->excludes(all);
    cmd->add_flag("-j,--json", o->json, "JSON output (one object per period with --interval)");
    cmd->add_flag("--per-cpu", o->per_cpu, "Also show each CPU's counters");
    cmd->add_option("--interval", o->interval, "Print rates every S seconds")
        ->check(interval_seconds());
    cmd->add_option("--count", o->count, "Stop after N periods (default: until Ctrl-C)")
        ->check(CLI::PositiveNumber);

    cmd->callback([&g, &run, o] {
        run = [&g, o] {
            if (!o->all && o->iface.empty())
                fail_usage("stats: name an interface or give --all");
            if (o->count && o->interval <= 0)
                fail_usage("stats: --count needs --interval");
            require_privileges();
            require_bpffs();
            std::vector<std::pair<IfaceRef, std::string>> ifaces;  // with their pin directory
            if (o->all)
                for (const auto& p : pinned_ifaces())
                    ifaces.emplace_back(p.ref(), p.dir);
            else {
                IfaceRef ref = iface_arg(g, o->iface);
                ifaces.emplace_back(ref, locate_pins(ref, "if").dir);
            }

            auto take = [&] {
                std::vector<IfaceSnapshot> v;
                for (const auto& [ref, dir] : ifaces)
                    v.push_back(take_snapshot(ref, dir, o->per_cpu));
                return v;
            };
            auto emit = [&](const std::vector<IfaceSnapshot>& cur,
                            const std::vector<IfaceSnapshot>* prev, double secs) {
                if (o->json || g.pretty) {
                    nlohmann::json j;
                    if (prev)
                        j["interval_s"] = secs;
                    j["interfaces"] = nlohmann::json::array();
                    for (size_t k = 0; k < cur.size(); k++)
                        j["interfaces"].push_back(
                            snapshot_json(cur[k], prev ? &(*prev)[k] : nullptr, secs));
                    print_json(g, j);
                } else {
                    if (cur.empty())
                        fmt::print("xdpctl is not loaded on any interface\n");
                    for (size_t k = 0; k < cur.size(); k++)
                        print_snapshot(cur[k], prev ? &(*prev)[k] : nullptr, secs);
                }
                std::fflush(stdout);
            };

            auto prev = take();
            if (o->interval <= 0) {
                emit(prev, nullptr, 0);
                return 0;
            }
            std::signal(SIGINT, [](int) { g_stop = 1; });
            std::signal(SIGTERM, [](int) { g_stop = 1; });
            for (long n = 0; !o->count || n < o->count; n++) {
                auto deadline = prev.empty() ? std::chrono::steady_clock::now()
                                             : prev.front().taken;
                deadline += std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                    std::chrono::duration<double>(o->interval));
                while (!g_stop && std::chrono::steady_clock::now() < deadline)
                    std::this_thread::sleep_for(std::chrono::milliseconds(20));
                if (g_stop)
                    break;
                auto cur = take();
                double secs = cur.empty() ? o->interval
                                          : std::chrono::duration<double>(cur.front().taken -
                                                                          prev.front().taken)
                                                .count();
                emit(cur, &prev, secs);
                prev = std::move(cur);
            }
            return 0;
        };
    });
}

}  // namespace xdpctl::ctl
