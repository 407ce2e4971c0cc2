/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one-field program's fast path (xdp/xdpctl_xdp.bpf.c, XDP_PATHS_FIELD): a policy decided
 * by one address field (XDPCTL_POL_DECIDE_SRC/DST, e.g. 10,000 source /32s) on the common
 * frame (untagged TCP/UDP IPv4, no options, no fragment, well-formed: lib/bpf/fast4.h). The
 * frame is parsed into registers, the field's class read from its table, the rank of its
 * first rule from xdpctl_pdecide, that rule counted, the frame counted as count_packet counts
 * it: what classify() and pol_field_decide() do for it, with no packet record on the stack,
 * no parser of every case and no call into xdpctl_pol_decide().
 * Anything else is left untouched and uncounted to the general path, which then runs as if
 * this had not been tried: any other frame; a generation of another shape (the program holds
 * the tables' path only during a change of shape, and is then not this one); a field split
 * by sets and rule prefixes (a set alone, as `--src @blocklist`, is decided here); a table
 * freed by a commit meanwhile (the general path starts again under the new generation);
 * explain.
 */
#ifndef XDPCTL_BPF_FIELD_FAST_H
#define XDPCTL_BPF_FIELD_FAST_H

#include "bpf/classify.h"
#include "bpf/count.h"
#include "bpf/fast4.h"

/* 1 and *act (XDP_PASS or XDP_DROP) when the frame was decided and counted; 0 and nothing
 * counted otherwise. */
static __always_inline int field_fast4(struct xdp_md *ctx, int *act)
{
	__u32 zero = 0, g, shape, konst, rank1, key, drop, split, addr;
	const struct xdpctl_pol_dir_hdr *dh;
	struct xdpctl_pol_decide_line *l;
	struct xdpctl_pol_split *sp;
	struct xdpctl_rule_rec *rec;
	struct xdpctl_pol_ctl *ctl;
	struct xdpctl_pol_hdr *h;
	struct fast4 f;
	int cls, src;
	long v;

	if (cfg_explain || !fast4_parse(ctx, &f))
		return 0;
	ctl = bpf_map_lookup_elem(&xdpctl_pctl, &zero); /* inlined */
	if (!ctl || !ctl->installed)
		return 0;
	g = *(volatile __u32 *)&ctl->gen & 1;
	h = bpf_map_lookup_elem(&xdpctl_phdr, &g); /* inlined */
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
		/* A set alone (a --src @set policy): its membership gives the rank, or the class,
		 * as in pol_field_decide() */
		v = pol_tab4(&xdpctl_psl1, &xdpctl_pset, (split - 2) & (XDPCTL_POL_SET_SLOTS - 1), addr);
		if (v < 0)
			return 0;
		key = XDPCTL_POL_TAB_ADDR(g, 0, !src);
		sp = bpf_map_lookup_elem(&xdpctl_psplit, &key); /* inlined */
		if (!sp)
			return 0;
		if (dh->decide & XDPCTL_POL_DECIDE_SET_RANKS) {
			rank1 = sp->rank1[pol_member(v) & 1];
			goto decided;
		}
		cls = sp->node_class[pol_member(v) & 1];
	} else if ((konst = src ? dh->src_const : dh->dst_const)) {
		cls = (int)(konst - 1);
	} else {
		v = pol_tab4(&xdpctl_pl1, &xdpctl_ptabs, XDPCTL_POL_TAB_ADDR(g, 0, !src), addr);
		if (v < 0)
			return 0;
		cls = pol_addr_result((__u32)v);
		if (cls < 0)
			return 0;
	}
	key = XDPCTL_POL_GD(g, 0) * XDPCTL_POL_DECIDE_LINES +
	      (((__u32)cls / XDPCTL_POL_DECIDE_PER_LINE) & (XDPCTL_POL_DECIDE_LINES - 1));
	l = bpf_map_lookup_elem(&xdpctl_pdecide, &key); /* inlined */
	if (!l)
		return 0;
	rank1 = l->rank1[(__u32)cls & (XDPCTL_POL_DECIDE_PER_LINE - 1)];
decided:
	rec = pol_rank_rec(rank1, g, 0);
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

#endif
