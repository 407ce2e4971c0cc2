/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * `xdpctl explain`: the same program, loaded a second time, unattached, with cfg_explain = 1,
 * and run once on a frame with BPF_PROG_TEST_RUN over the live policy maps. In that mode it
 * must change nothing a real packet would: no rule counter, no rate bucket, no stats. It
 * writes what it decided, and why, into xdpctl_explain_out (.bss), which the caller reads.
 *
 * Normal loads keep cfg_explain = 0: the verifier sees a constant and drops every explain
 * branch, so the attached programs run the code they ran before.
 */
#ifndef XDPCTL_BPF_EXPLAIN_H
#define XDPCTL_BPF_EXPLAIN_H

#include <bpf/bpf_helpers.h>

#include "abi/xdpctl_abi.h"
#include "bpf/packet.h"

const volatile __u32 cfg_explain = 0;

/* Zeroed by userspace before each run. */
struct xdpctl_explain xdpctl_explain_out;

/* A count or conforming rate-limit rule the walk went past. */
static __always_inline void explain_counted(__u32 rule_id)
{
	__u32 n = xdpctl_explain_out.n_counted;

	if (n < XDPCTL_EXPLAIN_MAX_COUNTED)
		xdpctl_explain_out.counted[n] = rule_id;
	xdpctl_explain_out.n_counted = n + 1;
}

/* The verdict and the parsed headers, last thing before the program returns. */
static __always_inline void explain_verdict(__u32 hook, const struct pkt *p, int bad, int drop,
					    __u32 rule_id, __u32 ifindex)
{
	struct xdpctl_explain *e = &xdpctl_explain_out;

	e->hook = hook;
	e->malformed = bad;
	e->verdict = drop ? XDPCTL_ACT_DROP : XDPCTL_ACT_PASS;
	e->rule_id = rule_id;
	e->ifindex = ifindex;
	e->len = p->len;
	__builtin_memcpy(e->saddr, p->saddr, sizeof(e->saddr));
	__builtin_memcpy(e->daddr, p->daddr, sizeof(e->daddr));
	e->l3_proto = p->l3_proto;
	e->vlan_id[0] = p->vlan_id[0];
	e->vlan_id[1] = p->vlan_id[1];
	e->sport = p->sport;
	e->dport = p->dport;
	e->n_vlans = p->n_vlans;
	e->l4_proto = p->l4_proto;
	e->l3_cnt = p->l3_cnt;
	e->l4_cnt = p->l4_cnt;
	e->frag = p->frag;
	e->tcp_flags = p->tcp_flags;
	e->done = 1;
}

#endif
