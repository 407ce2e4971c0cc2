/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* xdpctl on the XDP hook: parse, count, pass (or drop malformed frames when asked). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpf/parse.h"
#include "bpf/count.h"

SEC("xdp")
int xdpctl_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct pkt p = {};
	int bad, drop;

	bad = parse_packet(data, data_end, (__u32)(data_end - data), &p);
	drop = malformed_drop(bad);
	count_packet(XDPCTL_HOOK_XDP, &p, bad, drop);
	return drop ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
