/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The balancer's program's fast path (xdp/xdpctl_xdp.bpf.c, XDP_PATHS_LB): the common frame
 * (an untagged TCP/UDP IPv4 frame, no options, no fragment, well-formed: lib/bpf/fast4.h) is
 * parsed into registers, counted as parse_packet and count_packet would count it (L3 IPv4, L4 TCP/UDP, passed),
 * and goes to the flow cache with its key's words read from the frame: no packet record on
 * the stack, no parser of every case between the read and the probe. A cache hit ends
 * there. A packet the cache does not answer gets the record the parser would have made and
 * goes to the connection table's step (xdpctl_lb). Any other frame (VLAN, IPv6, options,
 * fragments, other protocols, truncated or malformed) is left untouched and uncounted to
 * the general path.
 */
#ifndef XDPCTL_BPF_LB_FAST_H
#define XDPCTL_BPF_LB_FAST_H

#include "bpf/fast4.h"
#include "bpf/lb.h"

/* A 64-bit key word whose first 32-bit word is `x` and whose second is 0: an IPv4 address
 * as the flow key holds it (abi: IPv4 in addr[0], the rest zero). */
static __always_inline __u64 lb_word_of(__u32 x)
{
	union {
		__u32 h[2];
		__u64 w;
	} u = {.h = {x, 0}};

	return u.w;
}

/* 1 when the frame is handled (counted, its XDP action in *act), 0 when it is the general
 * path's (nothing counted, nothing changed). `p`: written for xdpctl_lb only, whole. (A
 * flag, not an action or a "none" value: the verifier cannot tell that xdpctl_lb, a global
 * function, never returns the "none".) */
static __always_inline int lb_fast4(struct xdp_md *ctx, struct pkt *p, int *act)
{
	struct fast4 f;
	__u32 saddr, daddr;
	__be16 sport, dport;
	__s64 probe;

	if (!fast4_parse(ctx, &f))
		return 0;
	count_passed(XDPCTL_HOOK_XDP, XDPCTL_CNT_L3_IPV4, f.l4_cnt, f.len);

	saddr = f.iph->saddr;
	daddr = f.iph->daddr;
	sport = *(const __be16 *)f.l4;
	dport = *(const __be16 *)(f.l4 + 2);
	const __u64 a[2] = {lb_word_of(saddr), 0}, b[2] = {lb_word_of(daddr), 0};

	/* The cache first: a valid copy is a flow of a VIP (copies are made only for them, and
	 * userspace voids every copy when a VIP goes: lb_maps.cpp, conntrack_changed), so a hit
	 * needs no VIP check. Other traffic pays the probe's word read before the check. */
	probe = lb_cached_flow(ctx, a, b, lb_key_tail_of(sport, dport, f.proto, 4), lb_is_syn_of(f.proto, f.flags), f.len);
	if (probe >= 0) {
		*act = (int)probe;
		return 1;
	}
	const __u32 dst[4] = {daddr, 0, 0, 0};
	struct xdpctl_lb_ctl *c = lb_ctl_if_vip_addr(dst);

	*act = XDP_PASS;
	if (!c)
		return 1;
	*p = fast4_record(&f, saddr, daddr, sport, dport);
	*act = xdpctl_lb(ctx, p, c->n_any_port, (__u64)probe);
	return 1;
}

#endif
