/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The fast paths of the programs for one shape of policy alone (xdp/xdpctl_xdp.bpf.c:
 * XDP_PATHS_FIELD, XDP_PATHS_SMALL): the common frame (untagged TCP/UDP IPv4, no options, no
 * fragment, well-formed: lib/bpf/fast4.h) is parsed into registers, decided by the
 * generation's shape as classify() decides it, and counted as count_packet counts it: no
 * parser of every case, no flow-cache checks, no call into xdpctl_pol_decide().
 * Anything else is left untouched and uncounted to the general path, which then runs as if
 * this had not been tried: any other frame; a generation of another shape (the program holds
 * other paths only during a change of shape, and is then not this one); no policy; explain.
 *
 * field_fast4: a policy decided by one address field (XDPCTL_POL_DECIDE_SRC/DST, e.g. 10,000
 * source /32s): the field's class read from its table, the rank of its first rule from
 * xdpctl_pdecide, that rule counted; a set alone in a table of its own (`--src @blocklist`)
 * by its membership. A field split by sets and rule prefixes, and a table freed by a commit
 * meanwhile (the general path starts again under the new generation), take the general path.
 *
 * small_fast4: a small policy (XDPCTL_POL_DECIDE_SMALL): the packet record the parser would
 * have made (fast4_record), and pol_small_decide() on it.
 */
#ifndef XDPCTL_BPF_POLICY_FAST_H
#define XDPCTL_BPF_POLICY_FAST_H

#include "bpf/classify.h"
#include "bpf/count.h"
#include "bpf/fast4.h"

/* The generation in force's header for a fast path, and its gen in *g: NULL (the general
 * path, then) with no policy installed. */
static __always_inline struct xdpctl_pol_hdr *policy_fast_hdr(__u32 *g)
{
	__u32 zero = 0;
	struct xdpctl_pol_ctl *ctl = bpf_map_lookup_elem(&xdpctl_pctl, &zero); /* inlined */

	if (!ctl || !ctl->installed)
		return NULL;
	*g = *(volatile __u32 *)&ctl->gen & 1;
	return bpf_map_lookup_elem(&xdpctl_phdr, g); /* inlined */
}

/* 1 and *act (XDP_PASS or XDP_DROP) when the frame was decided and counted; 0 and nothing
 * counted otherwise. The lookups are pol_field_decide()'s for an IPv4 address. */
static __always_inline int field_fast4(struct xdp_md *ctx, int *act)
{
	const struct xdpctl_pol_dir_hdr *dh;
	__u32 g, shape, konst, drop, split, addr;
	struct xdpctl_rule_rec *rec;
	struct xdpctl_pol_hdr *h;
	struct fast4 f;
	long rank1, v;
	int src;

	if (cfg_explain || !fast4_parse(ctx, &f))
		return 0;
	h = policy_fast_hdr(&g);
	if (!h)
		return 0;
	dh = &h->dir[0]; /* XDP applies the ingress rules */
	shape = dh->decide & XDPCTL_POL_DECIDE_SHAPE_MASK;
	if (!dh->n_rules || (shape != XDPCTL_POL_DECIDE_SRC && shape != XDPCTL_POL_DECIDE_DST))
		return 0;
	src = shape == XDPCTL_POL_DECIDE_SRC;
	split = pol_split_arg(dh, !src);
	addr = bpf_ntohl(src ? f.iph->saddr : f.iph->daddr);
	if (split == 1)
		return 0;
	if (split) {
		rank1 = pol_set_alone_rank1(g, 0, dh, src, split, addr);
	} else if ((konst = src ? dh->src_const : dh->dst_const)) {
		rank1 = pol_decide_rank1(g, 0, (int)(konst - 1));
	} else {
		v = pol_tab4(&xdpctl_pl1, &xdpctl_ptabs, XDPCTL_POL_TAB_ADDR(g, 0, !src), addr, 1);
		rank1 = v < 0 || pol_addr_result((__u32)v) < 0 ? XDPCTL_POL_FIELD_MISSING
							       : pol_decide_rank1(g, 0, pol_addr_result((__u32)v));
	}
	if (rank1 < 0)
		return 0; /* a table or a record missing: the general path */
	rec = pol_rank_rec((__u32)rank1, g, 0);
	if (rec) {
		pol_count(&rec->ctr_slot, f.len);
		drop = rec->action != XDPCTL_ACT_PASS;
	} else {
		drop = h->default_action == XDPCTL_ACT_DROP;
	}
	count_good(XDPCTL_HOOK_XDP, XDPCTL_CNT_L3_IPV4, f.l4_cnt, drop, f.len);
	*act = drop ? XDP_DROP : XDP_PASS;
	return 1;
}

/* The same for a small policy. */
static __always_inline int small_fast4(struct xdp_md *ctx, int *act)
{
	struct xdpctl_pol_hdr *h;
	struct fast4 f;
	struct pkt p;
	__u32 g, def, drop;
	long r;

	if (cfg_explain || !fast4_parse(ctx, &f))
		return 0;
	h = policy_fast_hdr(&g);
	if (!h || !h->dir[0].n_rules || h->dir[0].decide != XDPCTL_POL_DECIDE_SMALL)
		return 0;
	def = h->default_action == XDPCTL_ACT_DROP ? XDPCTL_ACT_DROP : XDPCTL_ACT_PASS;
	/* the record parse_packet would have made, for pol_small_match() */
	p = fast4_record(&f, f.iph->saddr, f.iph->daddr, *(const __be16 *)f.l4, *(const __be16 *)(f.l4 + 2));
	r = pol_small_decide(&p, XDPCTL_POL_GD(g, 0), def);
	drop = (r & 0xff) == XDPCTL_ACT_DROP;
	count_good(XDPCTL_HOOK_XDP, XDPCTL_CNT_L3_IPV4, f.l4_cnt, drop, f.len);
	*act = drop ? XDP_DROP : XDP_PASS;
	return 1;
}

#endif
