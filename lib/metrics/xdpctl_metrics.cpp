#include "metrics/xdpctl_metrics.h"

#include <chrono>
#include <functional>
#include <optional>

#include <fmt/format.h>

#include "stats/counters.h"
#include "util/error.h"
#include "attach/iface_pins.h"
#include "attach/iface_ref.h"
#include "lb/counter_floor.h"
#include "lb/lb_store.h"
#include "metrics/exposition.h"
#include "attach/pin_layout.h"
#include "policy/rule_listing.h"
#include "policy/rule_parse.h"
#include "stats/stats_snapshot.h"
#include "stats/status.h"

namespace xdpctl::metrics {

namespace {

struct LbBackendData {
    std::string addr;
    uint32_t weight = 0;
    xdpctl_lb_ctr ctr{};
    uint32_t effective_weight = 0;          // 0 while a health check holds it down
    bool down = false;
    std::optional<lb::LbHealthRec> health;  // xdpd's check results
};
struct LbVipData {
    std::string vip;
    xdpctl_lb_ctr ctr{};
    std::vector<LbBackendData> backends;
};
struct LbData {
    std::vector<LbVipData> vips;
    xdpctl_lb_stats stats{};
};

// Each part read once per scrape, before anything is formatted: a family's samples must be
// together, and one family spans every interface.
struct Sources {
    std::vector<IfaceSnapshot> ifaces;
    std::optional<policy::RuleListing> rules;
    std::optional<LbData> lb;
    bool bpf_stats = false;
    std::vector<IfaceStatus> progs;
};

std::vector<IfaceSnapshot> read_ifaces(std::vector<std::string>& errors)
{
    // As `stats --all`, except that one interface's failure (pins left by an interrupted
    // load) leaves out that interface only.
    std::vector<IfaceSnapshot> v;
    for (const auto& p : pinned_ifaces()) {
        try {
            v.push_back(take_snapshot(p.ref(), p.dir, false));
        } catch (const std::exception& e) {
            errors.push_back(fmt::format("interfaces: {}", e.what()));
        }
    }
    return v;
}

LbData read_lb()
{
    lb::LbStore store(Access::read);
    lb::LbMaps& m = store.maps();
    LbData d;
    const auto vips = m.vips();
    std::vector<std::vector<lb::BackendEntry>> backends;
    std::vector<lb::BackendEntry> every_backend;
    for (const auto& v : vips) {
        backends.push_back(m.backends(v.rec.id));
        every_backend.insert(every_backend.end(), backends.back().begin(), backends.back().end());
    }
    // Scrapes of one process never see a counter go down (lb/counter_floor.h): a read can be
    // short by the hits a slot moves into a counter already read.
    static lb::CounterFloor floor(lb::fcache_slack());
    const lb::LbMaps::AllCounters all = floor.hold(vips, every_backend, m.all_counters());
    for (size_t k = 0; k < vips.size(); k++) {
        const auto& v = vips[k];
        LbVipData vd{lb::format_vip(v.spec), all.vip.at(v.rec.id), {}};
        for (const auto& b : backends[k])
            vd.backends.push_back({lb::format_ip(b.addr()), b.rec.weight, all.backend.at(b.slot),
                                   b.effective_weight(), b.down(), m.health(b)});
        d.vips.push_back(std::move(vd));
    }
    d.stats = all.stats;
    return d;
}

// Runs one part; its failure is reported and the part left out.
bool read_part(const char* part, std::vector<std::string>& errors, const std::function<void()>& read)
{
    try {
        read();
        return true;
    } catch (const std::exception& e) {
        errors.push_back(fmt::format("{}: {}", part, e.what()));
        return false;
    }
}

void write_iface_counters(Exposition& x, const std::vector<IfaceSnapshot>& ifaces)
{
    // One pair of families per counter group; the group's slot names are the label values
    // (the keys of `stats --json`).
    struct Group {
        std::string_view group, label, packets, bytes, what;
    };
    static constexpr Group groups[] = {
        {"verdict", "verdict", "xdpctl_packets_total", "xdpctl_bytes_total", "by verdict (pass or drop)"},
        {"l3", "proto", "xdpctl_l3_packets_total", "xdpctl_l3_bytes_total", "by network protocol"},
        {"l4", "proto", "xdpctl_l4_packets_total", "xdpctl_l4_bytes_total", "by transport protocol"},
        {"malformed", "reason", "xdpctl_malformed_packets_total", "xdpctl_malformed_bytes_total",
         "malformed, by reason"},
    };
    for (const Group& g : groups)
        for (bool bytes : {false, true}) {
            x.family(bytes ? g.bytes : g.packets, "counter",
                     fmt::format("{} seen by xdpctl's programs, {} (xdpctl stats)",
                                 bytes ? "Bytes" : "Packets", g.what));
            for (const auto& s : ifaces)
                for (const auto& h : s.hooks)
                    for (int i = 0; i < XDPCTL_CNT_MAX; i++) {
                        if (counter_group(i) != g.group)
                            continue;
                        x.sample({{"netns", s.iface.netns},
                                  {"iface", s.iface.ifname},
                                  {"hook", hook_name(h.hook)},
                                  {g.label, counter_name(i)}},
                                 bytes ? h.total[i].bytes : h.total[i].packets);
                    }
        }
}

void write_rules(Exposition& x, const policy::RuleListing& l)
{
    using namespace policy;
    const auto order = evaluation_order(l.policy);
    std::vector<std::string> labels;  // each rule's, formatted once for both families
    labels.reserve(order.size());
    for (const Rule* r : order)
        labels.push_back(Exposition::format_labels({{"id", std::to_string(r->id)},
                                                    {"action", action_name(r->action.kind)},
                                                    {"dir", r->dir == Direction::egress ? "egress" : "ingress"}}));
    for (bool bytes : {false, true}) {
        x.family(bytes ? "xdpctl_rule_bytes_total" : "xdpctl_rule_packets_total", "counter",
                 fmt::format("{} that matched a rule (xdpctl rule list)", bytes ? "Bytes" : "Packets"));
        for (size_t k = 0; k < order.size(); k++) {
            auto it = l.counters.find(order[k]->id);
            const RuleCounters c = it == l.counters.end() ? RuleCounters{} : it->second;
            x.sample_formatted(labels[k], bytes ? c.bytes : c.packets);
        }
    }
    x.family("xdpctl_policy_rules", "gauge", "Rules in the committed policy");
    x.sample({}, uint64_t(l.policy.rules.size()));
    x.family("xdpctl_policy_commits_total", "counter", "Policy commits since the policy maps were made");
    x.sample({}, l.commits);
    x.family("xdpctl_policy_last_commit_timestamp_seconds", "gauge",
             "Unix time of the last policy commit (absent before the first one)");
    if (l.last_commit_unix_ns)
        x.sample({}, double(l.last_commit_unix_ns) / 1e9);
}

// Health checks (xdpd, lib/service/health_checker.h): state for every backend, the check
// counters for those xdpd has results for.
void write_lb_health(Exposition& x, const LbData& d)
{
    auto each = [&](auto&& value) {
        for (const auto& v : d.vips)
            for (const auto& b : v.backends)
                value(Labels{{"vip", v.vip}, {"backend", b.addr}}, b);
    };
    x.family("xdpctl_lb_backend_up", "gauge", "1 unless a health check took the backend out of rotation");
    each([&](const Labels& l, const LbBackendData& b) { x.sample(l, uint64_t(!b.down)); });
    x.family("xdpctl_lb_backend_effective_weight", "gauge",
             "The weight the Maglev table gives a backend: 0 while it is down, else its weight");
    each([&](const Labels& l, const LbBackendData& b) { x.sample(l, uint64_t(b.effective_weight)); });
    struct F {
        const char *name, *help;
        uint64_t lb::LbHealthRec::*field;
    };
    static constexpr F fs[] = {
        {"xdpctl_lb_health_checks_total", "Health checks of a backend run by xdpd", &lb::LbHealthRec::checks},
        {"xdpctl_lb_health_check_failures_total", "Failed health checks of a backend", &lb::LbHealthRec::failures},
        {"xdpctl_lb_health_changes_total", "Up/down changes of a backend by its health check",
         &lb::LbHealthRec::changes},
    };
    for (const F& f : fs) {
        x.family(f.name, "counter", f.help);
        each([&](const Labels& l, const LbBackendData& b) {
            if (b.health)
                x.sample(l, uint64_t((*b.health).*f.field));
        });
    }
}

void write_lb(Exposition& x, const LbData& d)
{
    auto ctr_families = [&](const char* what, auto&& each) {
        struct F {
            const char* suffix;
            const char* help;
            __u64 xdpctl_lb_ctr::*field;
        };
        static constexpr F fs[] = {{"packets_total", "Packets", &xdpctl_lb_ctr::packets},
                                   {"bytes_total", "Bytes", &xdpctl_lb_ctr::bytes},
                                   {"new_flows_total", "New flows", &xdpctl_lb_ctr::new_flows}};
        for (const F& f : fs) {
            x.family(fmt::format("xdpctl_lb_{}_{}", what, f.suffix), "counter",
                     fmt::format("{} load balanced per {} (xdpctl lb list)", f.help, what));
            each(f.field);
        }
    };
    ctr_families("vip", [&](__u64 xdpctl_lb_ctr::*field) {
        for (const auto& v : d.vips)
            x.sample({{"vip", v.vip}}, v.ctr.*field);
    });
    ctr_families("backend", [&](__u64 xdpctl_lb_ctr::*field) {
        for (const auto& v : d.vips)
            for (const auto& b : v.backends)
                x.sample({{"vip", v.vip}, {"backend", b.addr}}, b.ctr.*field);
    });
    x.family("xdpctl_lb_backend_weight", "gauge", "A backend's configured weight (0: no new flows)");
    for (const auto& v : d.vips)
        for (const auto& b : v.backends)
            x.sample({{"vip", v.vip}, {"backend", b.addr}}, uint64_t(b.weight));
    write_lb_health(x, d);
    x.family("xdpctl_lb_conntrack_hits_total", "counter", "Load-balanced packets found in the connection table");
    x.sample({}, uint64_t(d.stats.cnt[XDPCTL_LB_CNT_CT_HIT]));
    x.family("xdpctl_lb_conntrack_misses_total", "counter",
             "Load-balanced packets not in the connection table (scheduled by Maglev)");
    x.sample({}, uint64_t(d.stats.cnt[XDPCTL_LB_CNT_CT_MISS]));
    x.family("xdpctl_lb_events_total", "counter",
             "The load balancer's other counters, by the name `lb list --json` gives them");
    for (int i = XDPCTL_LB_CNT_CT_MISS + 1; i < XDPCTL_LB_CNT_MAX; i++)
        x.sample({{"event", lb::lb_counter_name(i)}}, uint64_t(d.stats.cnt[i]));
}

void write_programs(Exposition& x, const Sources& s)
{
    x.family("xdpctl_bpf_stats_enabled", "gauge",
             "1 when kernel.bpf_stats_enabled is on: program runs and run time are counted then (or "
             "while a BPF_ENABLE_STATS fd is open)");
    x.sample({}, uint64_t(s.bpf_stats));
    for (bool time : {false, true}) {
        x.family(time ? "xdpctl_program_run_seconds_total" : "xdpctl_program_runs_total", "counter",
                 time ? "Time xdpctl's programs ran (kernel.bpf_stats_enabled)"
                      : "Runs of xdpctl's programs (kernel.bpf_stats_enabled)");
        for (const auto& st : s.progs)
            for (const auto& p : st.progs) {
                Labels l{{"netns", st.iface.netns}, {"iface", st.iface.ifname}, {"hook", p.hook}};
                if (time)
                    x.sample(l, double(p.run_time_ns) / 1e9);
                else
                    x.sample(l, uint64_t(p.run_cnt));
            }
    }
}

}  // namespace

Scrape scrape_metrics()
{
    const auto t0 = std::chrono::steady_clock::now();
    Scrape out;
    Sources s;
    std::vector<std::pair<const char*, bool>> parts;
    parts.emplace_back("interfaces", read_part("interfaces", out.errors, [&] { s.ifaces = read_ifaces(out.errors); }));
    // A reader that finds no shared maps leaves them unmade (a store would make them).
    parts.emplace_back("rules", read_part("rules", out.errors, [&] {
        if (path_exists(shared_maps_dir() + "/xdpctl_pctl"))
            s.rules = policy::read_rule_listing(policy::PolicyStore(Access::read));
    }));
    parts.emplace_back("lb", read_part("lb", out.errors, [&] {
        if (path_exists(shared_maps_dir() + "/xdpctl_lb_vips"))
            s.lb = read_lb();
    }));
    parts.emplace_back("programs", read_part("programs", out.errors, [&] {
        // Always read: the kernel also counts while a BPF_ENABLE_STATS fd is open, which the
        // sysctl does not show; with neither, the counts stay as they were (0 at first).
        s.bpf_stats = bpf_stats_enabled();
        s.progs = collect_status();
    }));

    Exposition x;
    write_iface_counters(x, s.ifaces);
    if (s.rules)
        write_rules(x, *s.rules);
    if (s.lb)
        write_lb(x, *s.lb);
    write_programs(x, s);
    x.family("xdpctl_scrape_part_ok", "gauge",
             "1 when the part was read, 0 when it failed (xdpd logs why)");
    for (const auto& [part, ok] : parts)
        x.sample({{"part", part}}, uint64_t(ok));
    x.family("xdpctl_scrape_duration_seconds", "gauge", "How long reading and formatting this scrape took");
    x.sample({}, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    out.text = x.text();
    return out;
}

}  // namespace xdpctl::metrics
