// What the parser and the counters cost a packet, measured by the kernel: BPF_PROG_TEST_RUN
// runs a program `kRepeat` times on one frame and reports the mean ns per run. The empty
// XDP program is the floor (the test-run loop itself); compare the others with it.
//
// Counters: ns_per_packet (kernel-measured mean), frame_bytes. The iteration time is the
// kernel's time for kRepeat packets (manual time), so the syscall's own setup, which is
// milliseconds here, stays out of the figures.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <bpf/libbpf.h>

#include "abi/xdpctl_abi.h"
#include "bpf_test_run.h"
#include "error.h"
#include "packet_builder.h"
#include "skeleton.h"
#include "xdpctl_bench_empty.skel.h"

using namespace xdpctl::test;

namespace {

constexpr int kRepeat = 100000;

void bench_prog(benchmark::State& state, int prog_fd, const std::vector<uint8_t>& frame)
{
    double ns_sum = 0;
    for (auto _ : state) {
        const RunResult r = test_run(prog_fd, frame, kRepeat);
        if (r.err) {
            state.SkipWithError(("BPF_PROG_TEST_RUN: " + xdpctl::errno_str(r.err)).c_str());
            return;
        }
        ns_sum += r.duration_ns;
        state.SetIterationTime(double(r.duration_ns) * kRepeat * 1e-9);
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * kRepeat);
    state.counters["ns_per_packet"] = benchmark::Counter(ns_sum, benchmark::Counter::kAvgIterations);
    state.counters["frame_bytes"] = double(frame.size());
}

PacketBuilder B() { return PacketBuilder(); }

}  // namespace

int main(int argc, char** argv)
{
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    if (geteuid() != 0) {
        std::fprintf(stderr, "xdpctl-microbench: needs root (loads BPF programs); nothing run\n");
        return 0;
    }

    try {
        xdpctl::SkelPtr<xdpctl_bench_empty> empty(xdpctl_bench_empty::open_and_load());
        if (!empty)
            xdpctl::fail("cannot load xdpctl_bench_empty: {}", xdpctl::errno_str(errno));
        const ParserPrograms xdpctl_progs(XDPCTL_MALFORMED_PASS);

        // 64 bytes: the smallest Ethernet frame with its FCS, the packet-rate worst case.
        const auto tcp4 = B().ipv4().tcp({.flags = tcp_flags::ack}).payload(10).build();
        // The most work the parser does on a valid frame in common use: two tags, a chain.
        const auto qinq6 = B().qinq(100, 200)
                               .ipv6()
                               .ext(Ext::hop_by_hop)
                               .ext(Ext::dstopts)
                               .udp()
                               .payload(10)
                               .build();

        const int empty_fd = bpf_program__fd(empty->progs.bench_xdp_pass);
        const int empty_tc_fd = bpf_program__fd(empty->progs.bench_tc_pass);
        const int xdp_fd = xdpctl_progs.prog_fd(XDPCTL_HOOK_XDP);
        const int tc_fd = xdpctl_progs.prog_fd(XDPCTL_HOOK_TC_INGRESS);
        struct Case {
            const char* name;
            int fd;
            const std::vector<uint8_t>* frame;
        };
        for (const Case& c : {Case{"empty_xdp/tcp4_64", empty_fd, &tcp4},
                              Case{"xdpctl_xdp/tcp4_64", xdp_fd, &tcp4},
                              Case{"xdpctl_xdp/qinq_ipv6_2ext_udp", xdp_fd, &qinq6},
                              Case{"empty_tc/tcp4_64", empty_tc_fd, &tcp4},
                              Case{"xdpctl_tc_in/tcp4_64", tc_fd, &tcp4}}) {
            benchmark::RegisterBenchmark(c.name, bench_prog, c.fd, *c.frame)
                ->UseManualTime()
                ->Unit(benchmark::kMillisecond);
        }
        benchmark::RunSpecifiedBenchmarks();
        benchmark::Shutdown();
    } catch (const xdpctl::Error& e) {
        std::fprintf(stderr, "xdpctl-microbench: %s\n", e.what());
        return 1;
    }
    return 0;
}
