/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Counting for every hook: one per-CPU lookup a packet, then plain adds. */
#ifndef XDPCTL_BPF_COUNT_H
#define XDPCTL_BPF_COUNT_H

#include "bpf/maps.h"
#include "bpf/packet.h"

/* Set by the loader before load (rodata): what a malformed frame gets. */
const volatile __u32 cfg_malformed_action = XDPCTL_MALFORMED_PASS;

static __always_inline void ctr_add(struct xdpctl_hook_stats *st, __u32 idx, __u32 bytes)
{
	/*
	 * The bound check is for the verifier. idx is always in range, and clang knows it
	 * and would drop the check: the empty asm hides the value from the optimiser.
	 */
	asm volatile("" : "+r"(idx));
	if (idx < XDPCTL_CNT_MAX) {
		st->ctr[idx].packets++;
		st->ctr[idx].bytes += bytes;
	}
}

/* Whether a frame the parser rejected (bad != 0) is to be dropped. */
static __always_inline int malformed_drop(int bad)
{
	return bad && cfg_malformed_action == XDPCTL_MALFORMED_DROP;
}

/* The counts of one packet in `st`: its L3, its L4 (XDPCTL_CNT_MAX: not known), the
 * malformed reason (bad, or 0), the verdict. */
static __always_inline void count_in(struct xdpctl_hook_stats *st, __u32 l3_cnt, __u32 l4_cnt, int bad,
				     int dropped, __u32 len)
{
	ctr_add(st, l3_cnt, len);
	ctr_add(st, l4_cnt, len);
	if (bad)
		ctr_add(st, bad, len);
	/* constant indices: no bound check, no index arithmetic */
	if (dropped) {
		st->ctr[XDPCTL_CNT_VERDICT_DROP].packets++;
		st->ctr[XDPCTL_CNT_VERDICT_DROP].bytes += len;
	} else {
		st->ctr[XDPCTL_CNT_VERDICT_PASS].packets++;
		st->ctr[XDPCTL_CNT_VERDICT_PASS].bytes += len;
	}
}

/* Counts one packet: its L3, its L4 (when known), the malformed reason, the verdict. */
static __always_inline void count_packet(__u32 hook, const struct pkt *p, int bad, int dropped)
{
	struct xdpctl_hook_stats *st = bpf_map_lookup_elem(&xdpctl_stats, &hook);
	/* read once: clang cannot tell the counters from *p and would reload it every add */
	__u32 len = p->len;

	if (st)
		count_in(st, p->l3_cnt, p->l4_cnt, bad, dropped, len);
}

/* What count_packet(hook, p, 0, dropped) counts, from values in registers: a well-formed
 * frame (lib/bpf/fast4.h's users, which parse without a packet record). */
static __always_inline void count_good(__u32 hook, __u32 l3_cnt, __u32 l4_cnt, int dropped, __u32 len)
{
	struct xdpctl_hook_stats *st = bpf_map_lookup_elem(&xdpctl_stats, &hook);

	if (st)
		count_in(st, l3_cnt, l4_cnt, 0, dropped, len);
}

/* The same for a frame passed. */
static __always_inline void count_passed(__u32 hook, __u32 l3_cnt, __u32 l4_cnt, __u32 len)
{
	count_good(hook, l3_cnt, l4_cnt, 0, len);
}

#endif
