#include "bpf_test_run.h"

#include <cerrno>
#include <type_traits>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "util/error.h"
#include "xdpctl_tc.skel.h"
#include "xdpctl_xdp.skel.h"

namespace xdpctl::test {

RunResult test_run(int prog_fd, const std::vector<uint8_t>& frame, int repeat)
{
    return prog_test_run(prog_fd, true, frame, 0, repeat);
}

uint32_t verdict_retval(int hook, Verdict v)
{
    if (hook == XDPCTL_HOOK_XDP || hook == kXdpCountProgram)
        return v == Verdict::pass ? XDP_PASS : XDP_DROP;
    return static_cast<uint32_t>(v == Verdict::pass ? TCX_NEXT : TCX_DROP);
}

namespace {
template <typename Skel>
SkelPtr<Skel> open_and_load(const char* name, uint32_t malformed_action)
{
    SkelPtr<Skel> s(Skel::open());
    if (!s)
        fail("cannot open the {} skeleton: {}", name, errno_str(errno));
    s->rodata->cfg_malformed_action = malformed_action;
    if constexpr (std::is_same_v<Skel, xdpctl_xdp>)
        bpf_program__set_autoload(s->progs.xdpctl_cnt, true);
    if (int err = Skel::load(s.get()))
        fail("cannot load {} (root? verifier log above): {}", name, errno_str(err));
    return s;
}
}  // namespace

int hook_prog_fd(const xdpctl_xdp& xdp, const xdpctl_tc& tc, int hook)
{
    switch (hook) {
    case XDPCTL_HOOK_XDP:
        return bpf_program__fd(xdp.progs.xdpctl_xdp);
    case kXdpCountProgram:
        return bpf_program__fd(xdp.progs.xdpctl_cnt);
    case XDPCTL_HOOK_TC_INGRESS:
        return bpf_program__fd(tc.progs.xdpctl_tc_in);
    case XDPCTL_HOOK_TC_EGRESS:
        return bpf_program__fd(tc.progs.xdpctl_tc_eg);
    default:
        fail("no program for hook {}", hook);
    }
}

int hook_stats_fd(const xdpctl_xdp& xdp, const xdpctl_tc& tc, int hook)
{
    return bpf_map__fd(stats_hook(hook) == XDPCTL_HOOK_XDP ? xdp.maps.xdpctl_stats : tc.maps.xdpctl_stats);
}

ParserPrograms::ParserPrograms(uint32_t malformed_action)
    : xdp_(open_and_load<xdpctl_xdp>("xdpctl_xdp", malformed_action)),
      tc_(open_and_load<xdpctl_tc>("xdpctl_tc", malformed_action))
{
}

ParserPrograms::~ParserPrograms() = default;

int ParserPrograms::prog_fd(int hook) const
{
    return hook_prog_fd(*xdp_, *tc_, hook);
}

int ParserPrograms::stats_fd(int hook) const
{
    return hook_stats_fd(*xdp_, *tc_, hook);
}

ParserPrograms::Outcome ParserPrograms::run(int hook, const std::vector<uint8_t>& frame) const
{
    const HookCounters before = read_hook_counters(stats_fd(hook), stats_hook(hook));
    Outcome o;
    o.run = test_run(prog_fd(hook), frame);
    const HookCounters after = read_hook_counters(stats_fd(hook), stats_hook(hook));
    for (size_t i = 0; i < o.delta.size(); i++) {
        o.delta[i].packets = after[i].packets - before[i].packets;
        o.delta[i].bytes = after[i].bytes - before[i].bytes;
    }
    return o;
}

}  // namespace xdpctl::test
