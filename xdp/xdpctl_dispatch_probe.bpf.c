/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Whether this kernel runs what libxdp's dispatcher is made of (lib/attach/dispatcher_probe.h): an
 * XDP program calling a global function, and an freplace (BPF_PROG_TYPE_EXT) program that
 * replaces that function, as libxdp puts each of its programs into a dispatcher slot.
 * Loaded only to probe, never attached to an interface.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__noinline int probe_slot(struct xdp_md *ctx)
{
	volatile int ret = XDP_PASS; /* not a constant: the call must stay a call */

	return ctx ? ret : XDP_ABORTED;
}

SEC("xdp")
int probe_dispatcher(struct xdp_md *ctx)
{
	return probe_slot(ctx);
}

/* Its target (probe_dispatcher's probe_slot) is set at run time. */
SEC("?freplace")
int probe_replacement(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
