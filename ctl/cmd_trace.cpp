// `xdpctl trace`: the decision events of --log rules (docs/service.md, "Trace"), live, one
// line (or JSON object) each, and/or into a pcap; Ctrl-C (SIGINT) or --count ends it, the pcap
// flushed and a summary of what the rules did not send on stderr.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <memory>

#include <fmt/core.h>

#include "command.h"
#include "explain/pcap_file.h"
#include "policy/policy_store.h"
#include "policy/rule_listing.h"
#include "trace/event_decode.h"
#include "trace/event_ring.h"
#include "trace/log_state.h"
#include "util/error.h"

namespace xdpctl::ctl {

namespace {

struct TraceOpts {
    uint32_t rule = 0;   // 0: every rule
    uint64_t count = 0;  // 0: until Ctrl-C
    std::string pcap;
    bool json = false;
};

volatile sig_atomic_t g_trace_stop = 0;

void on_stop(int)
{
    g_trace_stop = 1;
}

// SIGINT and SIGTERM end the loop: the ring's poll returns -EINTR (no SA_RESTART).
void catch_stop_signals()
{
    struct sigaction sa {};
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

std::string local_time(uint64_t unix_ns)
{
    const time_t s = time_t(unix_ns / 1000000000);
    tm t{};
    localtime_r(&s, &t);
    return fmt::format("{:02}:{:02}:{:02}.{:06}", t.tm_hour, t.tm_min, t.tm_sec, unix_ns % 1000000000 / 1000);
}

// Events over the rate and lost to a full ring since `before` (the counts when trace started).
void print_summary(uint64_t shown, const trace::LogStates& before)
{
    const trace::LogStates now = trace::read_log_states();
    uint64_t not_sent = 0;
    for (size_t s = 0; s < now.by_slot.size() && s < before.by_slot.size(); s++)
        not_sent += now.by_slot[s].not_sent - before.by_slot[s].not_sent;
    fmt::print(stderr, "xdpctl trace: {} events; meanwhile {} not sent (over a rule's --log-rate), {} lost "
                       "(ring full)\n",
               shown, not_sent, now.ring_full - before.ring_full);
}

int run_trace(const GlobalOptions& g, const TraceOpts& o)
{
    catch_stop_signals();
    if (o.rule) {
        policy::PolicyStore store(Access::read);
        const policy::Policy p = store.current();
        const auto it = std::find_if(p.rules.begin(), p.rules.end(),
                                     [&](const policy::Rule& r) { return r.id == o.rule; });
        if (it == p.rules.end())
            fail_usage("--rule {}: no rule with this id ('xdpctl rule list' shows them)", o.rule);
        if (!it->log_rate)
            fmt::print(stderr, "xdpctl trace: rule {} has no --log: it sends no events\n", o.rule);
    }
    std::unique_ptr<explain::PcapWriter> pcap;
    if (!o.pcap.empty())
        pcap = std::make_unique<explain::PcapWriter>(o.pcap, XDPCTL_EVENT_SNAP);
    const int64_t to_unix = trace::monotonic_to_unix_ns();
    timespec mono{};
    clock_gettime(CLOCK_MONOTONIC, &mono);
    // Events left in the ring from before (no reader then) are not this trace's.
    const uint64_t start = uint64_t(mono.tv_sec) * 1000000000 + uint64_t(mono.tv_nsec);
    std::map<uint32_t, trace::KeyedIface> ifaces = trace::ifaces_by_key();
    const trace::LogStates before = trace::read_log_states();
    uint64_t shown = 0;
    trace::EventRing ring([&](const xdpctl_event& e) {
        if (e.time_ns < start || (o.rule && e.rule_id != o.rule) || (o.count && shown >= o.count))
            return;
        auto it = ifaces.find(e.iif_key);
        if (it == ifaces.end()) {  // loaded after trace started
            ifaces = trace::ifaces_by_key();
            it = ifaces.find(e.iif_key);
        }
        if (!g.netns.empty() && (it == ifaces.end() || it->second.netns != g.netns))
            return;
        const std::string iface = it != ifaces.end() ? it->second.display : fmt::format("ifindex {}", e.ifindex);
        const uint64_t unix_ns = e.time_ns + uint64_t(to_unix);
        shown++;
        if (pcap)
            pcap->add(unix_ns, e.pkt_len, e.data, std::min<uint32_t>(e.cap_len, XDPCTL_EVENT_SNAP));
        if (o.json)
            print_json(g, trace::event_json(e, unix_ns, iface));
        else
            fmt::print("{}\n", trace::event_line(e, local_time(unix_ns), iface));
        std::fflush(stdout);
    });
    while (!g_trace_stop && (!o.count || shown < o.count)) {
        ring.poll(200);
        if (pcap)
            pcap->flush();  // readable while trace runs
    }
    if (pcap)
        pcap->flush();
    print_summary(shown, before);
    return 0;
}

}  // namespace

void add_trace_command(CLI::App& app, const GlobalOptions& g, Runner& run)
{
    auto o = std::make_shared<TraceOpts>();
    auto* cmd = app.add_subcommand(
        "trace", "Decision events of rules with --log, live: one line each (time, interface, hook, rule, "
                 "verdict, addresses, ports), and/or into a pcap; Ctrl-C ends it");
    cmd->add_option("--rule", o->rule, "Only this rule's events")->check(CLI::Range(1u, UINT32_MAX));
    cmd->add_option("--count", o->count, "Stop after N events")->check(CLI::Range(uint64_t(1), UINT64_MAX));
    cmd->add_option("--pcap", o->pcap,
                    "Also write the events' packets (their first 128 bytes) to this pcap file");
    cmd->add_flag("-j,--json", o->json, "One JSON object an event (keys in docs/service.md)");
    cmd->callback([&g, &run, o] { run = [&g, o] { return run_trace(g, *o); }; });
}

}  // namespace xdpctl::ctl
