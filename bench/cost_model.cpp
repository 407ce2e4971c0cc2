// xdpctl-costmodel: which cost model this machine has, for scripts/bench.sh's report. Every
// figure of a benchmark depends on it (shared/notes in the steering docs, docs/benchmarks.md):
// where the kernel mitigates SRSO with Safe RET a helper call costs 7-10 ns and calls
// dominate; where it does not, a call costs ~1 ns and instructions, branches and code size
// dominate. Prints one JSON object: the CPU's mitigation state (the vulnerability files that
// change what a call or a return costs) and the measured price of one helper call, the
// difference between bench_xdp_calls and the empty program divided by its calls.
//
// And what a commit waits for: an RCU grace period (an update of a map-in-map element
// returns after synchronize_rcu(), docs/filtering.md "A commit beside its grace period").
// Where the kernel expedites grace periods (/sys/kernel/rcu_expedited 1) that is tens of
// microseconds; with the kernel's default, 8-20 ms, as long as all else a `rule add` at
// 10,000 rules does: the control-plane figures depend on it as the datapath's on a call.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bpf_test_run.h"
#include <bpf/bpf.h>

#include "util/error.h"
#include "util/unique_fd.h"
#include "packet_builder.h"
#include "attach/skeleton.h"
#include "xdpctl_bench_cost.h"
#include "xdpctl_bench_empty.skel.h"

using namespace xdpctl::test;

namespace {

constexpr int kRepeat = 200000;
constexpr int kRounds = 7;

std::string read_line(const std::string& path)
{
    std::ifstream in(path);
    std::string s;
    if (!in || !std::getline(in, s))
        return "absent";
    return s;
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

double run_ns(int fd, const std::vector<uint8_t>& frame)
{
    const RunResult r = test_run(fd, frame, kRepeat);
    if (r.err)
        xdpctl::fail("BPF_PROG_TEST_RUN: {}", xdpctl::errno_str(r.err));
    return double(r.duration_ns);
}

constexpr int kGraceRounds = 7;

// One synchronize_rcu() as a commit waits for it: the same inner map put back into its slot
// of an ARRAY_OF_MAPS. Milliseconds, median of kGraceRounds.
double grace_period_ms()
{
    xdpctl::UniqueFd inner(bpf_map_create(BPF_MAP_TYPE_ARRAY, "xdpctl_cm_in", 4, 4, 1, nullptr));
    if (!inner)
        xdpctl::fail("cannot create an array map: {}", xdpctl::errno_str(errno));
    LIBBPF_OPTS(bpf_map_create_opts, o, .inner_map_fd = uint32_t(inner.get()));
    xdpctl::UniqueFd outer(bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "xdpctl_cm_out", 4, 4, 1, &o));
    if (!outer)
        xdpctl::fail("cannot create an array of maps: {}", xdpctl::errno_str(errno));
    const uint32_t key = 0, value = uint32_t(inner.get());
    std::vector<double> ms;
    for (int i = 0; i < kGraceRounds; i++) {
        const auto t0 = std::chrono::steady_clock::now();
        if (bpf_map_update_elem(outer.get(), &key, &value, BPF_ANY) != 0)
            xdpctl::fail("cannot update an array of maps: {}", xdpctl::errno_str(errno));
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return median(ms);
}

}  // namespace

int main()
{
    if (geteuid() != 0) {
        std::fprintf(stderr, "xdpctl-costmodel: needs root (loads BPF programs)\n");
        return 1;
    }
    try {
        xdpctl::SkelPtr<xdpctl_bench_empty> s(xdpctl_bench_empty::open_and_load());
        if (!s)
            xdpctl::fail("cannot load xdpctl_bench_empty: {}", xdpctl::errno_str(errno));
        const auto frame = PacketBuilder().ipv4().tcp({.flags = tcp_flags::ack}).payload(10).build();
        const int empty = bpf_program__fd(s->progs.bench_xdp_pass);
        const int calls = bpf_program__fd(s->progs.bench_xdp_calls);
        // Alternated, so a change of clock or load affects both alike; medians of the rounds.
        std::vector<double> e, c;
        run_ns(empty, frame);
        for (int i = 0; i < kRounds; i++) {
            e.push_back(run_ns(empty, frame));
            c.push_back(run_ns(calls, frame));
        }
        const double empty_ns = median(e), calls_ns = median(c);
        const double call_ns = std::max(0.0, (calls_ns - empty_ns) / XDPCTL_BENCH_HELPER_CALLS);
        const std::string vuln = "/sys/devices/system/cpu/vulnerabilities/";
        nlohmann::json j = {
            {"vulnerabilities",
             {{"spec_rstack_overflow", read_line(vuln + "spec_rstack_overflow")},
              {"spectre_v2", read_line(vuln + "spectre_v2")},
              {"retbleed", read_line(vuln + "retbleed")}}},
            {"empty_xdp_ns", empty_ns},
            {"helper_calls", XDPCTL_BENCH_HELPER_CALLS},
            {"calls_xdp_ns", calls_ns},
            {"helper_call_ns", call_ns},
            // The two kinds the design is measured on (docs/benchmarks.md): a call worth
            // several ns, or about one.
            {"kind", call_ns >= 4.0 ? "calls dear" : "calls cheap"},
            {"method", "BPF_PROG_TEST_RUN, 64-byte TCP, repeat 200000, median of 7 alternated rounds"},
            {"rcu",
             {{"expedited", read_line("/sys/kernel/rcu_expedited")},
              {"normal", read_line("/sys/kernel/rcu_normal")},
              {"grace_period_ms", grace_period_ms()},
              {"method", "update of an ARRAY_OF_MAPS element (synchronize_rcu), median of 7"}}},
        };
        std::printf("%s\n", j.dump().c_str());
    } catch (const xdpctl::Error& e) {
        std::fprintf(stderr, "xdpctl-costmodel: %s\n", e.what());
        return 1;
    }
    return 0;
}
