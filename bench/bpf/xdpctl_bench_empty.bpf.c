/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Reference points for benchmarks: the cheapest programs the hook can run. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

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

/* The floor of the TC hook: what a tcx test run costs with no work in the program. */
SEC("tcx/ingress")
int bench_tc_pass(struct __sk_buff *skb)
{
	return -1; /* TCX_NEXT */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
