// One BPF_PROG_TEST_RUN of a frame through an XDP or TC program, as if it came in on an
// interface: explain, the tests and the benchmarks all run programs this way.
#pragma once

#include <cstdint>
#include <vector>

namespace xdpctl {

struct ProgRunResult {
    int err = 0;               // 0, or the negative errno with which the kernel refused the run
    uint32_t retval = 0;       // the program's return value (TCX_NEXT reads as 0xffffffff)
    uint32_t duration_ns = 0;  // kernel-measured mean per repetition
};

// `xdp`: the program is an XDP program (the frame arrives in an xdp_md), else a TC one (an
// skb). `ifindex` > 1: the interface the packet comes in on (XDP) or the skb's device (TC),
// which must exist in the calling thread's network namespace; 0: none (the kernel uses lo).
// repeat > 1 only for benchmarks: every call with repeat > 1 costs milliseconds of setup.
ProgRunResult prog_test_run(int prog_fd, bool xdp, const std::vector<uint8_t>& frame, uint32_t ifindex = 0,
                            int repeat = 1);

}  // namespace xdpctl
