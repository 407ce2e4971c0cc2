// Runs xdpctl's programs on frames through BPF_PROG_TEST_RUN, without an interface: the
// kernel builds an xdp_buff (XDP) or an skb (TC) from the bytes and calls the program once.
#pragma once

#include <cstdint>
#include <vector>

#include "stats/counters.h"
#include "util/prog_test_run.h"
#include "attach/skeleton.h"

struct xdpctl_xdp;
struct xdpctl_tc;

namespace xdpctl::test {

using RunResult = ProgRunResult;

// repeat > 1 only for benchmarks: every call with repeat > 1 costs milliseconds of setup.
RunResult test_run(int prog_fd, const std::vector<uint8_t>& frame, int repeat = 1);

enum class Verdict { pass, drop };

// Not a hook of the ABI: the XDP hook's parse-and-count program (xdpctl_cnt, the one `load`
// picks with no policy and no VIP), which counts the common frame on a path of its own
// (lib/bpf/fast4.h). Where a test takes a hook, this one runs that program and reads the XDP
// hook's counters: its counts must be the parser's on every frame.
inline constexpr int kXdpCountProgram = 0x100;

// The counters' hook of a test's hook (XDPCTL_HOOK_XDP for kXdpCountProgram).
inline int stats_hook(int hook) { return hook == kXdpCountProgram ? int(XDPCTL_HOOK_XDP) : hook; }

// What the program at `hook` returns for a verdict: XDP_PASS/XDP_DROP, TCX_NEXT/TCX_DROP.
uint32_t verdict_retval(int hook, Verdict v);

// The program and the stats map of a hook (XDPCTL_HOOK_*) in a pair of loaded objects.
int hook_prog_fd(const xdpctl_xdp& xdp, const xdpctl_tc& tc, int hook);
int hook_stats_fd(const xdpctl_xdp& xdp, const xdpctl_tc& tc, int hook);

// xdpctl_xdp (with xdpctl_cnt) and xdpctl_tc loaded with one malformed-frame action. The two objects have
// separate stats maps (nothing pins them together here), so each hook reads its own.
class ParserPrograms {
public:
    explicit ParserPrograms(uint32_t malformed_action);
    ~ParserPrograms();
    ParserPrograms(const ParserPrograms&) = delete;
    ParserPrograms& operator=(const ParserPrograms&) = delete;

    int prog_fd(int hook) const;
    int stats_fd(int hook) const;

    struct Outcome {
        RunResult run;
        HookCounters delta;  // what the run added to the hook's counters
    };
    Outcome run(int hook, const std::vector<uint8_t>& frame) const;

private:
    SkelPtr<xdpctl_xdp> xdp_;
    SkelPtr<xdpctl_tc> tc_;
};

}  // namespace xdpctl::test
