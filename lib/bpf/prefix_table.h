/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Longest-prefix lookups in a prefix table (layout: lib/abi/xdpctl_abi.h, the prefix-table
 * section; design and costs: docs/prefix-sets.md). `table` is the table's array map: an
 * inner map fetched from an ARRAY_OF_MAPS slot (the datapath, so one map update swaps a
 * generation), or a plain array map (the benchmark's inlined reference point).
 *
 * What a lookup costs is its count of dependent memory reads, so every step below is one
 * array lookup of one 64-byte line: IPv4 takes 1-3 in a row; IPv6 takes 1 when the
 * address's /16 holds no prefix longer than /16, otherwise 2 plus about 1 per probe.
 */
#ifndef XDPCTL_BPF_PREFIX_TABLE_H
#define XDPCTL_BPF_PREFIX_TABLE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi/xdpctl_abi.h"

/*
 * The inner map of an ARRAY_OF_MAPS that holds prefix tables. BPF_F_INNER_MAP lets each
 * generation have its own size (memory follows the prefixes), at a price: the verifier
 * cannot inline lookups into a map whose size it does not know, so each line read is a
 * direct call to array_map_lookup_elem (docs/prefix-sets.md has the measured cost).
 * BPF_F_MMAPABLE lets the builder fill a generation with plain stores.
 * The value is given by size, not type: clang emits a type reached only through the outer
 * map's definition as a forward declaration, whose size libbpf cannot read.
 */
struct xdpctl_pfx_table_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE | BPF_F_INNER_MAP);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, XDPCTL_PFX_LINE_BYTES);
};

static __always_inline union xdpctl_pfx_line *xdpctl_pfx_line(void *table, __u32 line)
{
	return bpf_map_lookup_elem(table, &line);
}

/* Word `word` of the table, or `missing` when the table has no such line. */
static __always_inline __u32 xdpctl_pfx_word_or(void *table, __u32 word, __u32 missing)
{
	union xdpctl_pfx_line *l = xdpctl_pfx_line(table, word / XDPCTL_PFX_LINE_WORDS);

	return l ? l->word[word & (XDPCTL_PFX_LINE_WORDS - 1)] : missing;
}

/* Past the first line a lookup reads, a missing line means a table shorter than its own
 * references say: treat as no match. */
static __always_inline __u32 xdpctl_pfx_word(void *table, __u32 word)
{
	return xdpctl_pfx_word_or(table, word, XDPCTL_PFX_NONE);
}

/* The word index in chunk `ref` for the next 8 address bits. */
static __always_inline __u32 xdpctl_pfx_chunk_at(__u32 ref, __u32 byte)
{
	return ((ref & XDPCTL_PFX_CHUNK_MASK) * XDPCTL_PFX_CHUNK_WORDS) | (byte & 0xff);
}

static __always_inline __u32 xdpctl_pfx_chunk_word(void *table, __u32 ref, __u32 byte)
{
	return xdpctl_pfx_word(table, xdpctl_pfx_chunk_at(ref, byte));
}

/*
 * IPv4, DIR-16-8-8: /0-/16 are expanded into level 1, /17-/24 into a chunk under their /16,
 * /25-/32 into a chunk under their /24, so the entry reached is already the longest match.
 * `addr` is in host order. Returns the leaf value (XDPCTL_PFX_NONE, XDPCTL_PFX_EXCEPTED or
 * the caller's value).
 */
/* The value of the last address bits `low` in the sparse line `ref`: a sparse chunk's last 8
 * (layout: XDPCTL_PFX_SPARSE), or with `wide` (a constant) a sparse /16's last 16
 * (XDPCTL_PFX_SPARSE16_STARTS). Its run is how many run starts are <= low, counted without a
 * branch (start - low - 1 is negative, bit 31 set, exactly when start <= low), so every
 * address costs the same ~50 instructions. `missing` when the line is not there. */
static __always_inline __u32 xdpctl_pfx_runs_word(void *table, __u32 ref, __u32 low, const int wide, __u32 missing)
{
	union xdpctl_pfx_line *l = xdpctl_pfx_line(table, ref & XDPCTL_PFX_CHUNK_MASK);
	const int starts = wide ? XDPCTL_PFX_SPARSE16_STARTS : XDPCTL_PFX_SPARSE_STARTS;
	const __u32 runs = wide ? XDPCTL_PFX_SPARSE16_RUNS : XDPCTL_PFX_SPARSE_RUNS;
	__u32 run = 0;

	if (!l)
		return missing;
	low &= wide ? 0xffff : 0xff;
#pragma unroll
	for (int k = 0; k < starts; k++)
		run += ((wide ? (__u32)l->half[k] : (__u32)l->byte[k]) - low - 1) >> 31;
	if (run >= runs)  /* never; tells the verifier the word is in the line */
		return XDPCTL_PFX_NONE;
	return l->word[(wide ? XDPCTL_PFX_SPARSE16_VALUE_WORD : XDPCTL_PFX_SPARSE_VALUE_WORD) + run] &
	       XDPCTL_PFX_VALUE_MASK;
}

/* Below level 1: `e` is the level-1 word of `addr`, a reference: to a chunk, or (a policy's
 * table: `sparse16`, a constant) to a sparse /16's line. XDPCTL_PFX_MISSING when `table`
 * is a freed slot's placeholder (level 1 is kept apart, so only this read tells). */
static __always_inline __u32 xdpctl_pfx4_lookup_below_l1(void *table, __u32 e, __u32 addr, const int sparse16)
{
	if (sparse16 && (e & XDPCTL_PFX_SPARSE))  /* a freed slot's placeholder has no such line */
		return xdpctl_pfx_runs_word(table, e, addr, 1, XDPCTL_PFX_MISSING);
	e = xdpctl_pfx_word_or(table, xdpctl_pfx_chunk_at(e, addr >> 8), XDPCTL_PFX_MISSING);
	if (!(e & XDPCTL_PFX_REF) || e == XDPCTL_PFX_MISSING)  /* the compiler sends a missing line here */
		return e;
	/* The last level holds leaves only; the mask keeps a corrupt REF from leaking out. */
	if (e & XDPCTL_PFX_SPARSE)
		return xdpctl_pfx_runs_word(table, e, addr, 0, XDPCTL_PFX_NONE);
	return xdpctl_pfx_chunk_word(table, e, addr) & XDPCTL_PFX_VALUE_MASK;
}

static __always_inline __u32 xdpctl_pfx4_lookup(void *table, __u32 addr)
{
	__u32 e = xdpctl_pfx_word(table, XDPCTL_PFX4_L1_WORD + (addr >> 16));

	if (!(e & XDPCTL_PFX_REF))
		return e;
	return xdpctl_pfx4_lookup_below_l1(table, e, addr, 1);
}

/* The address cut to len (17..128), in place; shifts stay within 0..63. */
static __always_inline void xdpctl_pfx6_cut(__u64 *hi, __u64 *lo, __u32 len)
{
	if (len <= 64) {
		*hi &= ~0ULL << ((64 - len) & 63);
		*lo = 0;
	} else {
		*lo &= ~0ULL << ((128 - len) & 63);
	}
}

/* The bucket's entry for (hi, lo) cut to len, or NULL. One test per slot, no early-outs on
 * single fields: the slots sit in one line, and a branch mispredicted costs more. */
static __always_inline struct xdpctl_pfx6_slot *
xdpctl_pfx6_match(union xdpctl_pfx_line *b, __u64 hi, __u64 lo, __u32 len)
{
	if (!b)
		return NULL;
	if (len <= 64) {
		if (!((b->slot[0].hi ^ hi) | (b->slot[0].len ^ len)))
			return &b->slot[0];
		if (!((b->slot[1].hi ^ hi) | (b->slot[1].len ^ len)))
			return &b->slot[1];
		if (!((b->slot[2].hi ^ hi) | (b->slot[2].len ^ len)))
			return &b->slot[2];
		if (!((b->slot[3].hi ^ hi) | (b->slot[3].len ^ len)))
			return &b->slot[3];
		return NULL;
	}
	/* A long entry starts at an even slot; the next one holds its low half. */
	if (!((b->slot[0].hi ^ hi) | (b->slot[0].len ^ len) | (b->slot[1].hi ^ lo)))
		return &b->slot[0];
	if (!((b->slot[2].hi ^ hi) | (b->slot[2].len ^ len) | (b->slot[3].hi ^ lo)))
		return &b->slot[2];
	return NULL;
}

/*
 * One probe of the hash: is (the address cut to len) an entry? Cuckoo hashing gives every
 * entry two buckets, but the builder puts it in the first when it can and flags the first
 * when it could not: most probes, hits and misses alike, read one line.
 */
static __always_inline struct xdpctl_pfx6_slot *
xdpctl_pfx6_probe(void *table, __u32 nbuckets, __u64 hi, __u64 lo, __u32 len)
{
	union xdpctl_pfx_line *b;
	struct xdpctl_pfx6_slot *s;
	__u64 h;

	xdpctl_pfx6_cut(&hi, &lo, len);
	h = xdpctl_pfx6_hash(hi, lo, len);
	b = xdpctl_pfx_line(table, XDPCTL_PFX6_BUCKET_LINE + xdpctl_pfx6_bucket((__u32)h, nbuckets));
	s = xdpctl_pfx6_match(b, hi, lo, len);
	if (s || !b || !(b->slot[0].flags & XDPCTL_PFX6_F_DISPLACED))
		return s;
	b = xdpctl_pfx_line(table, XDPCTL_PFX6_BUCKET_LINE + xdpctl_pfx6_bucket((__u32)(h >> 32), nbuckets));
	return xdpctl_pfx6_match(b, hi, lo, len);
}

/*
 * IPv6: level 1 (DIR-16) settles every address whose /16 holds no longer prefix in one read.
 * The rest is Waldvogel's binary search on prefix lengths (SIGCOMM 1997): probe the hash for
 * the address cut to the tree node's length; a hit (a prefix, or a marker a longer prefix
 * left on its search path) carries the best match precomputed for those bits and sends the
 * search to longer lengths, a miss sends it to shorter ones.
 *
 * Each entry (and level 1 for its /16) also knows the shortest and longest prefix below it:
 * a node longer than the longest cannot hit, so the search turns shorter without probing;
 * a node shorter than the shortest holds at most a marker whose answer the search already
 * has, so it turns longer; an entry with nothing below ends the search. Level 1 also maps
 * which 64ths of its /16 hold anything. With the tree weighted by prefix counts, a
 * table shaped like a real one averages about two probes, each one line.
 * `hi`/`lo` are the address halves in host order.
 */
static __always_inline __u32 xdpctl_pfx6_lookup(void *table, __u64 hi, __u64 lo)
{
	__u32 word = XDPCTL_PFX6_L1_WORD + XDPCTL_PFX6_L1_STRIDE * (__u32)(hi >> 48);
	__u32 e, bounds, best, shortest, longest, nbuckets, unit, node = 1, pos, tree_line, len, i, w;
	union xdpctl_pfx_line *l1, *tree;
	struct xdpctl_pfx6_slot *s;
	__u64 map;

	l1 = xdpctl_pfx_line(table, word / XDPCTL_PFX_LINE_WORDS);
	if (!l1)
		return XDPCTL_PFX_MISSING;  /* a freed slot's placeholder */
	/* The entry sits in one line: its word index is a multiple of 4. */
	w = word & (XDPCTL_PFX_LINE_WORDS - XDPCTL_PFX6_L1_STRIDE);
	e = l1->word[w];
	if (!(e & XDPCTL_PFX_REF))
		return e;
	best = e & XDPCTL_PFX_VALUE_MASK;
	map = (__u64)l1->word[w + 3] << 32 | l1->word[w + 2];
	if (!((map >> xdpctl_pfx6_bits_after(hi, lo, 16, 6)) & 1))
		return best;
	bounds = l1->word[w + 1];
	shortest = bounds & 0xff;
	longest = (bounds >> 8) & 0xff;

	tree_line = XDPCTL_PFX6_TREE_LINE;
	tree = xdpctl_pfx_line(table, tree_line);
	if (!tree)
		return best;
	nbuckets = tree->word[0];
	unit = tree->byte[XDPCTL_PFX6_TREE_POS(0)];

	/* Every step goes down one level of the tree. */
	for (i = 0; i < XDPCTL_PFX6_TREE_DEPTH; i++) {
		/*
		 * Verifier workaround: a node number computed from constants is a constant to
		 * the verifier, so it would walk each of the tree's paths separately, with every
		 * probe's branches, past its 1M-instruction budget. Times the 1 the builder
		 * stores at node 0's place, it is an unknown in [0, 127]: the paths merge.
		 */
		node = (node * unit) & (XDPCTL_PFX6_TREE_NODES - 1);
		pos = XDPCTL_PFX6_TREE_POS(node);
		if (XDPCTL_PFX6_TREE_LINE + pos / XDPCTL_PFX_LINE_BYTES != tree_line) {
			tree_line = XDPCTL_PFX6_TREE_LINE + pos / XDPCTL_PFX_LINE_BYTES;
			tree = xdpctl_pfx_line(table, tree_line);
			if (!tree)
				break;
		}
		len = tree->byte[pos & (XDPCTL_PFX_LINE_BYTES - 1)];
		if (!len)
			break;
		if (len > longest) {
			node = 2 * node;
			continue;
		}
		if (len < shortest) {
			node = 2 * node + 1;
			continue;
		}
		s = xdpctl_pfx6_probe(table, nbuckets, hi, lo, len);
		if (!s) {
			node = 2 * node;
			continue;
		}
		best = s->value;
		if (!s->max_below)
			break;
		shortest = s->min_below;
		longest = s->max_below;
		node = 2 * node + 1;
	}
	return best & XDPCTL_PFX_VALUE_MASK;
}

#endif
