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

SEC("xdp")
int xdpctl_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct pkt p = {};
	__u32 rule_id = 0;
	int bad, drop;

	bad = parse_packet(data, data_end, (__u32)(data_end - data), &p);
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
	return bad || !pol_has(XDPCTL_PATH_LB) ? XDP_PASS : lb_step(ctx, &p);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
