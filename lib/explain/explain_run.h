// `xdpctl explain`: runs a frame through the program that would see it, with
// BPF_PROG_TEST_RUN, against the live policy maps, and reads back the program's own account
// of its decision (struct xdpctl_explain). The program runs in explain mode, so no rule
// counter, rate bucket or interface counter changes.
//
// Which program: egress is TC egress; ingress is XDP where xdpctl's XDP program is attached
// to the interface, else TC ingress where xdpctl's TC programs are, else XDP (unattached:
// the ingress rules are the same). The interface is only what --iif rules see; it must exist
// (in the -n namespace) but xdpctl need not be loaded on it. Without one, the kernel's test
// run takes the namespace's loopback (ifindex 1). Without any pinned policy every packet
// passes unclassified, as it would on an interface.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "abi/xdpctl_abi.h"
#include "policy/policy_store.h"
#include "policy/rule.h"
#include "attach/skeleton.h"

struct xdpctl_xdp;
struct xdpctl_tc;

namespace xdpctl::explain {

struct ExplainOutcome {
    xdpctl_explain rec{};   // what the program wrote
    uint32_t retval = 0;    // what it returned (XDP_PASS/XDP_DROP, TCX_NEXT/TCX_DROP)
    bool policy = false;    // a policy is installed (else every packet passes unclassified)
    uint32_t frame_len = 0; // the frame's bytes; the program may see fewer (rec.len): the
                            // kernel's test run passes what does not fit a page as fragments
};

class Explainer {
public:
    // netns: -n (may be empty); ifname: may be empty. Throws a usage error for an unknown
    // interface, a runtime error when the program cannot load.
    Explainer(const std::string& netns, const std::string& ifname, policy::Direction dir);
    ~Explainer();
    Explainer(const Explainer&) = delete;
    Explainer& operator=(const Explainer&) = delete;

    // One test run. Frames shorter than an Ethernet header are refused (usage error): the
    // kernel's test run does not take them.
    ExplainOutcome run(const std::vector<uint8_t>& frame) const;

    int hook() const { return hook_; }            // XDPCTL_HOOK_*
    bool attached() const { return attached_; }   // xdpctl runs this hook on the interface
    uint32_t ifindex() const { return ifindex_; }  // 0: none given (lo)
    const std::string& ifname() const { return ifname_; }
    const std::string& netns() const { return netns_; }
    uint32_t malformed_action() const { return malformed_; }
    // The policy in force, as `rule list` shows it (empty when none is stored).
    const policy::Policy& policy() const { return policy_; }
    const policy::Rule* rule(uint32_t id) const;
    // Whether a commit came since the policy was read: the runs since may have met another
    // generation than policy() (explain takes no lock), and are to be done again.
    bool policy_changed() const;

private:
    std::string netns_, ifname_;
    uint32_t ifindex_ = 0;
    // What --iif matches (xdpctl_iface_meta.iif_key): no loaded interface's unless the
    // packet is explained on one.
    uint32_t iif_key_ = XDPCTL_IIF_KEY_NONE;
    int hook_ = XDPCTL_HOOK_XDP;
    bool attached_ = false;
    uint32_t malformed_ = XDPCTL_MALFORMED_PASS;
    static xdpctl_pol_ctl read_pol_ctl();
    std::unique_ptr<policy::PolicyStore> store_;
    policy::Policy policy_;
    xdpctl_pol_ctl ctl_{};  // installed == 0: no policy, every packet passes unclassified
    SkelPtr<xdpctl_xdp> xdp_;
    SkelPtr<xdpctl_tc> tc_;
    int prog_fd_ = -1;
    xdpctl_explain* out_ = nullptr;  // the program's .bss record
};

}  // namespace xdpctl::explain
