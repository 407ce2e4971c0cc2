/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdpctl on the XDP hook: parse, classify against the filtering policy (ingress rules),
 * count, pass or drop. Malformed frames are not classified: they get the --malformed action.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpf/parse.h"
#include "bpf/count.h"
#include "bpf/classify.h"
#include "bpf/explain.h"
#include "bpf/lb.h"

/*
 * Set by the loader (rodata). cfg_xdp_frags: loaded as a multi-buffer program
 * (BPF_F_XDP_HAS_FRAGS, for an MTU over one buffer): a frame may continue past data_end, so
 * its length for the counters is bpf_xdp_get_buff_len's. That is a helper call (a call costs
 * ~2.5 ns where the kernel does not mitigate SRSO, 7-10 ns with Safe RET): a single-buffer
 * program, which can never see frags, has neither the call nor the branch.
 * cfg_xdp_next: `load --next`: what xdpctl passes is tail-called into xdpctl_next's slot 0
 * (empty: XDP_PASS). Without --next the tail call is not in the program at all.
 */
const volatile __u32 cfg_xdp_frags = 0;
const volatile __u32 cfg_xdp_next = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} xdpctl_next SEC(".maps");

/* XDP_PASS, or the next program (load --next) on the unchanged frame. */
static __always_inline int xdpctl_pass(struct xdp_md *ctx)
{
	if (cfg_xdp_next)
		bpf_tail_call(ctx, &xdpctl_next, 0);
	return XDP_PASS;
}

/* The loader sets BPF_F_XDP_HAS_FRAGS itself when the MTU needs it: one object for both. */
SEC("xdp")
int xdpctl_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	/* headers are parsed in the first buffer; the counters take the whole frame */
	__u32 len = cfg_xdp_frags ? (__u32)bpf_xdp_get_buff_len(ctx) : (__u32)(data_end - data);
	struct pkt p = {};
	__u32 rule_id = 0;
	int bad, drop, act;

	bad = parse_packet(data, data_end, len, &p);
	if (bad)
		drop = malformed_drop(bad);
	else
		drop = classify(&p, 0, pol_iif_key(ctx->ingress_ifindex), &rule_id) == XDPCTL_ACT_DROP;
	if (cfg_explain) {  /* explain changes no counter and stops at the filter's verdict */
		explain_verdict(XDPCTL_HOOK_XDP, &p, bad, drop, rule_id, ctx->ingress_ifindex);
		return drop ? XDP_DROP : XDP_PASS;
	}
	count_packet(XDPCTL_HOOK_XDP, &p, bad, drop);
	if (drop)
		return XDP_DROP;
	/* Load balancing after the filter (lib/bpf/lb.h): counted above as passed. Only in a
	 * program loaded while a VIP exists (cfg_paths). */
	act = bad || !pol_has(XDPCTL_PATH_LB) ? XDP_PASS : lb_step(ctx, &p);
	return act == XDP_PASS ? xdpctl_pass(ctx) : act;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
