/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The load balancer's flow cache (abi: struct xdpctl_lb_fcache_slot; design:
 * docs/load-balancing.md, "The flow cache"): an established flow's packet finds its
 * connection-table entry in a per-CPU direct-mapped slot, by two inlined array lookups and
 * five 64-bit compares, instead of a hash-table lookup (a call, jhash over the 40-byte key
 * and a compare of it). What it finds is checked against the VIP and backend exactly as a
 * connection-table hit is (lib/bpf/lb.h).
 *
 * A copy is valid while its gen equals the slot's word in xdpctl_lb_fgen, which every CPU
 * shares. The word is read BEFORE the connection table: a copy made from what the table
 * held then is valid only if nobody inserted into the table for a flow of this slot since
 * (an insert raises the word after it writes the table), so no CPU keeps a copy older than
 * the table, whichever CPU wrote the table last.
 */
#ifndef XDPCTL_BPF_LB_CACHE_H
#define XDPCTL_BPF_LB_CACHE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi/xdpctl_abi.h"
#include "bpf/lb_maps.h"

/* A flow's slot and the generation word as it was before the connection table was read. */
struct lb_fc {
	struct xdpctl_lb_fcache_slot *slot;
	__u32 *gen;
	__u32 seen;
};

static __always_inline void lb_fcache_at(struct lb_fc *fc, const struct xdpctl_lb_flow_key *fk)
{
	__u32 idx = xdpctl_lb_fcache_slot_of((const __u64 *)fk);

	fc->slot = bpf_map_lookup_elem(&xdpctl_lb_fcache, &idx);
	fc->gen = bpf_map_lookup_elem(&xdpctl_lb_fgen, &idx);
	fc->seen = fc->gen ? *(volatile __u32 *)fc->gen : 0;
}

/* The slot holding a valid copy of the flow whose key is `w`, or NULL; NULL also on every
 * XDPCTL_LB_FCACHE_REFRESH-th hit, which goes to the connection table (refreshing the LRU's
 * view of the flow) and copies what it finds again. */
static __always_inline struct xdpctl_lb_fcache_slot *lb_fcache_find(const __u64 *w)
{
	__u32 idx = xdpctl_lb_fcache_slot_of(w);
	struct xdpctl_lb_fcache_slot *s = bpf_map_lookup_elem(&xdpctl_lb_fcache, &idx);
	__u32 *gen = bpf_map_lookup_elem(&xdpctl_lb_fgen, &idx);

	if (!s || !gen || s->gen != *gen)
		return NULL;
	if ((s->key[0] ^ w[0]) | (s->key[1] ^ w[1]) | (s->key[2] ^ w[2]) | (s->key[3] ^ w[3]) |
	    (s->key[4] ^ w[4]))
		return NULL;
	if (!(++s->hits & (XDPCTL_LB_FCACHE_REFRESH - 1)))
		return NULL;
	return s;
}

/* Copies what the connection table holds for the flow (read after the slot's word) into
 * its slot, unless the slot holds a valid copy of another flow: that one keeps it, so two
 * flows of one slot do not rewrite it in turn on every packet (the second is served by the
 * table). A copy no longer valid is replaced: an insert into the table for any flow of the
 * slot voids it, so a flow that ended leaves its slot to the next. */
static __always_inline void lb_fcache_put(const struct lb_fc *fc, const struct xdpctl_lb_flow_key *fk,
					  const struct xdpctl_lb_flow *fl)
{
	struct xdpctl_lb_fcache_slot *s = fc->slot;
	const __u64 *w = (const __u64 *)fk;

	if (!s || !fc->gen)
		return;
	if (s->gen == fc->seen && ((s->key[0] ^ w[0]) | (s->key[1] ^ w[1]) | (s->key[2] ^ w[2]) |
				   (s->key[3] ^ w[3]) | (s->key[4] ^ w[4])))
		return;
	s->key[0] = w[0];
	s->key[1] = w[1];
	s->key[2] = w[2];
	s->key[3] = w[3];
	s->key[4] = w[4];
	s->flow.backend = fl->backend;
	s->flow.vip_id = fl->vip_id;
	s->flow.flags = fl->flags;
	s->flow.be_gen = fl->be_gen;
	s->gen = fc->seen;
	s->hits = 0;
}

/* After an insert into the connection table: every CPU's copies in the flow's slot are
 * void. The flow's next packet reads the table and makes the copy: a new flow writes no
 * cache line besides the word (a flow of one packet never needs one). */
static __always_inline void lb_fcache_inserted(const struct lb_fc *fc)
{
	if (fc->gen)
		__sync_fetch_and_add(fc->gen, 1);
}

#endif
