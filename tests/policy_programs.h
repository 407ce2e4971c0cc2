// xdpctl_xdp and xdpctl_tc loaded with ONE set of policy maps (the TC object reuses the XDP
// object's), as the loader's pins make it on a real system, plus a PolicyMaps writer over
// them and test runs that say which interface a packet came in on. For the classifier tests.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "bpf_test_run.h"
#include "policy/compiled_policy.h"
#include "policy/policy_maps.h"
#include "attach/skeleton.h"

struct xdpctl_xdp;
struct xdpctl_tc;

namespace xdpctl::test {

class PolicyPrograms {
public:
    // `xdp_paths`, `tc_paths`: the objects' cfg_paths (abi: enum xdpctl_path; the default,
    // every path, as a program loaded without knowing the policy).
    explicit PolicyPrograms(uint32_t xdp_paths = XDPCTL_PATHS_ALL, uint32_t tc_paths = XDPCTL_PATHS_ALL);
    ~PolicyPrograms();
    PolicyPrograms(const PolicyPrograms&) = delete;
    PolicyPrograms& operator=(const PolicyPrograms&) = delete;

    int prog_fd(int hook) const;
    int stats_fd(int hook) const;
    int rule_counters_fd() const;
    int map_fd(const char* name) const;  // any map of the XDP object, by name
    policy::PolicyMaps& maps() { return *maps_; }

    // One BPF_PROG_TEST_RUN: XDP with the frame arriving on `ifindex` (xdp_md.ingress_ifindex),
    // TC with skb->ifindex = `ifindex`. The interface must exist in the calling thread's
    // network namespace (1, lo, always does).
    RunResult run(int hook, const std::vector<uint8_t>& frame, uint32_t ifindex = 1, int repeat = 1) const;

private:
    SkelPtr<xdpctl_xdp> xdp_;
    struct bpf_program* xdp_prog_ = nullptr;  // the one loaded: xdp_program_for_paths()
    SkelPtr<xdpctl_tc> tc_;
    std::unique_ptr<policy::PolicyMaps> maps_;
};

// Rule counters of slots [0, n), summed over CPUs, in one batch read.
std::vector<xdpctl_rule_ctr> read_rule_counters(int counters_fd, uint32_t n);

// Rule id -> counter slot: ids in order, from `first_slot`.
policy::SlotOf slots_by_id(const policy::Policy& p, uint32_t first_slot = 0);

}  // namespace xdpctl::test
