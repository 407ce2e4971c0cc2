// xdpctl-pktgen's engine: one thread per CPU, each calling BPF_PROG_TEST_RUN in live-frames
// mode with the frame writer (bench/bpf/xdpctl_pktgen.bpf.c), so the frames leave through the
// interface's XDP transmit path, at the target rate or as fast as the CPU goes.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "flow_range.h"
#include "netdev.h"

namespace xdpctl::pktgen {

using Mac = std::array<uint8_t, 6>;

enum class FlowOrder { sequential, random };

struct GenConfig {
    std::string iface;
    unsigned threads = 1;
    std::vector<unsigned> cpus;  // one per thread; empty: the first CPUs this process may use
    unsigned frame_size = 64;    // on the wire, with the 4-byte FCS (RFC 2544 sizes)
    bool tcp = false;            // else UDP
    std::optional<uint16_t> vlan;
    AddrRange src, dst;
    PortRange sport, dport;
    FlowOrder order = FlowOrder::sequential;
    uint64_t count = 0;     // frames in all; 0: no limit
    double duration = 0;    // seconds; 0: no limit
    uint64_t rate = 0;      // frames per second in all; 0: as fast as possible
    uint32_t batch = 64;    // frames per test-run batch (the kernel's limit is 256)
    std::optional<Mac> dst_mac;  // default: broadcast
    std::optional<Mac> src_mac;  // default: the interface's
};

struct ThreadResult {
    unsigned cpu = 0;
    uint64_t packets = 0;
    double seconds = 0;
};

struct GenResult {
    NetdevInfo dev;
    size_t frame_bytes = 0;  // what the test run is given: frame size without the FCS
    uint64_t flows = 1;      // distinct address/port combinations
    uint64_t packets = 0;
    double seconds = 0;
    std::vector<ThreadResult> threads;
    XmitCounters xmit;  // delta over the run (veth: what the peer took and refused)
    bool interrupted = false;
};

// Checks the configuration against itself (sizes, families, ranges): usage errors.
void validate(const GenConfig& c);

// Called about once a second from the calling thread while the generator runs.
using Progress = std::function<void(double elapsed_s, uint64_t packets, double pps)>;

// Runs in the current network namespace until the count or duration is reached, or a SIGINT
// or SIGTERM arrives (those are blocked in the generator's threads and taken here).
GenResult run(const GenConfig& c, const Progress& progress);

}  // namespace xdpctl::pktgen
