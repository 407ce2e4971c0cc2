/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Reference points for benchmarks: the cheapest programs the hook can run. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

#include "xdpctl_bench_cost.h"

/* The floor: what BPF_PROG_TEST_RUN costs with no work in the program. */
SEC("xdp")
int bench_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* The ceiling of a drop benchmark: drop everything, look at nothing. */
SEC("xdp")
int bench_xdp_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

/*
 * The ceiling of a forwarding benchmark (scripts/bench.sh's bare_fwd row): what xdpctl's
 * load balancer does to a frame in dsr mode and nothing else. Destination MAC := a
 * backend's, 02:00:00:00:b1:01 (fixed: bench.sh gives its first backend this MAC), source
 * MAC := the one the frame was sent to (this interface's); XDP_TX out of the interface it
 * came in on. Bytes written as immediates: no .rodata for `ip link` to load.
 */
SEC("xdp")
int bench_xdp_fwd(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	eth->h_dest[0] = 0x02;
	eth->h_dest[1] = 0x00;
	eth->h_dest[2] = 0x00;
	eth->h_dest[3] = 0x00;
	eth->h_dest[4] = 0xb1;
	eth->h_dest[5] = 0x01;
	return XDP_TX;
}

/*
 * The price of one helper call on this CPU (bench/cost_model.cpp): XDPCTL_BENCH_HELPER_CALLS
 * calls of bpf_get_numa_node_id, a helper whose body is one per-CPU read and which the
 * verifier does not inline, against bench_xdp_pass. Where the kernel mitigates SRSO with
 * Safe RET every call and return pays for it (7-10 ns); elsewhere a call costs ~1 ns.
 */
SEC("xdp")
int bench_xdp_calls(struct xdp_md *ctx)
{
	__u32 acc = 0;

#pragma unroll
	for (int i = 0; i < XDPCTL_BENCH_HELPER_CALLS; i++)
		acc += bpf_get_numa_node_id();
	/* the sum is used, so no call can be dropped; XDP_PASS whatever it is */
	return acc == 0xffffffffu ? XDP_DROP : XDP_PASS;
}

/* The floor of the TC hook: what a tcx test run costs with no work in the program. */
SEC("tcx/ingress")
int bench_tc_pass(struct __sk_buff *skb)
{
	return -1; /* TCX_NEXT */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
