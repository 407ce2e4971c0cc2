/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The load balancer's flow cache (abi: struct xdpctl_lb_fcache_slot; design:
 * docs/load-balancing.md, "The flow cache"): an established flow's packet finds its
 * connection-table entry in a per-CPU direct-mapped slot, by two inlined array lookups and
 * five 64-bit compares, instead of a hash-table lookup (a call, jhash over the 40-byte key
 * and a compare of it). What it finds is checked against the backend's incarnation as a
 * connection-table hit is (lib/bpf/lb.h, lb_backend_of_flow; only dsr flows are copied).
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

/*
 * The held bit. A slot's word is odd while some CPU may hold a valid copy in the slot: a copy
 * is made only under an odd word (the first copy makes it odd, by a compare-and-swap from the
 * even word read before the table), and an insert into the table leaves it even. So a flow no
 * CPU holds a copy for (a new flow, whose slot saw an insert since its last copy) is told by
 * the word alone: its probe reads no slot, a cold line of the 512 KiB per-CPU array.
 * Every change of a word raises it (inserts, the compare-and-swap, userspace), so a word
 * never takes a value again and a copy never comes back to life.
 */

/* What the cache's probe (xdpctl_lb_cached) hands the connection table's step (xdpctl_lb)
 * when the cache does not answer, in the one 64-bit value it returns (a struct on the
 * caller's stack would not fit: the program's nested calls are near the verifier's 512
 * bytes): negative, and with LB_PROBE_WORD the flow's slot (bits 32..) and the slot's word
 * as it read it, before the table (bits 0-31). */
#define LB_PROBE_MISS (1ULL << 63)
#define LB_PROBE_WORD (1ULL << 62)

static __always_inline __s64 lb_probe_missed(__u32 idx, __u32 seen)
{
	return (__s64)(LB_PROBE_MISS | LB_PROBE_WORD | (__u64)idx << 32 | seen);
}

/* A flow's slot (its index: the slot itself is looked up only to make a copy) and the
 * generation word as it was before the connection table was read. */
struct lb_fc {
	__u32 idx;
	__u32 seen;
	__u32 *gen;
};

/* The slot of flow key `fk` and its word; the word as the probe read it if it did, else read
 * now. The slot is not looked up here: a new flow never copies, and the per-CPU array's
 * lookup reads its pointer to the CPU's element, a cold line for a slot not seen lately
 * (lb_single_run/new_flow paid it). */
static __always_inline void lb_fcache_at(struct lb_fc *fc, const struct xdpctl_lb_flow_key *fk, __u64 probe)
{
	fc->idx = probe & LB_PROBE_WORD ? (__u32)(probe >> 32) & (XDPCTL_LB_FCACHE_SLOTS - 1)
					: xdpctl_lb_fcache_slot_of((const __u64 *)fk);
	fc->gen = bpf_map_lookup_elem(&xdpctl_lb_fgen, &fc->idx);
	if (probe & LB_PROBE_WORD)
		fc->seen = (__u32)probe;
	else
		fc->seen = fc->gen ? *(volatile __u32 *)fc->gen : 0;
}

/* `n` packets of `bytes` forwarded (one, or a copy's pending hits), counted in slot `idx` of
 * the per-CPU counter array `map` (xdpctl_lb_vctr, xdpctl_lb_bctr). */
static __always_inline void lb_ctr_add(void *map, __u32 idx, __u32 n, __u32 bytes, __u32 new_flow)
{
	struct xdpctl_lb_ctr *c = bpf_map_lookup_elem(map, &idx);

	if (!c)
		return;
	c->packets += n;
	c->bytes += bytes;
	if (new_flow)  /* a hit writes no third counter */
		c->new_flows++;
}

/* Whether slot `s` holds the key whose words are the source address `a`, the destination
 * `b` (two words each) and `tail` (abi: struct xdpctl_lb_flow_key): the probe reads the
 * addresses where the packet's record holds them, not from a copy of the key (which clang
 * keeps on the stack beside the record). */
static __always_inline int lb_fcache_other_key(const struct xdpctl_lb_fcache_slot *s, const __u64 *a,
					       const __u64 *b, __u64 tail)
{
	return ((s->key[0] ^ a[0]) | (s->key[1] ^ a[1]) | (s->key[2] ^ b[0]) | (s->key[3] ^ b[1]) |
		(s->key[4] ^ tail)) != 0;
}

/* The slot holding a valid copy of the flow whose key is `a`, `b`, `tail` (slot `idx`,
 * word `seen`), or NULL; NULL also on every XDPCTL_LB_FCACHE_REFRESH-th hit, which goes to
 * the connection table (refreshing the LRU's view of the flow) and copies what it finds
 * again (adding the copy's pending counts to the counters). An even word: no CPU holds a
 * copy, the slot is not read. Only this build's copies (marked key and flags). The caller
 * adds the hit to the slot's pending counts. */
static __always_inline struct xdpctl_lb_fcache_slot *lb_fcache_find(const __u64 *a, const __u64 *b, __u64 tail,
								    __u32 idx, __u32 seen)
{
	struct xdpctl_lb_fcache_slot *s;

	if (!(seen & 1))
		return NULL;
	s = bpf_map_lookup_elem(&xdpctl_lb_fcache, &idx);
	if (!s || s->gen != seen || lb_fcache_other_key(s, a, b, tail | XDPCTL_LB_FCACHE_KEY_MARK) ||
	    !(s->copy.flags & XDPCTL_LB_FLOW_F_PEND_COPY))
		return NULL;
	if ((s->hits & (XDPCTL_LB_FCACHE_REFRESH - 1)) == XDPCTL_LB_FCACHE_REFRESH - 1)
		return NULL;
	return s;
}

/* The counts pending in slot `s` (abi: XDPCTL_LB_FCACHE_PEND_SHIFT), added to the counters
 * they belong to before the slot takes another copy: on this CPU, whose hits alone write
 * them. A dead copy's count too (its backend's slot and its VIP's id are not given to
 * another while it is pending: userspace reads them). */
static __always_inline void lb_fcache_flush(const struct xdpctl_lb_fcache_slot *s, struct xdpctl_lb_stats *st)
{
	__u32 pend = s->hits, n = pend & ((1u << XDPCTL_LB_FCACHE_PEND_SHIFT) - 1);
	__u32 bytes = pend >> XDPCTL_LB_FCACHE_PEND_SHIFT;

	if (!n || !(s->copy.flags & XDPCTL_LB_FLOW_F_PEND_COPY))
		return;
	if (st) {
		st->cnt[XDPCTL_LB_CNT_CT_HIT] += n;
		st->cnt[XDPCTL_LB_CNT_TX] += n;
	}
	lb_ctr_add(&xdpctl_lb_vctr, s->copy.vip_id, n, bytes, 0);
	lb_ctr_add(&xdpctl_lb_bctr, s->copy.backend, n, bytes, 0);
}

/* Copies what a hit of the connection table found for the flow of a dsr VIP (read after the
 * slot's word): its VIP's id, and backend `be` (slot `be_id`, whose incarnation the entry
 * names: checked), whose MAC the cache's hits send to. Into the flow's slot, unless the slot
 * holds a valid copy of another flow: that one keeps it, so two
 * flows of one slot do not rewrite it in turn on every packet (the second is served by the
 * table). A copy no longer valid is replaced: an insert into the table for any flow of the
 * slot voids it, so a flow that ended leaves its slot to the next. Under an even word (no
 * copy anywhere) the copy is made only if the word is still the one read before the table,
 * made odd in the same atomic step: an insert since (its add comes after its table write)
 * fails the swap, one after it raises the odd word. */
static __always_inline void lb_fcache_put(const struct lb_fc *fc, const struct xdpctl_lb_flow_key *fk,
					  const struct xdpctl_lb_flow *fl, const struct xdpctl_lb_backend *be,
					  __u32 be_id, struct xdpctl_lb_stats *st)
{
	struct xdpctl_lb_fcache_slot *s = bpf_map_lookup_elem(&xdpctl_lb_fcache, &fc->idx);
	const __u64 *w = (const __u64 *)fk;
	const __u16 *mac = (const __u16 *)be->mac;
	__u16 *to;
	__u32 gen = fc->seen;

	if (!s || !fc->gen)
		return;
	if (gen & 1) {
		if (s->gen == gen && lb_fcache_other_key(s, w, w + 2, w[4] | XDPCTL_LB_FCACHE_KEY_MARK))
			return;
	} else {
		if (__sync_val_compare_and_swap(fc->gen, gen, gen + 1) != gen)
			return;
		gen++;
	}
	lb_fcache_flush(s, st);
	s->key[0] = w[0];
	s->key[1] = w[1];
	s->key[2] = w[2];
	s->key[3] = w[3];
	s->key[4] = w[4] | XDPCTL_LB_FCACHE_KEY_MARK;
	to = (__u16 *)s->copy.mac;  /* both 2-byte aligned (lb_set_macs) */
	to[0] = mac[0];
	to[1] = mac[1];
	to[2] = mac[2];
	s->copy.vip_id = (__u16)fl->vip_id;
	s->copy.flags = XDPCTL_LB_FLOW_F_VALID | XDPCTL_LB_FLOW_F_MAC_COPY | XDPCTL_LB_FLOW_F_PEND_COPY;
	s->copy.backend = be_id;
	s->gen = gen;
	s->hits = 0;
}

/*
 * After an insert into the connection table: every CPU's copies in the flow's slot die, and
 * the word is left even (odd + 1, even + 2; a word that changed since it was read only makes
 * the held bit wrong the safe way, set with no copy). The flow's next packet reads the table
 * and makes the copy: a new flow writes no cache line besides the word (a flow of one packet
 * never needs one).
 * `replaced`: a SYN's insert, which replaces whatever the table held for the 5-tuple without
 * looking. Its add is unconditional and atomic: it orders the table's write before any CPU's
 * next read of the word, and fails the compare-and-swap of a copy made from the entry it
 * replaced.
 * Any other insert follows a lookup that found no valid entry for the flow. Then a copy of
 * the flow that could still answer is one made from an older entry (one the LRU evicted since),
 * made under an odd word read before that lookup, and the word read after the lookup is still
 * odd unless a raise killed the copy since. An even word: no copy of the flow anywhere, and
 * none to come but of an entry inserted after the lookup (this one, or another CPU's insert
 * of the same new flow at the same instant, scheduled by the same table): no raise, no atomic
 * add (what makes a never-seen flow cost what it did before the cache).
 */
static __always_inline void lb_fcache_inserted(const struct lb_fc *fc, int replaced)
{
	__u32 now;

	if (!fc->gen)
		return;
	now = *(volatile __u32 *)fc->gen;
	if (replaced || (now & 1))
		__sync_fetch_and_add(fc->gen, 2 - (now & 1));
}

#endif
