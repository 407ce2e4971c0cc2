#include "explain/explain_run.h"
#include "util/prog_test_run.h"

#include <net/if.h>

#include <cerrno>
#include <cstring>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>

#include "util/error.h"
#include "attach/iface_pins.h"
#include "attach/loader.h"
#include "attach/netns.h"
#include "attach/pin_layout.h"
#include "util/system_checks.h"
#include "xdpctl_tc.skel.h"
#include "xdpctl_xdp.skel.h"

namespace xdpctl::explain {

Explainer::Explainer(const std::string& netns, const std::string& ifname, policy::Direction dir)
    : netns_(netns), ifname_(ifname)
{
    require_privileges();
    require_bpffs();
    require_btf();
    if (!netns_.empty() && !netns_exists(netns_))
        fail_usage("network namespace '{}' not found (see 'ip netns list')", netns_);
    if (!ifname_.empty()) {
        NetnsScope ns(netns_);
        ifindex_ = if_nametoindex(ifname_.c_str());
        if (!ifindex_)
            fail_usage("iif '{}': no such interface{}", ifname_,
                       netns_.empty() ? " (see 'ip link')"
                                      : fmt::format(" in network namespace '{}' (see 'ip -n {} link')",
                                                    netns_, netns_));
    }

    // The program that would see the packet, and whether it is attached there.
    if (!ifname_.empty()) {
        IfacePins pins(locate_pins(IfaceRef{netns_, ifname_}, "if").dir);
        if (auto meta = pins.read_meta()) {
            malformed_ = meta->malformed;
            iif_key_ = meta->iif_key;  // 0: loaded by 0.1.0, whose programs match the ifindex
        }
        if (dir == policy::Direction::egress) {
            hook_ = XDPCTL_HOOK_TC_EGRESS;
            attached_ = path_exists(pins.link_tc_eg) || path_exists(pins.prog_tc_eg);
        } else if (path_exists(pins.link_xdp)) {
            hook_ = XDPCTL_HOOK_XDP;
            attached_ = true;
        } else if (path_exists(pins.link_tc_in) || path_exists(pins.prog_tc_in)) {
            hook_ = XDPCTL_HOOK_TC_INGRESS;
            attached_ = true;
        }
    } else if (dir == policy::Direction::egress) {
        hook_ = XDPCTL_HOOK_TC_EGRESS;
    }

    // The policy's text and whether one was ever committed, of one generation; without the
    // writer lock (explain is a reader): policy_changed() says when a commit came since. No
    // pinned policy: nothing to read, and nothing is created.
    if (path_exists(shared_maps_dir() + "/xdpctl_pctl") && path_exists(shared_maps_dir() + "/xdpctl_psrc")) {
        store_ = std::make_unique<policy::PolicyStore>(Access::read);
        policy_ = store_->read_consistent([&] {
            ctl_ = read_pol_ctl();
            return store_->current();
        });
    }

    auto malformed = static_cast<xdpctl_malformed_action>(malformed_);
    if (hook_ == XDPCTL_HOOK_XDP) {
        xdp_ = load_explain_xdp(malformed, iif_key_);
        prog_fd_ = bpf_program__fd(xdp_->progs.xdpctl_xdp);
        out_ = &xdp_->bss->xdpctl_explain_out;
    } else {
        tc_ = load_explain_tc(malformed, iif_key_);
        prog_fd_ = bpf_program__fd(hook_ == XDPCTL_HOOK_TC_INGRESS ? tc_->progs.xdpctl_tc_in
                                                                    : tc_->progs.xdpctl_tc_eg);
        out_ = &tc_->bss->xdpctl_explain_out;
    }
}

Explainer::~Explainer() = default;

xdpctl_pol_ctl Explainer::read_pol_ctl()
{
    xdpctl_pol_ctl ctl{};
    UniqueFd fd = open_pinned(shared_maps_dir() + "/xdpctl_pctl");
    __u32 zero = 0;
    if (!fd || bpf_map_lookup_elem(fd.get(), &zero, &ctl) != 0)
        fail("cannot read the pinned policy map xdpctl_pctl: {}", errno_str(errno));
    return ctl;
}

bool Explainer::policy_changed() const
{
    return store_ && store_->commits() != ctl_.commits;
}

const policy::Rule* Explainer::rule(uint32_t id) const
{
    for (const auto& r : policy_.rules)
        if (r.id == id)
            return &r;
    return nullptr;
}

ExplainOutcome Explainer::run(const std::vector<uint8_t>& frame) const
{
    if (frame.size() < ETH_HLEN)
        fail_usage("a frame of {} bytes: shorter than an Ethernet header, which the kernel's "
                   "test run needs (on the wire it counts as malformed eth_truncated)",
                   frame.size());
    std::memset(out_, 0, sizeof(*out_));
    // The interface's index means something only in its namespace: run there.
    NetnsScope ns(netns_);
    const ProgRunResult run = prog_test_run(prog_fd_, hook_ == XDPCTL_HOOK_XDP, frame, ifindex_);
    if (run.err) {
        int err = -run.err;
        // The test run copies the frame into one page, with room for the kernel's headers.
        fail("the kernel's test run refused a {}-byte frame: {}{}", frame.size(), errno_str(err),
             err == EINVAL && frame.size() > 3000
                 ? " (a frame must fit one page with the kernel's head- and tailroom, about 3.5 KiB: "
                   "a capture taken after GRO/TSO holds larger ones)"
                 : "");
    }
    ExplainOutcome o;
    o.retval = run.retval;
    std::memcpy(&o.rec, out_, sizeof(o.rec));
    if (!o.rec.done)
        fail("the program returned {} without writing its explain record", run.retval);
    o.policy = ctl_.installed != 0;
    o.frame_len = static_cast<uint32_t>(frame.size());
    return o;
}

}  // namespace xdpctl::explain
