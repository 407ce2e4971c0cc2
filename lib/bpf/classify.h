/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The filtering classifier: the compiled policy (lib/policy/compiled_policy.h) walked the way
 * classify_compiled() walks it in C++, over the maps of bpf/policy_maps.h.
 *
 * Per packet: one lookup per field gives a class (the addresses through prefix tables, the
 * rest through direct-indexed arrays of 64-byte lines); each class has a bitmap row over the
 * rules in evaluation order, led by aggregate words (bit w set: word w of the row is not
 * zero). The AND of the seven rows' aggregates names the candidate words; the AND of a
 * candidate word names the rules that match; the first that is not count/rate-limit decides.
 *
 * Calls are avoided first: a call and its return cost 7-10 ns where the kernel mitigates SRSO
 * with Safe RET (~1-2.5 ns where it does not), an inlined array lookup ~1 ns on both. The rows sit in 4 MiB
 * elements, so the seven rows usually take one or two lookups and every word after that is
 * a plain load; the walk runs in bpf_loop (one call a step), and a step scans up to four
 * candidate words.
 */
#ifndef XDPCTL_BPF_CLASSIFY_H
#define XDPCTL_BPF_CLASSIFY_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi/xdpctl_abi.h"
#include "bpf/explain.h"
#include "bpf/packet.h"
#include "bpf/policy_maps.h"
#include "bpf/prefix_table.h"
#include "bpf/trace.h"

#define XDPCTL_NSEC_PER_SEC 1000000000ULL
/*
 * A rate bucket is refilled at most once per this many ns: every refill is a compare-and-swap
 * on a cache line all CPUs share, and at 10x the rate the packets themselves would otherwise
 * refill it. Time is not lost: the next refill adds everything since the last one.
 */
#define XDPCTL_RATE_REFILL_NS 1000
/*
 * Candidate words a walk step scans before it returns to bpf_loop (each step is a call,
 * ~10 ns here). With anchors (lib/policy/compiled_policy.h) a packet of the benchmark mix
 * has ~7 candidate words and walks ~1; before them, a policy whose every field had a
 * wildcard rule in every 64-rule block made every word a candidate, and 16 words a step
 * took bench.sh's 10,000-rule flow from 547 to 415 ns at the price of ~255k verified
 * instructions (4: ~70k).
 */
#define XDPCTL_POL_WORDS_PER_STEP 4

/* The walk keeps the aggregate words in fields of its state, not in a counter-indexed
 * array: a counter whose value the verifier knows would make it verify every iteration. */
_Static_assert(XDPCTL_POL_MAX_AGG <= 3, "the walk holds at most 3 aggregate words");
_Static_assert((XDPCTL_POL_ROW_MAX_BYTES & (XDPCTL_POL_ROW_MAX_BYTES - 1)) == 0,
	       "word offsets are masked to the row");

/*
 * What --iif matches: the key the loader gave the interface this program runs on
 * (abi: xdpctl_iface_meta.iif_key), unique across namespaces, where ifindexes repeat. 0 (the
 * tests, which run the program on no interface): the packet's ifindex is the key.
 */
const volatile __u32 cfg_iif_key = 0;

/* The key of the interface a packet came in on, from the program's context (an xdp_md for
 * the XDP hook, an __sk_buff for TC), read where a path matches --iif and only there: on XDP
 * the ifindex is three dependent loads (rxq, dev, ifindex), and the loader's key leaves the
 * verifier to delete them. */
static __always_inline __u32 pol_iif_key(const void *ctx, __u32 hook)
{
	if (cfg_iif_key)
		return cfg_iif_key;
	return hook == XDPCTL_HOOK_XDP ? ((const struct xdp_md *)ctx)->ingress_ifindex
				       : ((const struct __sk_buff *)ctx)->ifindex;
}

/*
 * The paths this program contains (enum xdpctl_path), set by the loader from the policy in
 * force (lib/attach/datapath_paths.h): a path not in it is a branch the verifier sees never taken
 * and deletes, with everything only it reaches. The default, every path, is what a program
 * loaded without knowing the policy gets.
 */
const volatile __u32 cfg_paths = XDPCTL_PATHS_ALL;

static __always_inline int pol_has(__u32 path)
{
	return (cfg_paths & path) != 0;
}

/* Whether deciding rule `r` sends an event: XDPCTL_POL_EMIT (ORed into the action) or 0.
 * Only in a program with the log path (a --log rule in the policy), never in explain. */
static __always_inline __u32 pol_log(const struct xdpctl_rule_rec *r)
{
	return pol_has(XDPCTL_PATH_LOG) && !cfg_explain && r->log_rate ? log_take(r->ctr_slot, r->log_rate) : 0;
}

/*
 * In xdpctl_pol_decide()'s result, past rule_id << 8 (bits 8-39) and the retry bit (48): the
 * flow cache must not keep this verdict (a count or rate-limit rule was applied or decided),
 * and the deciding rule's rank + 1 (0: the default). While the walk runs they ride in
 * pol_walk.action, above the action and the event bit (its stack has no room for more).
 */
#define XDPCTL_POL_DECIDE_NOCACHE (1LL << 49)
#define XDPCTL_POL_DECIDE_RANK_SHIFT 50
#define XDPCTL_POL_WALK_NOCACHE (1u << 30)
#define XDPCTL_POL_WALK_RANK_SHIFT 16
_Static_assert(XDPCTL_POL_MAX_RANKS < (1 << 14), "rank + 1 takes 14 bits");

/* What the walk needs of a packet: its classes and its length. */
struct pol_key {
	int cls[XDPCTL_POL_FIELDS];
	__u32 len;
};

struct pol_walk {
	union {
		const __u8 *row[XDPCTL_POL_FIELDS]; /* each field's row, inside a rows element */
		struct pol_key key; /* before: the classes they come from (pol_walk() says how) */
	};
	__u64 agg[3];       /* aggregate bits not visited yet */
	/* The stack a call chain may use is 512 bytes: what the rows pass and the walk need
	 * share the space. */
	union {
		__u64 anc[3];       /* while the rows are read: their anchor bits, ORed */
		struct {            /* then, the walk's */
			__u64 word;         /* candidate rules of the current word not visited yet */
			__u32 rank_base;    /* rank of bit 0 of `word` */
			__u32 n_rules;
			__u32 rec_base;     /* rank 0 in xdpctl_prule */
			__u32 len;          /* the packet's bytes, for the counters */
		};
	};
	__u32 action;       /* the verdict: the default until a rule decides */
	__u32 rule_id;      /* the deciding rule, 0 for the default */
};

/* Trailing zeros of x != 0: the population count of the bits below the lowest set bit.
 * Branch-free, so the verifier walks one path; clang 14 crashes on __builtin_ctzll for BPF. */
static __always_inline __u32 pol_ctz(__u64 x)
{
	__u64 v = (x & -x) - 1;

	v = v - ((v >> 1) & 0x5555555555555555ULL);
	v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);
	v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (__u32)((v * 0x0101010101010101ULL) >> 56);
}

/* Rule word k of field f's row (past its aggregate words). A row starts at most
 * XDPCTL_POL_ROWS_ELEM_BYTES - XDPCTL_POL_ROW_MAX_BYTES - 64 bytes into its element and is
 * at most XDPCTL_POL_ROW_MAX_BYTES long (the writer lays them out so): the verifier checks
 * the load against that. */
static __always_inline __u64 pol_row_word(const struct pol_walk *w, int f, __u32 k)
{
	return *(const __u64 *)(w->row[f] + ((k * 8) & (XDPCTL_POL_ROW_MAX_BYTES - 8)));
}

/* Rule word k of the AND of the seven rows. No early exit: seven loads cost less than the
 * paths they would make the verifier walk. */
static __always_inline __u64 pol_row_and(const struct pol_walk *w, __u32 k)
{
	__u64 acc = ~0ULL;

#pragma unroll
	for (int f = 0; f < XDPCTL_POL_FIELDS; f++)
		acc &= pol_row_word(w, f, k);
	return acc;
}

/* `slot` points at the record's ctr_slot, the key as it is: a copy would take a stack slot
 * in the walk's frame, which has none to spare. */
static __always_inline void pol_count(const __u32 *slot, __u32 len)
{
	struct xdpctl_rule_ctr *c = bpf_map_lookup_elem(&xdpctl_rctr, slot);
	__u64 j;

	if (!c)
		return;
	c->packets++;
	c->bytes += len;
	j = bpf_jiffies64();
	if (c->last_hit_jiffies != j) {
		c->last_hit_jiffies = j;
		c->last_hit_ns = bpf_ktime_get_coarse_ns();
	}
}

/*
 * A token bucket shared by all CPUs, without a lock, and a purse per CPU. A packet takes its
 * token from its CPU's purse: no clock read, no shared cache line. An empty purse goes to the
 * bucket for a batch (burst / XDPCTL_RATE_PURSE_DIV tokens, at least 1): the refill is
 * claimed with a compare-and-swap on last_ns (one CPU adds the elapsed time's tokens), the
 * batch is taken with one atomic add, and a take that raced below what it read gives back
 * what was not there, so the bucket never lends. A bucket that had less than a batch sends
 * the CPU away until a batch has accrued at the rate (at least XDPCTL_RATE_REFILL_NS): an
 * over-limit CPU drops without touching the shared line in between. Tokens move, they are
 * never made: what the CPUs pass is at most what the bucket gave, burst + rate * t (plus what
 * purses held at the start, less than a batch each); what a purse holds when its CPU goes idle
 * (less than a batch) waits there for that CPU's next packet.
 * Explain (cfg_explain) changes nothing and answers as the next packet on this CPU would.
 */
static __always_inline int pol_rate_conforms(const struct xdpctl_rule_rec *r)
{
	/* The key is the record's own field: no copy on the stack, which has no room left. */
	struct xdpctl_rate_purse *p = bpf_map_lookup_elem(&xdpctl_rpurse, &r->ctr_slot);
	struct xdpctl_rate_bucket *b;
	__u64 rate, cap, batch, now, last, el, add, n;
	__s64 after;

	if (!p)
		return 1;
	if (p->tokens) {
		if (!cfg_explain)
			p->tokens--;
		return 1;
	}
	now = bpf_ktime_get_ns();
	if ((__s64)(now - p->next_ns) < 0)
		return 0;
	/* Across the next call the time waits in the purse (a wait until now is none) and the
	 * rule's numbers in its record, read after it: fewer values for the registers a call
	 * keeps, as the stack has no room for a spill. */
	if (!cfg_explain)
		p->next_ns = now;
	b = bpf_map_lookup_elem(&xdpctl_rrate, &r->ctr_slot);
	if (!b)
		return 1;
	now = cfg_explain ? bpf_ktime_get_ns() : *(volatile __u64 *)&p->next_ns;
	rate = *(volatile __u64 *)&r->rate_pps;
	cap = *(volatile __u64 *)&r->burst * XDPCTL_NSEC_PER_SEC;
	if (!rate)
		return 1;
	last = *(volatile __u64 *)&b->last_ns;
	el = now - last;
	if (cfg_explain) {
		/* Read only: the refill this packet would make, and whether a token is left. */
		after = b->tokens_nano;
		if ((__s64)el >= XDPCTL_RATE_REFILL_NS)
			after += el >= cap / rate ? cap : el * rate;
		return after > (__s64)cap ? cap >= XDPCTL_NSEC_PER_SEC : after >= (__s64)XDPCTL_NSEC_PER_SEC;
	}
	if ((__s64)el >= XDPCTL_RATE_REFILL_NS &&
	    __sync_val_compare_and_swap(&b->last_ns, last, now) == last) {
		/* Past the time to fill the bucket, it is full: no multiply that could overflow. */
		add = el >= cap / rate ? cap : el * rate;
		after = __sync_fetch_and_add(&b->tokens_nano, (__s64)add) + (__s64)add;
		if (after > (__s64)cap)
			__sync_fetch_and_add(&b->tokens_nano, (__s64)cap - after);
	}
	batch = cap / (XDPCTL_RATE_PURSE_DIV * XDPCTL_NSEC_PER_SEC) ?: 1;
	after = *(volatile __s64 *)&b->tokens_nano;
	n = after < (__s64)XDPCTL_NSEC_PER_SEC ? 0 : (__u64)after / XDPCTL_NSEC_PER_SEC;
	if (n > batch)
		n = batch;
	if (n) {
		after = __sync_fetch_and_add(&b->tokens_nano, -(__s64)(n * XDPCTL_NSEC_PER_SEC));
		if (after < (__s64)(n * XDPCTL_NSEC_PER_SEC)) {
			/* Another CPU took some first: keep the whole tokens that were there. */
			add = n - (after < 0 ? 0 : (__u64)after / XDPCTL_NSEC_PER_SEC);
			__sync_fetch_and_add(&b->tokens_nano, (__s64)(add * XDPCTL_NSEC_PER_SEC));
			n -= add;
		}
	}
	if (n < batch) {
		/* Come back when a batch has come in at the rate. */
		el = batch * XDPCTL_NSEC_PER_SEC / rate;
		p->next_ns = now + (el < XDPCTL_RATE_REFILL_NS ? XDPCTL_RATE_REFILL_NS : el);
	}
	if (!n)
		return 0;
	p->tokens = n - 1;
	return 1;
}

/* Whether a rate-limit rule lets the packet on. A program without the rate path never meets
 * one (the loader's mask follows the policy): it would let the packet on, as if within the
 * rate, rather than drop. */
static __always_inline int pol_rate_ok(const struct xdpctl_rule_rec *r)
{
	return !pol_has(XDPCTL_PATH_RATE) || pol_rate_conforms(r);
}

/*
 * One step of the walk (bpf_loop's body, so the verifier checks it once, not per step):
 * with no candidate word in hand, take aggregate bits until a word has matching rules (at
 * most XDPCTL_POL_WORDS_PER_STEP of them); then visit the next matching rule. Returns 1 to
 * stop.
 */
static __always_inline long pol_step(struct pol_walk *w)
{
	struct xdpctl_rule_rec *r;
	__u32 wi, rank, key, act;
	int counted;

#pragma unroll
	for (int t = 0; t < XDPCTL_POL_WORDS_PER_STEP; t++) {
		if (w->word)
			break;
		if (w->agg[0]) {
			wi = pol_ctz(w->agg[0]);
			w->agg[0] &= w->agg[0] - 1;
		} else if (w->agg[1]) {
			wi = 64 + pol_ctz(w->agg[1]);
			w->agg[1] &= w->agg[1] - 1;
		} else if (w->agg[2]) {
			wi = 128 + pol_ctz(w->agg[2]);
			w->agg[2] &= w->agg[2] - 1;
		} else {
			return 1;
		}
		w->rank_base = wi * 64;
		w->word = pol_row_and(w, wi);
	}
	if (!w->word)
		return 0;
	rank = w->rank_base + pol_ctz(w->word);
	w->word &= w->word - 1;
	if (rank >= w->n_rules)
		return 1;
	key = w->rec_base + rank;
	r = bpf_map_lookup_elem(&xdpctl_prule, &key);
	if (!r)
		return 1;
	act = r->action;
	counted = act == XDPCTL_ACT_COUNT || (act == XDPCTL_ACT_RATE_LIMIT && pol_rate_ok(r));
	if (!cfg_explain)
		pol_count(&r->ctr_slot, w->len);
	else if (counted)
		explain_counted(r->id);
	if (counted) {
		w->action |= XDPCTL_POL_WALK_NOCACHE;
		return 0;
	}
	w->action = (w->action & XDPCTL_POL_WALK_NOCACHE) | (act == XDPCTL_ACT_RATE_LIMIT ? XDPCTL_POL_WALK_NOCACHE : 0) |
		    ((rank + 1) << XDPCTL_POL_WALK_RANK_SHIFT) |
		    (act == XDPCTL_ACT_PASS ? XDPCTL_ACT_PASS : XDPCTL_ACT_DROP) | pol_log(r);
	w->rule_id = r->id;
	return 1;
}

static long pol_walk_step(__u64 index, void *ctx)
{
	return pol_step(ctx);
}

/* The fields no rule of the direction names (bit f: XDPCTL_FIELD_*), from dir_hdr.decide of a
 * direction the tables decide (abi: XDPCTL_POL_DECIDE_SKIP_SHIFT); never L4. With the anchor
 * lists: the fields no rule is anchored at. */
static __always_inline __u32 pol_skipped_fields(const struct xdpctl_pol_dir_hdr *dh)
{
	__u32 d = dh->decide;

	_Static_assert(XDPCTL_POL_DECIDE_TABLES == 0 && XDPCTL_POL_DECIDE_ANCHORS == 4, "one test for both");
	if (d & XDPCTL_POL_DECIDE_SHAPE_MASK & ~XDPCTL_POL_DECIDE_ANCHORS) /* one register less than two tests */
		return 0;
	return (d >> XDPCTL_POL_DECIDE_SKIP_SHIFT) & XDPCTL_POL_SKIP_FIELDS;
}

/* Class `idx` of a table of u16 classes starting at line `base`; -1 if the line is missing. */
static __always_inline int pol_cls(void *map, __u32 base, __u32 idx)
{
	__u32 key = base + idx / XDPCTL_POL_CLS_PER_LINE;
	struct xdpctl_pol_cls_line *l = bpf_map_lookup_elem(map, &key);

	return l ? l->cls[idx & (XDPCTL_POL_CLS_PER_LINE - 1)] : -1;
}

/*
 * The functions below are global (not static) on purpose: the verifier checks a global
 * function once, on its own, with unknown arguments. Inlined, the prefix-table lookups and
 * the walk would be checked again for every parser path that reaches them (over the
 * 1,000,000-instruction limit, measured). Each costs a packet one call.
 */

/* Address classes: tables hold class + 1 and a /0 of each family, so 0 means no table.
 * The IPv6 lookup is a function of its own, with the address as plain scalars: it alone
 * takes the verifier ~17,000 instructions, and anything that doubles its paths doubles that. */
static __always_inline int pol_addr_result(__u32 v)
{
	if (v == XDPCTL_PFX_NONE || v > XDPCTL_PFX_VALUE_MAX)
		return -1;
	return (int)(v - 1);
}

/* The leaf value of an IPv6 address in the table of `slot` of xdpctl_ptabs (set 0) or of
 * xdpctl_pset (set 1); -1: no table. One function for every IPv6 table a packet reads, so
 * the verifier checks the lookup once. */
__noinline long xdpctl_pol_tab6(__u32 set, __u32 slot, __u64 hi, __u64 lo)
{
	void *t = set ? bpf_map_lookup_elem(&xdpctl_pset, &slot) : bpf_map_lookup_elem(&xdpctl_ptabs, &slot);

	return t ? (long)(__s32)xdpctl_pfx6_lookup(t, hi, lo) : -1;  /* XDPCTL_PFX_MISSING: -1 */
}

__noinline int xdpctl_pol_addr6_cls(__u32 slot, __u64 hi, __u64 lo)
{
	long v = xdpctl_pol_tab6(0, slot, hi, lo);

	return v < 0 ? -1 : pol_addr_result((__u32)v);
}

/* The leaf value of an IPv4 address (host order) in the table of `slot`: its level 1 from
 * `l1map` (inlined), below that `outer`'s table; -1: no table, or a freed slot's placeholder
 * (a set's empty answer would otherwise read as "not a member"). `sparse16` (a constant): the
 * table may hold sparse /16s (a policy's, not a set's own). */
static __always_inline long pol_tab4(void *l1map, void *outer, __u32 slot, __u32 addr, const int sparse16)
{
	struct xdpctl_pol_l1 *l1 = bpf_map_lookup_elem(l1map, &slot);
	__u32 e;
	void *t;

	if (!l1)
		return -1;
	e = l1->word[(addr >> 16) & (XDPCTL_PFX_L1_ENTRIES - 1)];
	if (!(e & XDPCTL_PFX_REF))
		return e;
	t = bpf_map_lookup_elem(outer, &slot);
	return t ? (long)(__s32)xdpctl_pfx4_lookup_below_l1(t, e, addr, sparse16) : -1;  /* XDPCTL_PFX_MISSING: -1 */
}

static __always_inline __u32 pol_member(long v)
{
	return v != XDPCTL_PFX_NONE && v != XDPCTL_PFX_EXCEPTED;
}

/* A split field's class (abi: "Sets' own tables"): the node of the rules' own prefixes (no
 * lookup when there are none), each set's membership from its own table, then one inlined
 * array read. v6: the IPv6 address's halves, else `hi` is the IPv4 address (host order).
 * A global function called from the program, beside the IPv6 lookups: inside
 * xdpctl_pol_decide() its stack would pass the 512 bytes of one call chain. */
__noinline int xdpctl_pol_split_cls(__u32 slot, __u32 v6, __u64 hi, __u64 lo)
{
	__u32 addr = (__u32)hi;

	struct xdpctl_pol_split *sp = bpf_map_lookup_elem(&xdpctl_psplit, &slot);  /* inlined */
	__u32 idx = 0;  /* node << n_sets | membership bits: few values live across the lookups */
	long v;

	if (!sp)
		return -1;
	if (sp->rule_table) {
		v = v6 ? xdpctl_pol_tab6(0, slot, hi, lo) : pol_tab4(&xdpctl_pl1, &xdpctl_ptabs, slot, addr, 1);
		if (v < 0 || pol_addr_result((__u32)v) < 0)
			return -1;
		idx = ((__u32)v - 1) << (sp->n_sets & 7);
	}
	for (__u32 s = 0; s < XDPCTL_POL_SPLIT_SETS; s++) {  /* bounded; not unrolled: a lookup is long */
		if (s >= sp->n_sets)
			break;
		v = v6 ? xdpctl_pol_tab6(1, sp->slot[s], hi, lo)
		       : pol_tab4(&xdpctl_psl1, &xdpctl_pset, sp->slot[s] & (XDPCTL_POL_SET_SLOTS - 1), addr, 0);
		if (v < 0)
			return -1;
		idx |= pol_member(v) << s;
	}
	return sp->node_class[idx & (XDPCTL_POL_NODE_CLASSES - 1)];
}

/* dir_hdr.decide's split bits (bit 0 src, bit 1 dst). */
static __always_inline __u32 pol_split_fields(const struct xdpctl_pol_dir_hdr *dh)
{
	return (dh->decide >> XDPCTL_POL_DECIDE_SPLIT_SHIFT) & 3;
}

/* Of them, the fields split by one set alone (no rule prefix): an IPv4 address's class there
 * is read inline where it is needed, with no call (abi: XDPCTL_POL_DECIDE_SPLIT_ONE_SHIFT). */
static __always_inline __u32 pol_split_one_fields(const struct xdpctl_pol_dir_hdr *dh)
{
	return (dh->decide >> XDPCTL_POL_DECIDE_SPLIT_ONE_SHIFT) & 3;
}

/* pol_addr_cls()'s `split` for field `dst` (0 src, 1 dst): 0 not split, 1 split, else split
 * by one set alone, whose slot is split - 2. */
static __always_inline __u32 pol_split_arg(const struct xdpctl_pol_dir_hdr *dh, __u32 dst)
{
	__u32 d = dh->decide;

	if (!(d >> (XDPCTL_POL_DECIDE_SPLIT_SHIFT + dst) & 1))
		return 0;
	if (!(d >> (XDPCTL_POL_DECIDE_SPLIT_ONE_SHIFT + dst) & 1))
		return 1;
	return 2 + (d >> (XDPCTL_POL_DECIDE_SET_SLOT_SHIFT + 3 * dst) & (XDPCTL_POL_SET_SLOTS - 1));
}

/* The class of an IPv4 address (host order) in a field split by one set alone, whose table
 * is in `set_slot`: the set's table, as an unsplit field's own (an inlined level 1, then its
 * chunks), and one inlined array read after it (so that no pointer stays live across the
 * table's calls: xdpctl_pol_decide()'s stack is at the limit of its call chain). */
static __always_inline int pol_split_one4(__u32 slot, __u32 set_slot, __u32 addr)
{
	struct xdpctl_pol_split *sp;
	long v = pol_tab4(&xdpctl_psl1, &xdpctl_pset, set_slot & (XDPCTL_POL_SET_SLOTS - 1), addr, 0);

	if (v < 0)
		return -1;
	sp = bpf_map_lookup_elem(&xdpctl_psplit, &slot);
	return sp ? sp->node_class[pol_member(v)] : -1;
}

/* An address's class: IPv4 inline (a few instructions for the verifier); IPv6, and a split
 * field's (`split` 1), as found by pol_pre_classes() before (`cls6`); `split` past 1: the
 * field is split by one set alone (pol_split_arg()), an IPv4 address's class read here. */
static __always_inline int pol_addr_cls(__u32 slot, __u32 konst, const struct pkt *p, const __u32 *a,
					int cls6, __u32 split)
{
	long v;

	if (split > 1 && p->l3_proto == ETH_P_IP)
		return pol_split_one4(slot, split - 2, bpf_ntohl(a[0]));
	if (split)
		return cls6;  /* pol_pre_classes() */
	if (konst)
		return (int)(konst - 1);
	if (p->l3_proto != ETH_P_IP)
		return cls6;
	v = pol_tab4(&xdpctl_pl1, &xdpctl_ptabs, slot, bpf_ntohl(a[0]), 1);
	return v < 0 ? -1 : pol_addr_result((__u32)v);
}

/* One field's class for pol_pre_classes(): a split field's (`split`), or an IPv6 address's
 * where a table is needed; 0 for the others. */
static __always_inline int pol_pre_class(__u32 slot, __u32 split, __u32 v6, __u32 konst, const __u32 *a)
{
	__u64 hi = v6 ? ((__u64)bpf_ntohl(a[0]) << 32) | bpf_ntohl(a[1]) : bpf_ntohl(a[0]);
	__u64 lo = v6 ? ((__u64)bpf_ntohl(a[2]) << 32) | bpf_ntohl(a[3]) : 0;

	if (split)
		return xdpctl_pol_split_cls(slot, v6, hi, lo);
	if (v6 && !konst)
		return xdpctl_pol_addr6_cls(slot, hi, lo);
	return 0;
}

/*
 * An IPv6 packet's source and destination classes where a table is needed, and any IP
 * packet's in a field split by its sets, as (u32)src << 32 | (u32)dst (-1: a table missing;
 * 0 for the others). Called from the program, not from xdpctl_pol_decide(): the IPv6
 * lookup's stack (and the split one's) and the walk's state would not fit in the 512 bytes
 * BPF allows along one call chain.
 */
static __always_inline __u64 pol_pre_classes(const struct pkt *p, __u32 gen, __u32 dir)
{
	__u32 g = gen & 1, d = dir & 1, v6 = p->l3_proto == ETH_P_IPV6;
	struct xdpctl_pol_hdr *h;
	int src, dst;
	__u32 split;

	if (!v6 && p->l3_proto != ETH_P_IP)
		return 0;
	h = bpf_map_lookup_elem(&xdpctl_phdr, &g);
	if (!h || !h->dir[d].n_rules)
		return 0;
	split = pol_split_fields(&h->dir[d]);
	if (!v6)  /* pol_addr_cls() reads a field split by one set alone itself */
		split &= ~pol_split_one_fields(&h->dir[d]);
	if (!v6 && !split)
		return 0;
	src = pol_pre_class(XDPCTL_POL_TAB_ADDR(g, d, 0), split & 1, v6, h->dir[d].src_const, p->saddr);
	dst = pol_pre_class(XDPCTL_POL_TAB_ADDR(g, d, 1), split & 2, v6, h->dir[d].dst_const, p->daddr);
	return ((__u64)(__u32)src << 32) | (__u32)dst;
}


/*
 * A row's first line: its aggregate words (AND into the walk's), then its anchor words (OR
 * into `anc`; lib/policy/compiled_policy.h says why). Words past agg_words are someone
 * else's and are masked off by the caller.
 */
static __always_inline void pol_row_agg(struct pol_walk *w, const __u64 *r, __u32 agg_words)
{
	w->agg[0] &= r[0];
	w->anc[0] |= r[agg_words & 3];
	if (agg_words > 1) {  /* over 4,096 rules */
		w->agg[1] &= r[1];
		w->agg[2] &= r[2];
		w->anc[1] |= r[(agg_words & 3) + 1];
		w->anc[2] |= r[(agg_words & 3) + 2];
	}
}

/* Field f's row for class `cls`: in the small rows' element `small` when the direction's
 * rows are there, else in the rows map `rows` (*e: the element of *prev, looked up again only
 * when the element changes). NULL: out of range or missing. */
static __always_inline const __u64 *pol_field_row(const struct xdpctl_pol_dir_hdr *dh, void *small, void *rows,
						  __u32 rpe, int f, int cls, void **e, __u32 *prev)
{
	__u32 row = dh->row_base[f] + (__u32)cls, off, elem;

	if (small) {
		off = (dh->rows_line0 + row * dh->row_lines) * XDPCTL_PFX_LINE_BYTES;
		if (off > XDPCTL_POL_SMALL_ROWS_BYTES - XDPCTL_POL_ROW_MAX_BYTES - 64)
			return NULL;
		return small + off;
	}
	elem = dh->rows_elem + row / rpe;
	if (elem != *prev) {
		*e = bpf_map_lookup_elem(rows, &elem);
		*prev = elem;
	}
	if (!*e)
		return NULL;
	off = (row % rpe) * dh->row_lines * XDPCTL_PFX_LINE_BYTES;
	if (off > XDPCTL_POL_ROWS_ELEM_BYTES - XDPCTL_POL_ROW_MAX_BYTES - 64)
		return NULL;
	return *e + off;
}

/*
 * The rows and the walk, on w->key (the packet's classes, from pol_classes()). Returns
 * rule_id << 8 | action. The row pointers take the classes' place (pol_walk's union: stack
 * is short); row[f] covers key.cls[2f] and key.cls[2f + 1], so L4's row (past every class)
 * is read first, then the fields go from the last down, each class read before its row is
 * written, and the length is read first.
 * A field no rule names (dir_hdr.decide's skip bits) has every rule in every row: its row
 * is not read, L4's stands in for it in the walk's ANDs (the same words, so no change).
 */
static __always_inline long pol_walk(struct pol_walk *w, __u32 gen, __u32 dir, __u32 def)
{
	__u32 g = gen & 1, prev = ~0U, rpe = 0, agg_words, skip, len = w->key.len;
	struct xdpctl_pol_hdr *h = bpf_map_lookup_elem(&xdpctl_phdr, &g);
	struct xdpctl_pol_dir_hdr *dh;
	void *rows = NULL, *small = NULL, *e = NULL;
	const __u64 *r;

	if (!h)
		return def;
	dh = &h->dir[dir & 1];
	agg_words = dh->agg_words;
	if (agg_words > 3)
		return def;
	skip = pol_skipped_fields(dh);
	w->agg[0] = w->agg[1] = w->agg[2] = ~0ULL;
	w->anc[0] = w->anc[1] = w->anc[2] = 0;
#pragma unroll
	for (int f = 0; f < XDPCTL_POL_FIELDS; f++)
		if (w->key.cls[f] < 0)
			return def;
	if (dh->rows_small) {
		/* Every row in one element of a plain array: an inlined lookup, no call. */
		small = bpf_map_lookup_elem(&xdpctl_prows_small, &g);
		if (!small)
			return def;
	} else {
		rows = bpf_map_lookup_elem(&xdpctl_prows, &g);
		if (!rows)
			return def;
		rpe = dh->rows_per_elem;
		if (!rpe)
			return def;
	}
	r = pol_field_row(dh, small, rows, rpe, XDPCTL_FIELD_L4, w->key.cls[XDPCTL_FIELD_L4], &e, &prev);
	if (!r)
		return def;
	pol_row_agg(w, r, agg_words);
	w->row[XDPCTL_FIELD_L4] = (const __u8 *)(r + 2 * agg_words);
	/* Rows are laid out field after field, so equal elements are mostly neighbours. */
#pragma unroll
	for (int f = XDPCTL_POL_FIELDS - 1; f >= 0; f--) {
		if (f == XDPCTL_FIELD_L4)
			continue;
		if (skip & (1u << f)) {
			w->row[f] = w->row[XDPCTL_FIELD_L4];
			continue;
		}
		r = pol_field_row(dh, small, rows, rpe, f, w->key.cls[f], &e, &prev);
		if (!r)
			return def;
		pol_row_agg(w, r, agg_words);
		w->row[f] = (const __u8 *)(r + 2 * agg_words);
	}
	/* Candidate words: in every row's aggregate and in some row's anchors. */
	w->agg[0] &= w->anc[0];
	w->agg[1] &= w->anc[1];
	w->agg[2] &= w->anc[2];
	if (agg_words < 3)
		w->agg[2] = 0;
	if (agg_words < 2)
		w->agg[1] = 0;
	if (!(w->agg[0] | w->agg[1] | w->agg[2]))
		return def;
	w->word = 0;
	w->rank_base = 0;
	w->n_rules = dh->n_rules;
	w->rec_base = XDPCTL_POL_GD(g, dir & 1) * XDPCTL_POL_MAX_RANKS;
	w->len = len;
	w->action = def;
	w->rule_id = 0;
	/* The first step inline: most packets are decided there, and bpf_loop's steps are calls. */
	if (!pol_step(w))
		bpf_loop(XDPCTL_POL_WALK_STEPS - 1, pol_walk_step, w, 0);
	return ((long)w->rule_id << 8) | (w->action & 0xff) |
	       (w->action & XDPCTL_POL_WALK_NOCACHE ? XDPCTL_POL_DECIDE_NOCACHE : 0) |
	       ((long)((w->action >> XDPCTL_POL_WALK_RANK_SHIFT) & 0x3fff) << XDPCTL_POL_DECIDE_RANK_SHIFT);
}

/* Set in pol_classes()'s result: the rules must be walked; an address table was
 * missing (a generation being freed, see classify()). */
#define XDPCTL_POL_WALK 0x100
#define XDPCTL_POL_RETRY 0x200

/*
 * The packet's class in every field, into *k. Returns the default action, with
 * XDPCTL_POL_WALK set unless the direction has no rules, or XDPCTL_POL_RETRY set when an
 * address table is not there. A function apart from the walk:
 * the caller calls both, so no call chain holds the walk's state and the IPv6 lookup's
 * stack together (BPF allows 512 bytes along a chain).
 */
static __always_inline int pol_classes(const struct pkt *p, __u32 gen, __u32 dir, __u32 ifindex,
				       __u64 v6, struct pol_key *k)
{
	__u32 gd, def, skip;
	struct xdpctl_pol_hdr *h;
	struct xdpctl_pol_dir_hdr *dh;
	int ip, has_ports;

	gen &= 1;
	dir &= 1;
	h = bpf_map_lookup_elem(&xdpctl_phdr, &gen);
	if (!h || !p || !k)
		return XDPCTL_ACT_PASS;
	def = h->default_action == XDPCTL_ACT_DROP ? XDPCTL_ACT_DROP : XDPCTL_ACT_PASS;
	dh = &h->dir[dir];
	if (!dh->n_rules)
		return def;
	gd = XDPCTL_POL_GD(gen, dir);
	skip = pol_skipped_fields(dh);
	/* a field skipped is never read: class 0 keeps pol_walk()'s check of every class */
#pragma unroll
	for (int f = 0; f < XDPCTL_POL_FIELDS; f++)
		k->cls[f] = 0;

	ip = p->l3_proto == ETH_P_IP || p->l3_proto == ETH_P_IPV6;
	has_ports = 0;
	if (ip) {
		__u32 later = p->frag == PKT_LATER_FRAGMENT;

		if (!(skip & (1u << XDPCTL_FIELD_SRC)))
			k->cls[XDPCTL_FIELD_SRC] = pol_addr_cls(XDPCTL_POL_TAB_ADDR(gen, dir, 0), dh->src_const, p,
								p->saddr, (int)(v6 >> 32), pol_split_arg(dh, 0));
		if (!(skip & (1u << XDPCTL_FIELD_DST)))
			k->cls[XDPCTL_FIELD_DST] = pol_addr_cls(XDPCTL_POL_TAB_ADDR(gen, dir, 1), dh->dst_const, p,
								p->daddr, (int)(__u32)v6, pol_split_arg(dh, 1));
		if (k->cls[XDPCTL_FIELD_SRC] < 0 || k->cls[XDPCTL_FIELD_DST] < 0)
			return def | XDPCTL_POL_RETRY;
		k->cls[XDPCTL_FIELD_L4] = pol_cls(&xdpctl_pl4, gd * XDPCTL_POL_L4_LINES,
						  (later << 16) | ((__u32)p->l4_proto << 8) | p->tcp_flags);
		has_ports = !later && (p->l4_proto == IPPROTO_TCP || p->l4_proto == IPPROTO_UDP);
	} else {
		k->cls[XDPCTL_FIELD_SRC] = dh->src_nonip;
		k->cls[XDPCTL_FIELD_DST] = dh->dst_nonip;
		k->cls[XDPCTL_FIELD_L4] = dh->l4_nonip;
	}
	if (skip & (1u << XDPCTL_FIELD_SPORT))
		;
	else if (has_ports)
		k->cls[XDPCTL_FIELD_SPORT] = pol_cls(&xdpctl_pport, (gd * 2) * XDPCTL_POL_PORT_LINES,
						     bpf_ntohs(p->sport));
	else
		k->cls[XDPCTL_FIELD_SPORT] = dh->sport_none;
	if (skip & (1u << XDPCTL_FIELD_DPORT))
		;
	else if (has_ports)
		k->cls[XDPCTL_FIELD_DPORT] = pol_cls(&xdpctl_pport, (gd * 2 + 1) * XDPCTL_POL_PORT_LINES,
						     bpf_ntohs(p->dport));
	else
		k->cls[XDPCTL_FIELD_DPORT] = dh->dport_none;
	if (!(skip & (1u << XDPCTL_FIELD_VLAN)))
		k->cls[XDPCTL_FIELD_VLAN] = pol_cls(&xdpctl_pvlan, gd * XDPCTL_POL_VLAN_LINES,
						    p->n_vlans ? p->vlan_id[0] & 0xfff : XDPCTL_POL_VLAN_ENTRIES - 1);
	if (!(skip & (1u << XDPCTL_FIELD_IIF)))
		k->cls[XDPCTL_FIELD_IIF] = ifindex < XDPCTL_POL_IIF_ENTRIES
						   ? pol_cls(&xdpctl_piif, gd * XDPCTL_POL_IIF_LINES, ifindex)
						   : (int)dh->iif_other;
	k->len = p->len;
	return def | XDPCTL_POL_WALK;
}

/* Whether small rule `r` matches the packet; `fam` is 4, 6 or 0 (not IP). The checks are
 * rule_matches() of lib/policy/reference_classifier.cpp, field by field. */
static __always_inline int pol_small_match(const struct xdpctl_pol_small_rule *r, const struct pkt *p, __u32 fam)
{
	__u32 f = r->flags, later = p->frag == PKT_LATER_FRAGMENT;
	__u32 ports = fam && !later && (p->l4_proto == IPPROTO_TCP || p->l4_proto == IPPROTO_UDP);
	__u16 sp = bpf_ntohs(p->sport), dp = bpf_ntohs(p->dport);

	if (r->family) {
		if (r->family != fam)
			return 0;
		/* masks of an IPv4 rule are 0 past word 0; the parser zeroes those words too */
		if (((p->saddr[0] & r->src_mask[0]) ^ r->src[0]) | ((p->saddr[1] & r->src_mask[1]) ^ r->src[1]) |
		    ((p->saddr[2] & r->src_mask[2]) ^ r->src[2]) | ((p->saddr[3] & r->src_mask[3]) ^ r->src[3]) |
		    ((p->daddr[0] & r->dst_mask[0]) ^ r->dst[0]) | ((p->daddr[1] & r->dst_mask[1]) ^ r->dst[1]) |
		    ((p->daddr[2] & r->dst_mask[2]) ^ r->dst[2]) | ((p->daddr[3] & r->dst_mask[3]) ^ r->dst[3]))
			return 0;
	}
	if (!f)
		return 1;
	if ((f & XDPCTL_SMALL_F_PROTO) && (!fam || p->l4_proto != r->proto))
		return 0;
	if ((f & XDPCTL_SMALL_F_SPORT) && (!ports || sp < r->sport_lo || sp > r->sport_hi))
		return 0;
	if ((f & XDPCTL_SMALL_F_DPORT) && (!ports || dp < r->dport_lo || dp > r->dport_hi))
		return 0;
	if ((f & XDPCTL_SMALL_F_TCP_FLAGS) &&
	    (!fam || later || p->l4_proto != IPPROTO_TCP || (p->tcp_flags & r->tcp_mask) != r->tcp_value))
		return 0;
	if ((f & XDPCTL_SMALL_F_VLAN) && (!p->n_vlans || (p->vlan_id[0] & 0xfff) != r->vlan))
		return 0;
	if ((f & XDPCTL_SMALL_F_FRAGMENT) && !(fam && later))
		return 0;
	return 1;
}

/*
 * A small policy's verdict (XDPCTL_POL_DECIDE_SMALL): its rules in evaluation order, compared
 * one by one, with what the walk does on a match (count, rate-limit, decide). Returns
 * rule_id << 8 | action. A bounded loop, not unrolled: the verifier checks every turn all
 * the same, and the JIT code stays one rule's compares long.
 */
static __always_inline long pol_small_decide(const struct pkt *p, __u32 gd, __u32 def)
{
	struct xdpctl_pol_small *t = bpf_map_lookup_elem(&xdpctl_psmall, &gd); /* inlined */
	__u32 fam = p->l3_proto == ETH_P_IP ? 4 : p->l3_proto == ETH_P_IPV6 ? 6 : 0, n, act;
	const struct xdpctl_pol_small_rule *r;
	int counted;

	if (!t)
		return def;
	n = t->n;
	for (__u32 i = 0; i < XDPCTL_POL_SMALL_MAX; i++) {
		if (i >= n)
			break;
		r = &t->r[i];
		if (!pol_small_match(r, p, fam))
			continue;
		act = r->rec.action;
		counted = act == XDPCTL_ACT_COUNT || (act == XDPCTL_ACT_RATE_LIMIT && pol_rate_ok(&r->rec));
		if (!cfg_explain)
			pol_count(&r->rec.ctr_slot, p->len);
		else if (counted)
			explain_counted(r->rec.id);
		if (counted)
			continue;
		return ((long)r->rec.id << 8) | (act == XDPCTL_ACT_PASS ? XDPCTL_ACT_PASS : XDPCTL_ACT_DROP) |
		       pol_log(&r->rec);
	}
	return def;
}

/* In xdpctl_pol_decide()'s result, above any rule id: an address table was missing. */
#define XDPCTL_POL_DECIDE_RETRY (1LL << 48)

/* The record of the rule of rank rank1 - 1 in generation g, direction d; NULL for rank1 0 (the
 * default) or out of range. */
static __always_inline struct xdpctl_rule_rec *pol_rank_rec(__u32 rank1, __u32 g, __u32 d)
{
	__u32 key;

	if (!rank1 || rank1 > XDPCTL_POL_MAX_RANKS)
		return NULL;
	key = XDPCTL_POL_GD(g, d) * XDPCTL_POL_MAX_RANKS + rank1 - 1;
	return bpf_map_lookup_elem(&xdpctl_prule, &key); /* inlined */
}

/* What a one-field direction's lookups give besides a rank + 1 (0: the default decides):
 * a table was missing (a freed slot's placeholder: the packet starts again under the new
 * generation, classify()), or a record was (the default decides). */
#define XDPCTL_POL_FIELD_MISSING (-1L)
#define XDPCTL_POL_FIELD_NONE (-2L)

/* The rank + 1 that xdpctl_pdecide gives class `cls` of direction d of generation g. */
static __always_inline long pol_decide_rank1(__u32 g, __u32 d, int cls)
{
	__u32 key = XDPCTL_POL_GD(g, d) * XDPCTL_POL_DECIDE_LINES +
		    (((__u32)cls / XDPCTL_POL_DECIDE_PER_LINE) & (XDPCTL_POL_DECIDE_LINES - 1));
	struct xdpctl_pol_decide_line *l = bpf_map_lookup_elem(&xdpctl_pdecide, &key); /* inlined */

	return l ? l->rank1[(__u32)cls & (XDPCTL_POL_DECIDE_PER_LINE - 1)] : XDPCTL_POL_FIELD_NONE;
}

/* The rank + 1 deciding IPv4 address `addr` (host order) where the field (`src` or not) is
 * split by one set alone (`split` > 1, pol_split_arg()): from the set's membership, straight
 * where the commit wrote the ranks (XDPCTL_POL_DECIDE_SET_RANKS), else through the class. */
static __always_inline long pol_set_alone_rank1(__u32 g, __u32 d, const struct xdpctl_pol_dir_hdr *dh, __u32 src,
						__u32 split, __u32 addr)
{
	long v = pol_tab4(&xdpctl_psl1, &xdpctl_pset, (split - 2) & (XDPCTL_POL_SET_SLOTS - 1), addr, 0);
	struct xdpctl_pol_split *sp;
	__u32 key;

	if (v < 0)
		return XDPCTL_POL_FIELD_MISSING;
	key = XDPCTL_POL_TAB_ADDR(g, d, !src);
	sp = bpf_map_lookup_elem(&xdpctl_psplit, &key); /* inlined */
	if (!sp)
		return XDPCTL_POL_FIELD_NONE;
	if (dh->decide & XDPCTL_POL_DECIDE_SET_RANKS)
		return sp->rank1[pol_member(v) & 1];
	return pol_decide_rank1(g, d, sp->node_class[pol_member(v) & 1]);
}

/*
 * A one-field policy's verdict (XDPCTL_POL_DECIDE_SRC/DST): the address's class, the rank
 * of its first rule from xdpctl_pdecide, that rule's record. No rows, no walk; count and
 * rate-limit rules never take this path. Returns rule_id << 8 | action, or the default with
 * XDPCTL_POL_DECIDE_RETRY set when the address table was missing (see classify()).
 * (lib/bpf/policy_fast.h decides the common frame of the one-field program by the same
 * lookups.)
 */
static __always_inline long pol_field_decide(const struct pkt *p, __u32 g, __u32 d,
					     const struct xdpctl_pol_dir_hdr *dh, __u32 def, __u64 v6)
{
	__u32 src = (dh->decide & XDPCTL_POL_DECIDE_SHAPE_MASK) == XDPCTL_POL_DECIDE_SRC;
	__u32 split = pol_split_arg(dh, !src);
	struct xdpctl_rule_rec *rec;
	long rank1;
	int cls;

	if (split > 1 && p->l3_proto == ETH_P_IP) {
		/* A set alone: pol_split_one4(), with the rank straight from the membership where the
		 * commit wrote it (abi: XDPCTL_POL_DECIDE_SET_RANKS), no class and no xdpctl_pdecide. */
		rank1 = pol_set_alone_rank1(g, d, dh, src, split, bpf_ntohl(src ? p->saddr[0] : p->daddr[0]));
	} else {
		if (p->l3_proto == ETH_P_IP || p->l3_proto == ETH_P_IPV6)
			cls = src ? pol_addr_cls(XDPCTL_POL_TAB_ADDR(g, d, 0), dh->src_const, p, p->saddr, (int)(v6 >> 32), split)
				  : pol_addr_cls(XDPCTL_POL_TAB_ADDR(g, d, 1), dh->dst_const, p, p->daddr, (int)(__u32)v6, split);
		else
			cls = (int)(src ? dh->src_nonip : dh->dst_nonip);
		rank1 = cls < 0 ? XDPCTL_POL_FIELD_MISSING : pol_decide_rank1(g, d, cls);
	}
	if (rank1 == XDPCTL_POL_FIELD_MISSING)
		return XDPCTL_POL_DECIDE_RETRY | def;
	rec = rank1 < 0 ? NULL : pol_rank_rec((__u32)rank1, g, d);
	if (!rec)
		return def;
	if (!cfg_explain)
		pol_count(&rec->ctr_slot, p->len);
	return ((long)rec->id << 8) | (rec->action == XDPCTL_ACT_PASS ? XDPCTL_ACT_PASS : XDPCTL_ACT_DROP) |
	       pol_log(rec);
}

/*
 * The first rule on anchor list `ent` (start << 8 | length, abi: XDPCTL_POL_ANC_*) of element
 * `gd` of xdpctl_panc that matches the packet, ranked below `best`: its rank, else `best`.
 * A list is in rank order, so the scan stops at `best`. Global, so verified once (its
 * bounded loop of compares, inlined, would be checked again for every field); one call a
 * list that may hold a better rule.
 */
__noinline int xdpctl_pol_anc_scan(const struct pkt *p, __u32 gd, __u32 ent, __u32 best)
{
	__u32 key = gd & 3, start = ent >> 8, len = ent & 0xff, fam, rank;
	const __u8 *e = bpf_map_lookup_elem(&xdpctl_panc, &key); /* inlined */

	if (!e || !p)
		return (int)best;
	fam = p->l3_proto == ETH_P_IP ? 4 : p->l3_proto == ETH_P_IPV6 ? 6 : 0;
	for (__u32 i = 0; i < XDPCTL_POL_ANC_LIST_MAX; i++) {
		if (i >= len)
			break;
		rank = *(const __u16 *)(e + XDPCTL_POL_ANC_LIST_OFF +
					((start + i) & (XDPCTL_POL_ANC_LIST_ENTRIES - 1)) * 2);
		if (rank >= best || rank >= XDPCTL_POL_MAX_RANKS)
			break;
		if (pol_small_match((const struct xdpctl_pol_small_rule *)(e + XDPCTL_POL_ANC_RULES_OFF +
									   rank * sizeof(struct xdpctl_pol_small_rule)),
				    p, fam))
			return (int)rank;
	}
	return (int)best;
}

/* The best rank after field f's anchor list for class `cls` (the scan is called only when the
 * list's first rank beats `best`). */
static __always_inline __u32 pol_anc_list(const struct pkt *p, __u32 gd, const __u8 *e, __u32 f, int cls,
					  __u32 best)
{
	__u32 b = *(const __u32 *)(e + XDPCTL_POL_ANC_BASE_OFF + f * 4), ent, first;

	if (b == XDPCTL_POL_ANC_NONE || cls < 0)
		return best;
	ent = *(const __u32 *)(e + XDPCTL_POL_ANC_IDX_OFF + ((b + (__u32)cls) & (XDPCTL_POL_ANC_IDX_ENTRIES - 1)) * 4);
	if (!(ent & 0xff))
		return best;
	first = *(const __u16 *)(e + XDPCTL_POL_ANC_LIST_OFF + ((ent >> 8) & (XDPCTL_POL_ANC_LIST_ENTRIES - 1)) * 2);
	return first < best ? (__u32)xdpctl_pol_anc_scan(p, gd, ent, best) : best;
}

/*
 * A direction decided by its anchor lists (XDPCTL_POL_DECIDE_ANCHORS), on the classes
 * pol_classes() found: the lowest rank that matches among the rules on the lists of the
 * packet's classes decides, counted as the walk counts it. Drop and pass rules only (count
 * and rate-limit rules take the tables). Returns rule_id << 8 | action.
 */
static __always_inline long pol_anc_decide(const struct pkt *p, __u32 gd, const struct pol_key *k, __u32 def)
{
	__u32 key = gd & 3, best = XDPCTL_POL_MAX_RANKS;
	const __u8 *e = bpf_map_lookup_elem(&xdpctl_panc, &key); /* inlined */
	const struct xdpctl_pol_small_rule *r;

	if (!e)
		return def;
	/* The anchor order (compiled_policy.h): the source's list usually decides early. */
	best = pol_anc_list(p, gd, e, XDPCTL_FIELD_SRC, k->cls[XDPCTL_FIELD_SRC], best);
	best = pol_anc_list(p, gd, e, XDPCTL_FIELD_DST, k->cls[XDPCTL_FIELD_DST], best);
	best = pol_anc_list(p, gd, e, XDPCTL_FIELD_DPORT, k->cls[XDPCTL_FIELD_DPORT], best);
	best = pol_anc_list(p, gd, e, XDPCTL_FIELD_SPORT, k->cls[XDPCTL_FIELD_SPORT], best);
	best = pol_anc_list(p, gd, e, XDPCTL_FIELD_VLAN, k->cls[XDPCTL_FIELD_VLAN], best);
	best = pol_anc_list(p, gd, e, XDPCTL_FIELD_IIF, k->cls[XDPCTL_FIELD_IIF], best);
	best = pol_anc_list(p, gd, e, XDPCTL_FIELD_L4, k->cls[XDPCTL_FIELD_L4], best);
	if (best >= XDPCTL_POL_MAX_RANKS)
		return def;
	r = (const struct xdpctl_pol_small_rule *)(e + XDPCTL_POL_ANC_RULES_OFF +
						   best * sizeof(struct xdpctl_pol_small_rule));
	if (!cfg_explain)
		pol_count(&r->rec.ctr_slot, p->len);
	return ((long)r->rec.id << 8) | (r->rec.action == XDPCTL_ACT_PASS ? XDPCTL_ACT_PASS : XDPCTL_ACT_DROP) |
	       pol_log(&r->rec) | ((long)(best + 1) << XDPCTL_POL_DECIDE_RANK_SHIFT);
}

/*
 * Classes, then the walk, in one global function: one call a packet for both. Returns
 * rule_id << 8 | action, or the default with XDPCTL_POL_DECIDE_RETRY set when an address
 * table was missing.
 */
__noinline long xdpctl_pol_decide(const struct pkt *p, __u32 gen, __u32 dir, __u32 ifindex, __u64 v6)
{
	struct pol_walk w;
	__u32 g = gen & 1, d = dir & 1;
	struct xdpctl_pol_hdr *h = bpf_map_lookup_elem(&xdpctl_phdr, &g);
	int r;

	if (pol_has(XDPCTL_PATH_FIELD) && h && p &&
	    ((h->dir[d].decide & XDPCTL_POL_DECIDE_SHAPE_MASK) == XDPCTL_POL_DECIDE_SRC ||
	     (h->dir[d].decide & XDPCTL_POL_DECIDE_SHAPE_MASK) == XDPCTL_POL_DECIDE_DST))
		return pol_field_decide(p, g, d, &h->dir[d],
					h->default_action == XDPCTL_ACT_DROP ? XDPCTL_ACT_DROP : XDPCTL_ACT_PASS, v6);
	/* The tables stay complete whatever shape decides (abi: xdpctl_pol_dir_hdr.decide), so
	 * they decide any generation a program has no shorter path for. */
	if (!pol_has(XDPCTL_PATH_TABLES))
		return h && h->default_action == XDPCTL_ACT_DROP ? XDPCTL_ACT_DROP : XDPCTL_ACT_PASS;
	r = pol_classes(p, gen, dir, ifindex, v6, &w.key);

	if (r & XDPCTL_POL_RETRY)
		return XDPCTL_POL_DECIDE_RETRY | (r & 0xff);
	if (!(r & XDPCTL_POL_WALK))
		return r & 0xff;
	return pol_walk(&w, gen, dir, (__u32)r & 0xff);
}

/*
 * Classes, then the anchor lists (XDPCTL_POL_DECIDE_ANCHORS): a global function apart from
 * xdpctl_pol_decide(), whose walk state would leave no stack for the scans' frame (BPF allows
 * 512 bytes along a call chain). Returns as xdpctl_pol_decide() does.
 */
__noinline long xdpctl_pol_anc_decide(const struct pkt *p, __u32 gen, __u32 dir, __u32 ifindex, __u64 v6)
{
	struct pol_key k = {}; /* clang 14 spills an undefined register otherwise, which the verifier refuses */
	int r = pol_classes(p, gen, dir, ifindex, v6, &k);

	if (r & XDPCTL_POL_RETRY)
		return XDPCTL_POL_DECIDE_RETRY | (r & 0xff);
	if (!(r & XDPCTL_POL_WALK))
		return r & 0xff;
	return pol_anc_decide(p, XDPCTL_POL_GD(gen & 1, dir & 1), &k, (__u32)r & 0xff);
}

/* Generation `gen`'s verdict by the path its header names: the anchor lists, else
 * xdpctl_pol_decide() (one field, the tables). */
static __always_inline long pol_decide(const struct pkt *p, __u32 gen, __u32 dir, __u32 ifindex)
{
	__u32 g = gen & 1;
	struct xdpctl_pol_hdr *h = bpf_map_lookup_elem(&xdpctl_phdr, &g);

	if (pol_has(XDPCTL_PATH_TABLES) && h &&
	    (h->dir[dir & 1].decide & XDPCTL_POL_DECIDE_SHAPE_MASK) == XDPCTL_POL_DECIDE_ANCHORS)
		return xdpctl_pol_anc_decide(p, gen, dir, ifindex, pol_pre_classes(p, gen, dir));
	return xdpctl_pol_decide(p, gen, dir, ifindex, pol_pre_classes(p, gen, dir));
}

/* Whether the flow cache is used (abi: XDPCTL_FLOW_CACHE_*). */
const volatile __u32 cfg_flow_cache = XDPCTL_FLOW_CACHE_ON;

/*
 * The flow cache (abi: struct xdpctl_pol_flow). The key is read from the parsed packet where
 * it is needed rather than kept: classify()'s stack is what the call chain below it leaves.
 *
 * Each field is read at the width the parser wrote it, through pol_field(): clang would
 * otherwise merge neighbouring fields into one wider load (l3_proto, l4_proto and n_vlans as a
 * u32; an IPv4 address and the zeroes after it as a u64), which the CPU cannot forward from
 * the narrower stores still in its store buffer: the load waits for them to reach the cache
 * (perf on a flow-cache hit: ~15 % of the program's samples on those loads).
 */
static __always_inline __u64 pol_field(__u64 v)
{
	asm volatile("" : "+r"(v));  /* no instruction: only keeps the load as it is */
	return v;
}

static __always_inline __u64 pol_flow_w0(const struct pkt *p)
{
	return pol_field(p->l3_proto) | pol_field(p->l4_proto) << 16 | pol_field(p->n_vlans) << 24 |
	       pol_field(p->vlan_id[0]) << 32 | pol_field(p->frag) << 48 | pol_field(p->tcp_flags) << 56;
}

static __always_inline __u64 pol_flow_w1(const struct pkt *p)
{
	return pol_field(p->sport) | pol_field(p->dport) << 16;
}

/* Words 2k and 2k + 1 of an address as the key's u64 (little-endian, as a u64 load of them). */
static __always_inline __u64 pol_flow_aw(const __u32 *a, int k)
{
	return pol_field(a[2 * k]) | pol_field(a[2 * k + 1]) << 32;
}

/* The packet's slot: a multiplicative hash of its key. */
static __always_inline __u32 pol_flow_slot(const struct pkt *p, __u32 iif_dir)
{
	__u64 h = pol_flow_w0(p) * 0xff51afd7ed558ccdULL ^ pol_flow_w1(p) ^ pol_flow_aw(p->saddr, 0) ^
		  (pol_flow_aw(p->saddr, 1) << 1) ^ (pol_flow_aw(p->daddr, 0) << 3) ^
		  (pol_flow_aw(p->daddr, 1) << 5) ^ iif_dir;

	h *= 0x9e3779b97f4a7c15ULL;
	return (__u32)(h >> 32) & (XDPCTL_POL_FLOW_SLOTS - 1);
}

static __always_inline int pol_flow_match(const struct xdpctl_pol_flow *f, const struct pkt *p, __u64 stamp,
					  __u32 iif_dir)
{
	return f->stamp == stamp && f->iif_dir == iif_dir &&
	       !((f->key[0] ^ pol_flow_w0(p)) | (f->key[1] ^ pol_flow_w1(p)) | (f->key[2] ^ pol_flow_aw(p->saddr, 0)) |
		 (f->key[3] ^ pol_flow_aw(p->saddr, 1)) | (f->key[4] ^ pol_flow_aw(p->daddr, 0)) |
		 (f->key[5] ^ pol_flow_aw(p->daddr, 1)));
}

static __always_inline void pol_flow_fill(struct xdpctl_pol_flow *f, const struct pkt *p, __u64 stamp, __u32 iif_dir,
					  __u32 rank1)
{
	f->key[0] = pol_flow_w0(p);
	f->key[1] = pol_flow_w1(p);
	f->key[2] = pol_flow_aw(p->saddr, 0);
	f->key[3] = pol_flow_aw(p->saddr, 1);
	f->key[4] = pol_flow_aw(p->daddr, 0);
	f->key[5] = pol_flow_aw(p->daddr, 1);
	f->stamp = stamp;
	f->iif_dir = iif_dir;
	f->rank1 = rank1;
}

/* A hit on the record of its deciding rule: that rule decides again, counted as the walk
 * counts it. */
static __always_inline __u32 pol_flow_take(const struct xdpctl_rule_rec *rec, const struct pkt *p, __u32 *rule_id)
{
	pol_count(&rec->ctr_slot, p->len);
	*rule_id = rec->id;
	return (rec->action == XDPCTL_ACT_PASS ? XDPCTL_ACT_PASS : XDPCTL_ACT_DROP) | pol_log(rec);
}

/*
 * Whether this program looks the flow cache up before it reads the policy's header: one whose
 * every generation with rules is decided by the anchor lists or the tables (no small, no
 * one-field path: lib/attach/datapath_paths.h), so the header can wait for a miss. An entry
 * is only ever filled under such a generation with rules (classify()), and its stamp names the
 * generation, so a match needs neither its shape nor its rule count; an entry of the default
 * (rank + 1 = 0) leaves the default to the header. A program that also has the small or the
 * one-field path reads the header first, so their packets never pay the hash.
 */
/* On a miss, the stamp read before the decision goes into the slot now (no stack to keep it
 * across the call), with a key no packet has (n_vlans is at most 2) until the fill: `set add`
 * in place (lib/policy/set_in_place.cpp) changes a set's table and then moves `commits` with
 * no flip, so an entry of a packet that read the table before must not carry the count after.
 * A slot is per CPU, and a CPU runs one packet at a time. A miss whose decision is not cached
 * (count or rate-limit rules on the way, or no cacheable shape) leaves the slot empty. */
static __always_inline void pol_flow_hold_stamp(struct xdpctl_pol_flow *f, __u64 stamp)
{
	if (f) {
		f->stamp = stamp;
		f->key[0] = ~0ULL;
	}
}

static __always_inline int pol_flow_first(void)
{
	/* cfg_paths first, in one test: the verifier deletes the branches, not the loads of the
	 * read-only values before them, which the small path would run */
	return (cfg_paths & (XDPCTL_PATH_TABLES | XDPCTL_PATH_SMALL | XDPCTL_PATH_FIELD)) == XDPCTL_PATH_TABLES &&
	       cfg_flow_cache == XDPCTL_FLOW_CACHE_ON && !cfg_explain;
}

/*
 * The edge rule (abi: XDPCTL_POL_DECIDE_EDGE) of generation gen, direction dir, if it is
 * the direction's first rule (`first`) or its last (else): the packet's address in the set's
 * own table; a member takes the edge's record, as a ranked rule's (counted, logged, its
 * rank + 1 kept for the flow cache), as xdpctl_pol_decide() gives it. 0: not decided (no such
 * edge, not a member, not IP); XDPCTL_POL_DECIDE_RETRY with the default: the table is missing,
 * as every lookup's. Global, so its stack is not the program's (which the walk's call chain
 * fills).
 */
__noinline long xdpctl_pol_edge(const struct pkt *p, __u32 gen, __u32 dir, __u32 first)
{
	__u32 g = gen & 1, d = dir & 1, decide, slot, v6;
	struct xdpctl_pol_hdr *h;
	struct xdpctl_rule_rec *rec;
	const __u32 *a;
	long v;

	if (!p)
		return 0;
	v6 = p->l3_proto == ETH_P_IPV6;
	if (!v6 && p->l3_proto != ETH_P_IP)
		return 0;
	h = bpf_map_lookup_elem(&xdpctl_phdr, &g); /* inlined */
	if (!h)
		return 0;
	decide = h->dir[d].decide;
	if (!(decide & XDPCTL_POL_DECIDE_EDGE) || !(decide & XDPCTL_POL_DECIDE_EDGE_FIRST) != !first)
		return 0;
	slot = (decide >> XDPCTL_POL_DECIDE_EDGE_SLOT_SHIFT) & (XDPCTL_POL_SET_SLOTS - 1);
	a = decide & XDPCTL_POL_DECIDE_EDGE_DST ? p->daddr : p->saddr;
	if (v6)
		v = xdpctl_pol_tab6(1, slot, ((__u64)bpf_ntohl(a[0]) << 32) | bpf_ntohl(a[1]),
				    ((__u64)bpf_ntohl(a[2]) << 32) | bpf_ntohl(a[3]));
	else
		v = pol_tab4(&xdpctl_psl1, &xdpctl_pset, slot, bpf_ntohl(a[0]), 0);
	if (v < 0)
		return XDPCTL_POL_DECIDE_RETRY |
		       (h->default_action == XDPCTL_ACT_DROP ? XDPCTL_ACT_DROP : XDPCTL_ACT_PASS);
	if (!pol_member(v))
		return 0;
	rec = pol_rank_rec(XDPCTL_POL_EDGE_RANK + 1, g, d);
	if (!rec || !rec->id)
		return 0;
	if (!cfg_explain)
		pol_count(&rec->ctr_slot, p->len);
	return ((long)(XDPCTL_POL_EDGE_RANK + 1) << XDPCTL_POL_DECIDE_RANK_SHIFT) | ((long)rec->id << 8) |
	       (rec->action == XDPCTL_ACT_PASS ? XDPCTL_ACT_PASS : XDPCTL_ACT_DROP) | pol_log(rec);
}

/* The first rule's decision when it is an edge rule and the packet a member of its set; 0: the
 * walk decides. `decide`: the direction's header word, which says whether to look (no call
 * for a policy without a first edge). */
static __always_inline long pol_head(const struct pkt *p, __u32 gen, __u32 dir, __u32 decide)
{
	const __u32 head = XDPCTL_POL_DECIDE_EDGE | XDPCTL_POL_DECIDE_EDGE_FIRST;

	return pol_has(XDPCTL_PATH_EDGE) && (decide & head) == head ? xdpctl_pol_edge(p, gen, dir, 1) : 0;
}

/* Decision `r` of pol_decide() or xdpctl_pol_decide() with the last rule applied where the
 * default decided (no rule id, no retry), when it is an edge rule: a packet a ranked rule
 * decides pays nothing. */
static __always_inline long pol_tail(const struct pkt *p, __u32 gen, __u32 dir, long r)
{
	long t;

	if (!pol_has(XDPCTL_PATH_EDGE) || (r & XDPCTL_POL_DECIDE_RETRY) || (__u32)(r >> 8))
		return r;
	t = xdpctl_pol_edge(p, gen, dir, 0);
	if (t & XDPCTL_POL_DECIDE_RETRY)
		return r | XDPCTL_POL_DECIDE_RETRY;
	return t ? t | (r & XDPCTL_POL_DECIDE_NOCACHE) : r;
}

/*
 * The policy's verdict for a parsed packet: XDPCTL_ACT_PASS or XDPCTL_ACT_DROP, with
 * XDPCTL_POL_EMIT set when the deciding rule sends an event (lib/bpf/trace.h), and in
 * *rule_id the deciding rule (0: the default, or no policy). `dir` is 0 (ingress) or 1
 * (egress); `ctx` is the program's context at `hook`, whose interface --iif matches. Counts
 * the deciding rule and every count/conforming rate-limit rule on the way (in explain mode:
 * notes them, counts nothing).
 * With no policy committed it costs one inlined array lookup and touches nothing; in a
 * program loaded with no policy path, nothing at all.
 *
 * Generations (lib/policy/policy_maps.cpp): a packet reads gen once and everything it uses
 * follows from it. A commit flips gen, then frees the old generation's address tables
 * (each slot then holds a one-line placeholder) and waits a grace period before it rewrites
 * anything else of the old generation. So a packet that read the old gen sees the old
 * generation whole, or finds a table missing before it has counted anything: the flip has
 * happened, and it starts again under the new gen. A table missing without a flip (never
 * written: a bug) gives the default action.
 */
static __always_inline __u32 classify(const struct pkt *p, __u32 dir, const void *ctx, __u32 hook,
					__u32 *rule_id)
{
	__u32 zero = 0, gen, g, again, def, ifindex, shape, slot, cache;
	struct xdpctl_pol_ctl *ctl = bpf_map_lookup_elem(&xdpctl_pctl, &zero);
	struct xdpctl_rule_rec *rec;
	struct xdpctl_pol_flow *f;
	__u64 stamp;
	struct xdpctl_pol_hdr *h;
	long r;

	*rule_id = 0;
	/* A program loaded for no policy, or one whose default passes and has no rules, reads
	 * nothing (abi: XDPCTL_PATH_DEFAULT). */
	if (!pol_has(XDPCTL_PATHS_POLICY))
		return XDPCTL_ACT_PASS;
	if (!ctl || !ctl->installed)
		return XDPCTL_ACT_PASS;
	gen = *(volatile __u32 *)&ctl->gen;
	g = gen & 1;
	if (pol_flow_first()) {
		/* A hit reads the control, the slot, the rule's record and its counter: no header. */
		ifindex = pol_iif_key(ctx, hook);
		stamp = *(volatile __u64 *)&ctl->commits << 1 | g;
		slot = pol_flow_slot(p, ifindex | (dir & 1) << 31);
		f = bpf_map_lookup_elem(&xdpctl_pflow, &slot); /* inlined */
		if (f && pol_flow_match(f, p, stamp, ifindex | (dir & 1) << 31)) {
			rec = pol_rank_rec(f->rank1, g, dir & 1);
			if (rec)
				return pol_flow_take(rec, p, rule_id);
			/* rank + 1 = 0: the default decided */
			h = bpf_map_lookup_elem(&xdpctl_phdr, &g);
			return h && h->default_action == XDPCTL_ACT_DROP ? XDPCTL_ACT_DROP : XDPCTL_ACT_PASS;
		}
		pol_flow_hold_stamp(f, stamp);
	}
	h = bpf_map_lookup_elem(&xdpctl_phdr, &g);
	if (!h)
		return XDPCTL_ACT_PASS;
	def = h->default_action == XDPCTL_ACT_DROP ? XDPCTL_ACT_DROP : XDPCTL_ACT_PASS;
	if (!h->dir[dir & 1].n_rules)
		return def;
	/* A small policy: no tables, so nothing is ever missing and no retry. */
	if (pol_has(XDPCTL_PATH_SMALL) && h->dir[dir & 1].decide == XDPCTL_POL_DECIDE_SMALL) {
		r = pol_small_decide(p, XDPCTL_POL_GD(g, dir & 1), def);
		*rule_id = (__u32)(r >> 8);
		return (__u32)(r & 0xff);
	}
	/* Neither of the paths below: no call, no IPv6 lookup (a program loaded for a policy
	 * that never gets here). */
	if (!pol_has(XDPCTL_PATH_FIELD | XDPCTL_PATH_TABLES))
		return def;
	ifindex = pol_iif_key(ctx, hook);
	/* The flow cache: generations the anchor lists or the tables decide, in a program that
	 * has them, never in explain. */
	shape = h->dir[dir & 1].decide & XDPCTL_POL_DECIDE_SHAPE_MASK;
	cache = cfg_flow_cache != XDPCTL_FLOW_CACHE_OFF && pol_has(XDPCTL_PATH_TABLES) && !cfg_explain &&
		(shape == XDPCTL_POL_DECIDE_TABLES || shape == XDPCTL_POL_DECIDE_ANCHORS);
	if (cache && !pol_flow_first()) {
		stamp = *(volatile __u64 *)&ctl->commits << 1 | g;
		slot = pol_flow_slot(p, ifindex | (dir & 1) << 31);
		f = bpf_map_lookup_elem(&xdpctl_pflow, &slot); /* inlined */
		if (cfg_flow_cache == XDPCTL_FLOW_CACHE_ON && f && pol_flow_match(f, p, stamp, ifindex | (dir & 1) << 31)) {
			/* rank + 1 = 0: the default decided */
			rec = pol_rank_rec(f->rank1, g, dir & 1);
			if (!rec)
				return def;
			return pol_flow_take(rec, p, rule_id);
		}
		pol_flow_hold_stamp(f, stamp);
	}
	/* A program of the one-field path alone, an IPv4 packet whose field needs no class found
	 * before (not split, or split by one set alone): straight to the decision, without
	 * pol_decide()'s two more reads of the header. */
	r = pol_head(p, gen, dir, h->dir[dir & 1].decide);
	if (!r && (cfg_paths & (XDPCTL_PATH_FIELD | XDPCTL_PATH_TABLES)) == XDPCTL_PATH_FIELD &&
	    p->l3_proto == ETH_P_IP && !(pol_split_fields(&h->dir[dir & 1]) & ~pol_split_one_fields(&h->dir[dir & 1])))
		r = pol_tail(p, gen, dir, xdpctl_pol_decide(p, gen, dir, ifindex, 0));
	else if (!r)
		r = pol_tail(p, gen, dir, pol_decide(p, gen, dir, ifindex));
	/* With the stamp put in the slot before (above, or on the cache-first miss): after a flip
	 * meanwhile the entry pairs the old count with the old gen, whose commit is over, and is
	 * never taken. */
	if (cache && !(r & (XDPCTL_POL_DECIDE_RETRY | XDPCTL_POL_DECIDE_NOCACHE))) {
		slot = pol_flow_slot(p, ifindex | (dir & 1) << 31);
		f = bpf_map_lookup_elem(&xdpctl_pflow, &slot);
		if (f)
			pol_flow_fill(f, p, f->stamp, ifindex | (dir & 1) << 31,
				      (__u32)(r >> XDPCTL_POL_DECIDE_RANK_SHIFT) & 0x3fff);
	}
	if (r & XDPCTL_POL_DECIDE_RETRY) {
		/* A full barrier (rare path): the new gen is read after the missing table was seen,
		 * as the commit wrote them in the other order. Weakly ordered CPUs need it. The
		 * control is looked up again (inlined): kept across the call, it took a stack slot
		 * that the call chain does not have. */
		ctl = bpf_map_lookup_elem(&xdpctl_pctl, &zero);
		if (!ctl)
			return (__u32)r & 0xff;
		__sync_fetch_and_add(&ctl->commits, 0);
		again = *(volatile __u32 *)&ctl->gen;
		if (again == gen)
			return (__u32)r & 0xff;
		gen = again;
		/* (the new generation's header unread: the edge function reads it) */
		r = pol_head(p, gen, dir, XDPCTL_POL_DECIDE_EDGE | XDPCTL_POL_DECIDE_EDGE_FIRST);
		if (!r)
			r = pol_tail(p, gen, dir, pol_decide(p, gen, dir, ifindex));
		if (r & XDPCTL_POL_DECIDE_RETRY)
			return (__u32)r & 0xff;
	}
	*rule_id = (__u32)(r >> 8);
	return (__u32)(r & 0xff);
}

#endif
