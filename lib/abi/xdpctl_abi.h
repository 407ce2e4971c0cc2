/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one header shared by the BPF programs (xdp/, tc/) and the C++ library (lib/).
 * Every struct, enum and limit that crosses the kernel/user boundary lives here and
 * nowhere else. Plain __u* types with explicit padding so both compilers agree on the
 * layout; the static_asserts at the bottom catch a change that breaks that.
 */
#ifndef XDPCTL_ABI_H
#define XDPCTL_ABI_H

#include <linux/types.h>

/* Where a program runs. Indexes the per-interface stats map. */
enum xdpctl_hook {
	XDPCTL_HOOK_XDP = 0,
	XDPCTL_HOOK_TC_INGRESS = 1,
	XDPCTL_HOOK_TC_EGRESS = 2,
	XDPCTL_HOOK_MAX,
};

/*
 * Counter slots, one array per hook. Groups:
 *   L3 (exactly one per packet), L4 (exactly one per packet with a parsed IP header),
 *   verdict (exactly one per packet), malformed reason (at most one per packet).
 * Append new slots only before XDPCTL_CNT_MAX: the numbers are part of the pinned
 * map layout, and a reload keeps the counters of a running interface.
 */
enum xdpctl_counter {
	/* L3: what the Ethernet type (after VLAN tags) says */
	XDPCTL_CNT_L3_IPV4 = 0,
	XDPCTL_CNT_L3_IPV6,
	XDPCTL_CNT_L3_ARP,
	XDPCTL_CNT_L3_OTHER,
	/* L4: counted for every packet whose IP header parsed */
	XDPCTL_CNT_L4_TCP,
	XDPCTL_CNT_L4_UDP,
	XDPCTL_CNT_L4_ICMP,
	XDPCTL_CNT_L4_ICMPV6,
	XDPCTL_CNT_L4_FRAGMENT, /* non-first IPv4/IPv6 fragment: no L4 header */
	XDPCTL_CNT_L4_OTHER,
	/* verdict: what the program returned */
	XDPCTL_CNT_VERDICT_PASS,
	XDPCTL_CNT_VERDICT_DROP,
	/* malformed frames, by the first reason found */
	XDPCTL_CNT_BAD_ETH_TRUNCATED,   /* shorter than an Ethernet header */
	XDPCTL_CNT_BAD_VLAN_TRUNCATED,  /* VLAN tag cut off */
	XDPCTL_CNT_BAD_VLAN_TOO_MANY,   /* more than XDPCTL_MAX_VLANS tags */
	XDPCTL_CNT_BAD_IPV4_TRUNCATED,  /* fixed IPv4 header or its options cut off */
	XDPCTL_CNT_BAD_IPV4_HDR,        /* version != 4 or IHL < 5 */
	XDPCTL_CNT_BAD_IPV4_LENGTH,     /* total length < IHL*4 or > the frame */
	XDPCTL_CNT_BAD_IPV6_TRUNCATED,  /* fixed IPv6 header cut off */
	XDPCTL_CNT_BAD_IPV6_HDR,        /* version != 6 */
	XDPCTL_CNT_BAD_IPV6_LENGTH,     /* payload length > the frame */
	XDPCTL_CNT_BAD_EXT_TRUNCATED,   /* IPv6 extension header cut off */
	XDPCTL_CNT_BAD_EXT_CHAIN,       /* over XDPCTL_MAX_IPV6_EXT extension headers, or past 4 KiB */
	XDPCTL_CNT_BAD_L4_TRUNCATED,    /* TCP/UDP/ICMP/ICMPv6 header cut off (by the frame or the IP length) */
	XDPCTL_CNT_BAD_TCP_HDR,         /* TCP data offset < 5 or beyond the IP packet */
	XDPCTL_CNT_MAX,
};

#define XDPCTL_CNT_L3_FIRST XDPCTL_CNT_L3_IPV4
#define XDPCTL_CNT_L4_FIRST XDPCTL_CNT_L4_TCP
#define XDPCTL_CNT_VERDICT_FIRST XDPCTL_CNT_VERDICT_PASS
#define XDPCTL_CNT_BAD_FIRST XDPCTL_CNT_BAD_ETH_TRUNCATED

/* Parser bounds: loops in BPF must be bounded, and these are the bounds. */
#define XDPCTL_MAX_VLANS 2
#define XDPCTL_MAX_IPV6_EXT 8

/* What to do with a malformed frame (set at load, rodata). */
enum xdpctl_malformed_action {
	XDPCTL_MALFORMED_PASS = 0, /* let the kernel decide: it drops what it cannot use */
	XDPCTL_MALFORMED_DROP = 1,
};

struct xdpctl_ctr {
	__u64 packets;
	__u64 bytes;
};

/* Value of the per-CPU stats map: one lookup a packet reaches every counter of a hook. */
struct xdpctl_hook_stats {
	struct xdpctl_ctr ctr[XDPCTL_CNT_MAX];
};

/*
 * What xdpctl loaded on an interface, kept in the interface's pinned "meta" map so a
 * later run (status, a repeated load, unload) knows without guessing.
 */
enum xdpctl_hook_mask {
	XDPCTL_HOOKS_XDP = 1u << 0,
	XDPCTL_HOOKS_TC = 1u << 1, /* TC ingress + egress */
};

enum xdpctl_xdp_mode {
	XDPCTL_XDP_MODE_NONE = 0,
	XDPCTL_XDP_MODE_NATIVE = 1,
	XDPCTL_XDP_MODE_SKB = 2,
};

enum xdpctl_tc_attach {
	XDPCTL_TC_NONE = 0,
	XDPCTL_TC_TCX = 1,
	XDPCTL_TC_CLSACT = 2,
};

struct xdpctl_iface_meta {
	__u32 abi_version;    /* XDPCTL_ABI_VERSION when written */
	__u32 ifindex;        /* in the interface's own network namespace */
	__u32 hooks;          /* enum xdpctl_hook_mask */
	__u32 xdp_mode;       /* enum xdpctl_xdp_mode actually attached */
	__u32 tc_attach;      /* enum xdpctl_tc_attach actually used */
	__u32 malformed;      /* enum xdpctl_malformed_action */
	__u32 flags;          /* XDPCTL_META_F_* */
	/* xdpctl's number for the interface, unique among the interfaces it is loaded on in
	 * every namespace (1..XDPCTL_IIF_KEY_MAX): what --iif matches (the programs get it as
	 * rodata, cfg_iif_key), since interface indexes repeat across namespaces. 0: written by
	 * xdpctl 0.1.0, whose programs match the ifindex. */
	__u32 iif_key;
	__u64 loaded_at_ns;   /* CLOCK_REALTIME of the first load */
	__u64 reloaded_at_ns; /* CLOCK_REALTIME of the last load --force, or 0 */
};

/* Interface keys: below the iif table's size (XDPCTL_POL_IIF_ENTRIES); XDPCTL_IIF_KEY_NONE,
 * past it, is the key of a program on no loaded interface (explain's): it matches only
 * rules without --iif. */
#define XDPCTL_IIF_KEY_MAX 4095
#define XDPCTL_IIF_KEY_NONE 0xffffffffu

/* xdpctl created the clsact qdisc (so unload removes it; one it found stays). */
#define XDPCTL_META_F_CREATED_CLSACT (1u << 0)
/* The XDP program is multi-buffer (xdpctl_xdp_mb*, BPF_F_XDP_HAS_FRAGS): an MTU over one buffer. */
#define XDPCTL_META_F_XDP_FRAGS (1u << 1)
/* The XDP program tail-calls the next program (load --next; the interface's `next` pin). */
#define XDPCTL_META_F_XDP_NEXT (1u << 2)

/* 2: prefix tables may hold sparse chunks (XDPCTL_PFX_SPARSE); commits build them only once
 * every loaded program is of version 2 or later.
 * 3: an address field may be split by the sets it names (XDPCTL_POL_DECIDE_SPLIT_SHIFT):
 * commits split fields only once every loaded program is of version 3 or later.
 * 4: a policy's address tables may hold sparse /16s (XDPCTL_PFX_SPARSE16_STARTS); commits
 * build them only once every loaded program is of version 4 or later.
 * 5: a direction's first or last rule may be a set alone decided beside the walk
 * (XDPCTL_POL_DECIDE_EDGE); commits make one only once every loaded program is of version 5
 * or later. */
#define XDPCTL_ABI_VERSION 5

/* clsact fallback: the handle and priority xdpctl's own filters use, so unload finds them. */
#define XDPCTL_TC_HANDLE 0x58d9
#define XDPCTL_TC_PRIORITY 0xc7

#ifdef __cplusplus
static_assert(sizeof(struct xdpctl_ctr) == 16, "xdpctl_ctr layout");
static_assert(sizeof(struct xdpctl_hook_stats) == 16 * XDPCTL_CNT_MAX, "xdpctl_hook_stats layout");
static_assert(sizeof(struct xdpctl_iface_meta) == 48, "xdpctl_iface_meta layout");
#endif

/* ==== prefix tables (prefix sets, issue 4) ==================================================
 * One table generation is ONE BPF array of 64-byte lines (union xdpctl_pfx_line), so that
 * swapping a whole table, IPv4 and IPv6 together, is one update of an ARRAY_OF_MAPS slot.
 * Lookup: lib/bpf/prefix_table.h. Builder: lib/policy/prefix_table.h. Design: docs/prefix-sets.md.
 *
 * Lines, in u32 "words" (word w = line w/16, slot w%16):
 *   line 0            header (struct xdpctl_pfx_header; informational, lookups skip it)
 *   lines 1-3         IPv6: the hash's bucket count, then the search tree over lengths
 *   word 256..        IPv4 level 1: 65,536 entries indexed by the top 16 address bits
 *   word 256+65536..  IPv6 level 1: 65,536 entries of 4 words, indexed the same way
 *   line 20496..      IPv6 hash buckets (two-choice cuckoo hash, four slots a line)
 *   then              IPv4 sparse lines (sparse /24s and /16s), one line each
 *   then              IPv4 chunks of 256 words (8 address bits), 16-line aligned
 *
 * An IPv4 entry is a leaf value, or XDPCTL_PFX_REF | chunk number (the chunk's first word
 * is number * 256). A level-2 entry may instead be XDPCTL_PFX_REF | XDPCTL_PFX_SPARSE | line:
 * the /24's last 8 bits in one line of at most XDPCTL_PFX_SPARSE_RUNS runs (below). An IPv6 level-1 entry is (leaf value, 0, 0, 0), or (XDPCTL_PFX_REF |
 * the best match of length <= 16, shortest | longest << 8 of the longer prefixes below
 * this /16, and a 64-bit map, low word first, of which 64ths of the /16 (address bits
 * 16-21) hold any of them): then the hash is searched.
 */
#define XDPCTL_PFX_REF 0x80000000u
#define XDPCTL_PFX_VALUE_MASK 0x7fffffffu
#define XDPCTL_PFX_CHUNK_MASK 0x00ffffffu
/*
 * A sparse chunk: a /24 holding few longer prefixes (a block list of single addresses puts
 * one /32 in most of the /24s it touches) as one line, not a 1 KiB chunk: 16x less memory
 * and build work for 1M random /32s. The last 8 address bits fall into runs of equal
 * value; bytes 0..11 of the line are the first bytes of runs 1..12 (ascending, 0xff past
 * the last run), words 3..15 the runs' values (past the last run, the last run's value
 * again). The run of byte b is the number of bytes 0..11 that are <= b: branch-free, one
 * line. A /24 with at most XDPCTL_PFX_SPARSE_PREFIXES longer prefixes has at most
 * 2 * that + 1 runs. Only level-2 entries point at one (level 3 holds leaves).
 */
#define XDPCTL_PFX_SPARSE 0x40000000u
#define XDPCTL_PFX_SPARSE_STARTS 12
#define XDPCTL_PFX_SPARSE_RUNS (XDPCTL_PFX_SPARSE_STARTS + 1)
#define XDPCTL_PFX_SPARSE_VALUE_WORD 3
#define XDPCTL_PFX_SPARSE_PREFIXES 6
/*
 * A sparse /16: a level-1 entry XDPCTL_PFX_REF | XDPCTL_PFX_SPARSE | line (a chunk reference
 * never has XDPCTL_PFX_SPARSE) is a /16 holding few longer prefixes as one line, not a 1 KiB
 * chunk and the /24s' lines below it: a policy of single addresses in distinct /16s (a block
 * list's hosts) puts one /32 in most /16s it touches, ~7,700 chunks (7.5 MiB) at 10,000 rules
 * that each commit built and compared. The same runs as a sparse chunk over the last 16
 * address bits: halves 0..9 of the line are the first addresses of runs 1..10 (ascending,
 * 0xffff past the last run), words 5..15 the runs' values (past the last run, the last
 * run's value again). Only in a policy's address tables (sets' tables keep chunks: `set add`
 * patches those in place), and only once every loaded program is of ABI version 4 or later.
 */
#define XDPCTL_PFX_SPARSE16_STARTS 10
#define XDPCTL_PFX_SPARSE16_RUNS (XDPCTL_PFX_SPARSE16_STARTS + 1)
#define XDPCTL_PFX_SPARSE16_VALUE_WORD 5
#define XDPCTL_PFX_SPARSE16_PREFIXES 5

/* Leaf values. A caller's value is 1..XDPCTL_PFX_VALUE_MAX (a set member id, a class id). */
#define XDPCTL_PFX_NONE 0u              /* no prefix covers the address */
#define XDPCTL_PFX_EXCEPTED 0x7fffffffu /* the longest match is an exception (!CIDR) */
#define XDPCTL_PFX_VALUE_MAX 0x7ffffffeu
/* Not a leaf (leaves have bit 31 clear, so as a signed 32-bit value it is -1): the lookup's
 * first line of the table is missing, so the table is a freed slot's one-line placeholder
 * (chunks and IPv6's level 1 lie past line 0). A set's table has no value that says "no
 * table" otherwise: XDPCTL_PFX_NONE is "not a member". */
#define XDPCTL_PFX_MISSING 0xffffffffu

#define XDPCTL_PFX_LINE_BYTES 64
#define XDPCTL_PFX_LINE_WORDS 16
#define XDPCTL_PFX_CHUNK_WORDS 256
#define XDPCTL_PFX_CHUNK_LINES (XDPCTL_PFX_CHUNK_WORDS / XDPCTL_PFX_LINE_WORDS)
#define XDPCTL_PFX_L1_ENTRIES 65536

#define XDPCTL_PFX_HDR_LINE 0
#define XDPCTL_PFX4_L1_WORD 256
#define XDPCTL_PFX6_L1_WORD (XDPCTL_PFX4_L1_WORD + XDPCTL_PFX_L1_ENTRIES)
#define XDPCTL_PFX6_L1_STRIDE 4 /* words per IPv6 level-1 entry */
#define XDPCTL_PFX6_BUCKET_LINE \
	((XDPCTL_PFX6_L1_WORD + XDPCTL_PFX6_L1_STRIDE * XDPCTL_PFX_L1_ENTRIES) / XDPCTL_PFX_LINE_WORDS)

/*
 * IPv6 lengths 17..128 are searched by a binary tree of at most XDPCTL_PFX6_TREE_DEPTH
 * levels, in heap order: node n (1..127) holds a length (0 = no node), its children are 2n
 * (shorter) and 2n+1 (longer). Lines 1-3 are one byte string: bytes 0-3 the bucket count
 * (host order), node n at byte n + 4, and 1 at node 0's place (a verifier workaround, see
 * the lookup). 127 nodes hold all 112 lengths.
 */
#define XDPCTL_PFX6_TREE_LINE 1
#define XDPCTL_PFX6_TREE_LINES 3
#define XDPCTL_PFX6_TREE_DEPTH 7
#define XDPCTL_PFX6_TREE_NODES 128
#define XDPCTL_PFX6_TREE_POS(n) ((n) + 4)

#define XDPCTL_PFX_MAGIC 0x58504635u /* "XPF5": bumped when this layout changes */

/*
 * An IPv6 hash entry: a prefix, or a marker of the binary search on lengths. Four to a
 * line: the hash's size is what decides how often a probe misses the caches. A prefix
 * longer than /64 takes two slots, 2k and 2k+1, the second holding bits 64-127 in `hi`.
 */
struct xdpctl_pfx6_slot {
	__u64 hi;        /* address bits 0-63, host order, bits past len zero */
	__u32 value;     /* best match of length <= len for these bits (a leaf value) */
	__u8 len;        /* 17..128; 0 = empty, or the second half of a long entry */
	__u8 min_below;  /* shortest prefix longer than len below these bits, 0 = none */
	__u8 max_below;  /* longest one; 0 = none: a search that gets here is done */
	__u8 flags;      /* XDPCTL_PFX6_F_*; in slot[0], also the bucket's */
};
#define XDPCTL_PFX6_SLOTS 4
/* In slot[0] of a bucket: an entry whose first choice is this bucket sits in its second. */
#define XDPCTL_PFX6_F_DISPLACED 0x1
/* This slot is the second half of the long entry before it. */
#define XDPCTL_PFX6_F_TAIL 0x2

struct xdpctl_pfx_header {
	__u32 magic;          /* XDPCTL_PFX_MAGIC */
	__u32 lines;          /* the array's max_entries */
	__u32 v4_prefixes;
	__u32 v6_prefixes;
	__u32 v4_chunks;       /* chunk slots: a policy table places its chunks with room (prefix_table.cpp) */
	__u32 v6_buckets;
	__u32 v6_slots_used;
	/* A set's own table (xdpctl_pset): the print of the set's entries, low word first, which
	 * userspace finds it by (lib/policy/set_tables.h); 0 elsewhere. */
	__u32 set_print[2];
	/* A set's own table: its first line past what the builder made and set add/del have
	 * patched in since (copy-on-write, lib/policy/set_tables.h); the map has room past
	 * `lines` for that. 0: no room (a table of an older xdpctl): a change rebuilds it. */
	__u32 set_free_line;
	__u32 set_flags; /* XDPCTL_PFX_SET_F_* */
	__u32 pad[5];
};
/* The table may hold sparse chunks (every loaded program knew them when it was built). */
#define XDPCTL_PFX_SET_F_SPARSE 0x1

union xdpctl_pfx_line {
	__u32 word[XDPCTL_PFX_LINE_WORDS];
	__u16 half[2 * XDPCTL_PFX_LINE_WORDS];  /* a sparse /16's run starts */
	__u8 byte[XDPCTL_PFX_LINE_BYTES];
	struct xdpctl_pfx6_slot slot[XDPCTL_PFX6_SLOTS];
	struct xdpctl_pfx_header hdr;
};

/*
 * The IPv6 bucket hash, shared so the builder places entries where the datapath looks.
 * Both buckets come from one 64-bit hash (low half, high half): one multiply chain a probe.
 * The odd multipliers keep every input bit; splitmix64's finaliser then spreads each of
 * them into both halves, which masked prefixes (long runs of zero bits) need.
 */
static inline __u64 xdpctl_pfx6_hash(__u64 hi, __u64 lo, __u32 len)
{
	__u64 z = (hi * 0x9e3779b97f4a7c15ULL) ^ (lo * 0xc2b2ae3d27d4eb4fULL) ^ len;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The `nbits` (1..63) address bits that follow the first `len` (16..127), zeros past the
 * address's end: which part of a prefix of that length the address falls in. */
static inline __u32 xdpctl_pfx6_bits_after(__u64 hi, __u64 lo, __u32 len, __u32 nbits)
{
	__u64 w;

	if (len < 64)
		w = (hi << (len & 63)) | (lo >> ((64 - len) & 63));
	else
		w = lo << ((len - 64) & 63);
	return (__u32)(w >> ((64 - nbits) & 63));
}

/* Maps one hash half onto [0, nbuckets) without a division or a power-of-two mask, so a
 * table has exactly as many buckets as its entries need. */
static inline __u32 xdpctl_pfx6_bucket(__u32 half, __u32 nbuckets)
{
	return (__u32)(((__u64)half * nbuckets) >> 32);
}

#ifdef __cplusplus
static_assert(sizeof(struct xdpctl_pfx6_slot) == 16, "xdpctl_pfx6_slot layout");
static_assert(sizeof(struct xdpctl_pfx_header) == XDPCTL_PFX_LINE_BYTES, "xdpctl_pfx_header layout");
static_assert(sizeof(union xdpctl_pfx_line) == XDPCTL_PFX_LINE_BYTES, "xdpctl_pfx_line layout");
static_assert(XDPCTL_PFX6_BUCKET_LINE == 20496, "prefix table fixed area");
static_assert(XDPCTL_PFX_SPARSE16_STARTS <= 2 * XDPCTL_PFX_SPARSE16_VALUE_WORD &&
		      XDPCTL_PFX_SPARSE16_VALUE_WORD + XDPCTL_PFX_SPARSE16_RUNS == XDPCTL_PFX_LINE_WORDS &&
		      2 * XDPCTL_PFX_SPARSE16_PREFIXES + 1 <= XDPCTL_PFX_SPARSE16_RUNS,
	      "sparse /16 layout");
static_assert(XDPCTL_PFX_SPARSE_STARTS <= 4 * XDPCTL_PFX_SPARSE_VALUE_WORD &&
		      XDPCTL_PFX_SPARSE_VALUE_WORD + XDPCTL_PFX_SPARSE_RUNS == XDPCTL_PFX_LINE_WORDS &&
		      2 * XDPCTL_PFX_SPARSE_PREFIXES + 1 <= XDPCTL_PFX_SPARSE_RUNS,
	      "a sparse chunk fills one line");
static_assert(XDPCTL_PFX6_TREE_POS(XDPCTL_PFX6_TREE_NODES - 1) < XDPCTL_PFX6_TREE_LINES * XDPCTL_PFX_LINE_BYTES,
	      "prefix tree bytes");
#endif
/* ==== end of prefix tables ============================================================== */


/* ==== filtering policy (issue 4) ============================================================
 * The compiled policy (lib/policy/compiled_policy.h) in BPF maps, lookup in lib/bpf/classify.h,
 * maps in lib/bpf/policy_maps.h, writer in lib/policy/policy_maps.cpp. Every table exists
 * twice, one per generation; a commit fills the generation not in use and flips
 * xdpctl_pol_ctl.gen with one map update, so a packet, which reads gen once, sees the old
 * policy or the new one, never a mix.
 * Fields, in row order: src, dst, sport, dport, l4 (later-fragment, proto, tcp flags), vlan, iif.
 *
 * Fixed-size tables (ports, l4, vlan, iif) hold u16 class ids 32 to a 64-byte line
 * (struct xdpctl_pol_cls_line): a lookup fetches one cache line, and a table is a quarter
 * of what one u16 per array element takes (the kernel pads array elements to 8 bytes).
 * Variable-size tables live in inner maps, sized per generation:
 *  - xdpctl_ptabs, slot XDPCTL_POL_TAB_ADDR(gen, dir, dst): the address class tables (prefix
 *    tables, value = class + 1). One up to 32 MiB is kept and refilled in place two commits
 *    later while its size fits; a larger one (a big prefix set) is made anew, installed with
 *    one batch update and freed right after the flip (a one-line placeholder takes its slot;
 *    each ARRAY_OF_MAPS update waits an RCU grace period, 5-30 ms here, whatever it holds).
 *    No table where no rule of the direction names an address: src_const/dst_const give
 *    the class;
 *  - xdpctl_prows, slot gen: the bitmap rows of both directions, in elements of
 *    XDPCTL_POL_ROWS_ELEM_BYTES, kept from commit to commit and refilled in place while the
 *    size fits. A lookup into an inner map is a call (~10 ns where the kernel mitigates
 *    SRSO with Safe RET, ~2.5 ns where it does not), not an inlined add; with 4 MiB elements one call reaches
 *    every row of a policy of up to ~3,000 rules, and the words past a row's first line cost
 *    plain loads. A row never straddles two elements. Past the rows, the map's last element
 *    holds xdpctl's record of what the generation holds (lib/policy/row_prints.h), which the
 *    datapath never reads.
 */
#define XDPCTL_POL_GENS 2
#define XDPCTL_POL_DIRS 2            /* 0 ingress (XDP, TC ingress), 1 egress (TC egress) */
#define XDPCTL_POL_FIELDS 7
#define XDPCTL_POL_MAX_RULES 10000   /* per direction */
/* Ranks per direction: a rule's bit in the rows and its record's index. Ranks left free
 * between rules (lib/policy/rank_gaps.h) let a rule inserted among others take one, so the
 * ranks after it stay and so does every row that holds them. */
#define XDPCTL_POL_MAX_RANKS 12288
/* The last rank is no rule's bit: its record is the edge rule's (XDPCTL_POL_DECIDE_EDGE), so
 * ranked rules take the ranks below it. */
#define XDPCTL_POL_EDGE_RANK (XDPCTL_POL_MAX_RANKS - 1)
#define XDPCTL_POL_RULE_RANKS XDPCTL_POL_EDGE_RANK
#define XDPCTL_POL_MAX_WORDS ((XDPCTL_POL_MAX_RANKS + 63) / 64)
#define XDPCTL_POL_MAX_AGG ((XDPCTL_POL_MAX_WORDS + 63) / 64)
#define XDPCTL_POL_PORTS 65536
#define XDPCTL_POL_L4_ENTRIES (2 * 256 * 256) /* (later_fragment << 16) | (proto << 8) | tcp flags */
#define XDPCTL_POL_VLAN_ENTRIES 4097         /* VLAN ID, or 4096 for untagged */
#define XDPCTL_POL_IIF_ENTRIES 4096          /* ifindex; larger ones use iif_other */
#define XDPCTL_POL_COUNTER_SLOTS (2 * XDPCTL_POL_MAX_RULES + 1024)

/* Class tables: 32 u16 class ids a line. */
#define XDPCTL_POL_CLS_PER_LINE 32
#define XDPCTL_POL_PORT_LINES (XDPCTL_POL_PORTS / XDPCTL_POL_CLS_PER_LINE)
#define XDPCTL_POL_L4_LINES (XDPCTL_POL_L4_ENTRIES / XDPCTL_POL_CLS_PER_LINE)
#define XDPCTL_POL_VLAN_LINES ((XDPCTL_POL_VLAN_ENTRIES + XDPCTL_POL_CLS_PER_LINE - 1) / XDPCTL_POL_CLS_PER_LINE)
#define XDPCTL_POL_IIF_LINES (XDPCTL_POL_IIF_ENTRIES / XDPCTL_POL_CLS_PER_LINE)
/* Line of (gen, dir) in a class table: tables of one (gen, dir) are contiguous. The port
 * table holds sport then dport for each (gen, dir). */
#define XDPCTL_POL_GD(gen, dir) ((gen) * XDPCTL_POL_DIRS + (dir))

/*
 * The IPv4 level 1 of each address table (65,536 words, as at XDPCTL_PFX4_L1_WORD of the
 * table) is also in xdpctl_pl1, a plain array with one 256 KiB element per (gen, dir, dst):
 * its lookup is inlined, so an address whose longest match is up to /16 costs no call and one
 * up to /24 one (the chunk, in the table), where each level was a call.
 */
#define XDPCTL_POL_L1(gen, dir, dst) XDPCTL_POL_TAB_ADDR(gen, dir, dst)

/* Slots of xdpctl_ptabs. */
#define XDPCTL_POL_TABS_PER_GEN 4
#define XDPCTL_POL_TAB_ADDR(gen, dir, dst) ((gen) * XDPCTL_POL_TABS_PER_GEN + (dir) * 2 + (dst))
/* Rows: u64 words in 64-byte lines, lines in elements of the rows map. */
#define XDPCTL_POL_ROW_LINE_WORDS 8
#define XDPCTL_POL_ROWS_ELEM_BYTES (1u << 22)
#define XDPCTL_POL_ROWS_ELEM_LINES (XDPCTL_POL_ROWS_ELEM_BYTES / 64)
/* A row's size bound (3 aggregate, 3 anchor and at most 192 rule words: 1,584 bytes), a
 * power of two: rows start at most ELEM_BYTES - ROW_MAX_BYTES - 64 bytes into an element. */
#define XDPCTL_POL_ROW_MAX_BYTES 2048
#define XDPCTL_POL_ROWS_USABLE_LINES (XDPCTL_POL_ROWS_ELEM_LINES - XDPCTL_POL_ROW_MAX_BYTES / 64 - 1)
/*
 * Rows of a small policy (both directions of a generation within one element, up to ~1,000
 * rules of the benchmark mix) go to xdpctl_prows_small instead: a plain array, one element
 * per generation, whose lookup the verifier inlines, so such a packet makes no call for its
 * rows. Rows start at most SMALL_ROWS_BYTES - ROW_MAX_BYTES - 64 bytes into the element.
 */
#define XDPCTL_POL_SMALL_ROWS_BYTES (1u << 19)
#define XDPCTL_POL_SMALL_ROWS_LINES (XDPCTL_POL_SMALL_ROWS_BYTES / 64 - XDPCTL_POL_ROW_MAX_BYTES / 64 - 1)

/*
 * The rule walk's bound: a packet is classified exactly when at most XDPCTL_POL_MAX_COUNTED
 * count or (conforming) rate-limit rules match it before its deciding rule; past that the
 * default action applies. Each step of the walk takes at least one candidate word or one
 * matching rule, so this many steps always reach the 65th matching rule.
 */
#define XDPCTL_POL_MAX_COUNTED 64
#define XDPCTL_POL_WALK_STEPS (XDPCTL_POL_MAX_AGG + XDPCTL_POL_MAX_WORDS + XDPCTL_POL_MAX_COUNTED + 1)
/* The stored policy text (lib/bpf/maps.h): chunks of a generation, at most 2 x 128 MiB. */
#define XDPCTL_SRC_CHUNK_BYTES 32768
#define XDPCTL_SRC_MAX_CHUNKS 8192

enum xdpctl_pol_field {
	XDPCTL_FIELD_SRC = 0,
	XDPCTL_FIELD_DST,
	XDPCTL_FIELD_SPORT,
	XDPCTL_FIELD_DPORT,
	XDPCTL_FIELD_L4,
	XDPCTL_FIELD_VLAN,
	XDPCTL_FIELD_IIF,
};

enum xdpctl_pol_action {
	XDPCTL_ACT_PASS = 0,
	XDPCTL_ACT_DROP = 1,
	XDPCTL_ACT_COUNT = 2,      /* count, go on with the next matching rule */
	XDPCTL_ACT_RATE_LIMIT = 3, /* over the rate: drop; within it: count and go on */
};

struct xdpctl_pol_dir_hdr {
	__u32 n_rules;          /* 0: no rule in this direction, the default decides */
	__u32 words;            /* u64 words of rule bits per row */
	__u32 agg_words;        /* aggregate words per row (ahead of the rule bits) */
	__u32 row_lines;        /* 64-byte lines per row: ceil((agg_words + words) / 8) */
	__u32 rows_elem;        /* the rows map's element holding this direction's row 0 */
	__u32 row_base[XDPCTL_POL_FIELDS]; /* row of class 0 of each field */
	__u32 src_nonip;        /* classes for packets without the field */
	__u32 dst_nonip;
	__u32 sport_none;
	__u32 dport_none;
	__u32 l4_nonip;
	__u32 iif_other;
	__u32 rows_per_elem;    /* row R is in element rows_elem + R / rows_per_elem:
				 * XDPCTL_POL_ROWS_USABLE_LINES / row_lines */
	/* class + 1 of every IP packet's source/destination when no rule of the direction
	 * names an address there (no table, no lookup); 0: look it up */
	__u32 src_const;
	__u32 dst_const;
	__u32 rows_small;       /* 1: the rows are in xdpctl_prows_small, element gen, from line */
	__u32 rows_line0;       /* rows_line0 on (rows_elem and rows_per_elem then unused) */
	/* How a program that knows it decides (enum xdpctl_pol_decide); the tables above stay
	 * complete whatever it says, for programs of an older xdpctl (which read 0 here) and
	 * for programs loaded with the tables' path only (lib/attach/datapath_paths.h: paths_cover()
	 * counts on it when a commit changes the shape). */
	__u32 decide;
};

struct xdpctl_pol_hdr {
	__u32 default_action;   /* XDPCTL_ACT_PASS or XDPCTL_ACT_DROP */
	/* Userspace only: 1 once the commit that made this generation active has waited out the
	 * packets still on the one before. 0 on the active generation: that commit stopped early,
	 * and the next must wait before it rewrites the other. */
	__u32 settled;
	struct xdpctl_pol_dir_hdr dir[XDPCTL_POL_DIRS];
};

struct xdpctl_pol_ctl {
	__u32 gen;              /* the generation packets use */
	__u32 installed;        /* 0: no policy ever committed: every packet passes unclassified */
	__u64 commits;          /* how many commits; informational */
};

/*
 * When the policy was last committed, for xdpd's metrics: the one value of maps/xdpctl_pcommit,
 * an ARRAY of 1 that userspace makes and writes after each commit's flip; no program has it.
 * A map of its own, not a field of xdpctl_pol_ctl, whose pinned layout the running programs
 * share (tests/data/pinned_map_layout.txt): an upgrade needs no migration.
 */
struct xdpctl_pol_commit_rec {
	__u64 commits;          /* xdpctl_pol_ctl.commits after that commit */
	__u64 unix_ns;          /* CLOCK_REALTIME at the flip */
};

/* A rule by rank in one generation and direction: ranks follow the evaluation order between
 * rules that may match one packet; id 0 is a free rank, which nothing points at
 * (lib/policy/rank_gaps.h). */
struct xdpctl_rule_rec {
	__u32 id;               /* stable rule id */
	__u32 action;           /* enum xdpctl_pol_action */
	__u32 ctr_slot;         /* index into the per-CPU rule counters (stable per id) */
	__u32 log_rate;         /* --log: at most this many events a second; 0: no events */
	__u64 rate_pps;         /* rate-limit */
	__u64 burst;
};

/*
 * Small policies: a direction of at most XDPCTL_POL_SMALL_MAX rules that name no set and no
 * interface is decided by straight-line compares over its rules in evaluation order, after
 * one inlined array lookup, instead of seven class lookups, seven rows and the walk (~45 ns
 * of instructions on a CPU where calls are cheap, more than xdp-filter's whole program).
 * lib/policy/shapes.cpp builds them from the rules; the matching is the reference
 * classifier's (lib/policy/reference_classifier.cpp).
 */
#define XDPCTL_POL_SMALL_MAX 8

/* dir_hdr.decide: the shape of a direction's policy, and so the path that decides it. */
enum xdpctl_pol_decide {
	XDPCTL_POL_DECIDE_TABLES = 0, /* class lookups, rows and the walk */
	XDPCTL_POL_DECIDE_SMALL = 1,  /* its rules compared one by one (xdpctl_psmall) */
	/* Every rule names the source (destination) address and nothing else, and drops or
	 * passes: the address's class gives the deciding rule through xdpctl_pdecide. */
	XDPCTL_POL_DECIDE_SRC = 2,
	XDPCTL_POL_DECIDE_DST = 3,
	/* Rules compared one by one as the small ones, but only those on the packet's anchor
	 * lists (xdpctl_panc): a program of an older xdpctl reads a value no shape of its own
	 * and walks the tables, which stay complete. */
	XDPCTL_POL_DECIDE_ANCHORS = 4,
};
/*
 * With XDPCTL_POL_DECIDE_TABLES, decide's bits from XDPCTL_POL_DECIDE_SKIP_SHIFT up name
 * the fields no rule of the direction names (bit f: XDPCTL_FIELD_f; every row of such a field
 * holds every rule, so ANDing it changes nothing): the walk neither looks their classes up nor
 * reads their rows. Never L4 (rules that name nothing are anchored there). The value stays
 * unequal to every other shape, so a program of an older xdpctl takes the tables, reading
 * every field, as before. With XDPCTL_POL_DECIDE_ANCHORS they name the fields no rule is
 * anchored at: the anchor lists need no other field's class (the compares check the rest).
 */
#define XDPCTL_POL_DECIDE_SHAPE_MASK 0xffu
#define XDPCTL_POL_DECIDE_SKIP_SHIFT 8
#define XDPCTL_POL_SKIP_FIELDS (((1u << XDPCTL_POL_FIELDS) - 1) & ~(1u << XDPCTL_FIELD_L4))

/*
 * The paths a loaded program contains (its read-only cfg_paths, lib/bpf/classify.h): the
 * verifier deletes the code of every path not in it, so a policy of one small rule runs a
 * program a few KB long rather than the whole classifier. The loader sets it from the policy
 * in force; a commit whose new generation needs a path a program lacks first reloads that
 * program with both generations' paths (lib/attach/datapath_paths.h). Not pinned: each program's own.
 */
enum xdpctl_path {
	XDPCTL_PATH_SMALL = 1 << 0,  /* XDPCTL_POL_DECIDE_SMALL */
	XDPCTL_PATH_FIELD = 1 << 1,  /* XDPCTL_POL_DECIDE_SRC/DST */
	XDPCTL_PATH_TABLES = 1 << 2, /* XDPCTL_POL_DECIDE_TABLES: class lookups, rows, the walk */
	XDPCTL_PATH_RATE = 1 << 3,   /* rate-limit rules (small or tables) */
	XDPCTL_PATH_LB = 1 << 4,     /* the load balancer (XDP): a VIP exists */
	XDPCTL_PATH_LOG = 1 << 5,    /* decision events: a rule with --log (log_rate != 0) */
	/* A direction with no rule whose default drops: the policy's header (the three shapes'
	 * paths read it too). Without it or them, no policy is read at all: every packet passes
	 * unclassified, and a program of no path at all is the parse-and-count one. */
	XDPCTL_PATH_DEFAULT = 1 << 6,
	XDPCTL_PATH_EDGE = 1 << 7,   /* XDPCTL_POL_DECIDE_EDGE: a set looked up beside the walk */
};
#define XDPCTL_PATHS_ALL \
	(XDPCTL_PATH_SMALL | XDPCTL_PATH_FIELD | XDPCTL_PATH_TABLES | XDPCTL_PATH_RATE | XDPCTL_PATH_LB | \
	 XDPCTL_PATH_LOG | XDPCTL_PATH_DEFAULT | XDPCTL_PATH_EDGE)
/* The paths that read the policy's header, and so decide a direction with no rule. */
#define XDPCTL_PATHS_POLICY \
	(XDPCTL_PATH_SMALL | XDPCTL_PATH_FIELD | XDPCTL_PATH_TABLES | XDPCTL_PATH_DEFAULT)

/*
 * One-field policies (XDPCTL_POL_DECIDE_SRC/DST): for each class of the field, the rank + 1 of
 * the first rule whose address the class is in, 0 for none (the default decides): entry
 * class % 16 of line XDPCTL_POL_GD(gen, dir) * XDPCTL_POL_DECIDE_LINES + class / 16 of
 * xdpctl_pdecide (64-byte lines, as the class tables: an mmaped array's elements are 8-byte
 * aligned, so u32 elements would waste half). One address lookup and two inlined array
 * lookups a packet, whatever the number of rules or prefixes (10,000 /32s, a set of
 * 1,000,000 prefixes); a field with more classes takes the tables.
 */
#define XDPCTL_POL_DECIDE_CLASSES 65536
#define XDPCTL_POL_DECIDE_PER_LINE 16
#define XDPCTL_POL_DECIDE_LINES (XDPCTL_POL_DECIDE_CLASSES / XDPCTL_POL_DECIDE_PER_LINE)

struct xdpctl_pol_decide_line {
	__u32 rank1[XDPCTL_POL_DECIDE_PER_LINE];
};

/*
 * Sets' own tables (docs/prefix-sets.md, "A set's own table"). A set named in an address
 * field by at most XDPCTL_POL_SPLIT_SETS sets (and no more rule prefixes than fit below) is
 * not merged into the field's classes: it has a prefix table of its own in a slot of
 * xdpctl_pset (leaf 1: member, XDPCTL_PFX_EXCEPTED: excepted), with its IPv4 level 1 in the
 * same element of xdpctl_psl1 (an inlined lookup), built when the set changes and left alone
 * by commits that do not change it. The field's own table (xdpctl_ptabs) then holds the rules'
 * prefixes only and gives a node (value - 1); the class is
 * node_class[node << n_sets | membership bits], from the field's element of xdpctl_psplit
 * (key XDPCTL_POL_TAB_ADDR(gen, dir, dst); an inlined lookup). A generation refers to a
 * set's slot by number, so both generations may share a slot; a set changed goes into a slot
 * neither refers to, and the flip switches to it with everything else.
 * dir_hdr.decide's bit XDPCTL_POL_DECIDE_SPLIT_SHIFT + dst says the field is split (any shape;
 * src_const/dst_const are then 0).
 */
#define XDPCTL_POL_SET_SLOTS 8 /* a power of two, at most 8 (3 bits of dir_hdr.decide) */
#define XDPCTL_POL_SPLIT_SETS 4
#define XDPCTL_POL_NODE_CLASSES 65536
#define XDPCTL_POL_DECIDE_SPLIT_SHIFT 16
/* Bit XDPCTL_POL_DECIDE_SPLIT_ONE_SHIFT + dst (with the split bit): the field is split by one
 * set alone (no rule prefix): the program reads an IPv4 address's class inline, with no call. */
#define XDPCTL_POL_DECIDE_SPLIT_ONE_SHIFT 18
/* Then the set's slot in 3 bits from XDPCTL_POL_DECIDE_SET_SLOT_SHIFT + 3 * dst. */
#define XDPCTL_POL_DECIDE_SET_SLOT_SHIFT 20
/*
 * With XDPCTL_POL_DECIDE_SRC/DST whose field is split by one set alone: the field's element
 * of xdpctl_psplit holds in rank1[m] what xdpctl_pdecide holds for class node_class[m] (m = 1:
 * a member), so an IPv4 address is decided by its leaf in the set's table with no class read
 * and no xdpctl_pdecide line. A program of an older xdpctl ignores the bit and the field (its
 * padding) and reads the classes, which stay written.
 */
#define XDPCTL_POL_DECIDE_SET_RANKS (1u << 26)
/*
 * The edge rule (any shape): the direction's first or last rule in evaluation order names one
 * set in one address field and nothing else, drops or passes, and is decided beside the walk,
 * by the set's own table (slot in the 3 bits from XDPCTL_POL_DECIDE_EDGE_SLOT_SHIFT, the
 * destination's with XDPCTL_POL_DECIDE_EDGE_DST): first (XDPCTL_POL_DECIDE_EDGE_FIRST), before
 * the walk, a member decided at once; last, after it, for a packet no other rule decided (the
 * default would). A member takes the record at XDPCTL_POL_EDGE_RANK. Such a rule holds no rank
 * in the rows: the commit that puts a 1M-prefix set in use that way (a blocklist before or
 * after the rules) rewrites no row, where a ranked rule joined every row of the fields it does
 * not name and split the field by the set (~28 MiB of 45 at 10,000 rules). One a direction.
 */
#define XDPCTL_POL_DECIDE_EDGE (1u << 27)
#define XDPCTL_POL_DECIDE_EDGE_DST (1u << 28)
#define XDPCTL_POL_DECIDE_EDGE_FIRST (1u << 15) /* past the skip bits of the 7 fields */
#define XDPCTL_POL_DECIDE_EDGE_SLOT_SHIFT 29

struct xdpctl_pol_split {
	__u32 n_sets;       /* 1..XDPCTL_POL_SPLIT_SETS */
	__u32 rule_table;   /* 0: no rule prefix in this field: node 0, no lookup */
	__u32 slot[XDPCTL_POL_SPLIT_SETS]; /* set s's table: slot of xdpctl_pset and xdpctl_psl1 */
	__u32 rank1[2];     /* XDPCTL_POL_DECIDE_SET_RANKS: the deciding rank + 1 of a non-member, a member */
	__u32 pad[8];
	__u16 node_class[XDPCTL_POL_NODE_CLASSES];
};

/* Userspace's record of a set slot (maps/xdpctl_psetrec, no program has it): what the table
 * in the slot holds, so that a commit whose set is unchanged finds it. */
struct xdpctl_pol_set_rec {
	__u64 print;        /* of the set's entries (lib/policy/set_tables.cpp); 0: empty slot */
	__u64 entries;
};

/*
 * Anchor lists (XDPCTL_POL_DECIDE_ANCHORS): a direction of drop and pass rules naming no set
 * and no interface, too many for the small path (10,000 rules of the issue-4 mix). Every rule
 * is anchored at one field (the first it names of src, dst, dport, sport, vlan, iif, L4;
 * lib/policy/compiled_policy.h); a rule that matches a packet is on the list of its anchor
 * field's class for that packet. So the packet's class in each field that anchors rules
 * gives a short list of ranks (ascending), and the rules on them are compared as the small
 * ones are; the lowest rank that matches decides. No rows, no walk: at 10,000 rules of the
 * mix a list holds ~1-3 rules for a source and ~16 for a port.
 * One element of xdpctl_panc per XDPCTL_POL_GD(gen, dir), an inlined lookup, laid out as:
 *  - XDPCTL_POL_ANC_RULES_OFF: struct xdpctl_pol_small_rule by rank (with its record);
 *  - XDPCTL_POL_ANC_BASE_OFF: __u32 per field (XDPCTL_FIELD_*), the index entry of its
 *    class 0, XDPCTL_POL_ANC_NONE where no rule is anchored;
 *  - XDPCTL_POL_ANC_IDX_OFF: __u32 index entries, start << 8 | length of a list (length
 *    at most XDPCTL_POL_ANC_LIST_MAX);
 *  - XDPCTL_POL_ANC_LIST_OFF: the lists, __u16 ranks.
 * A direction whose lists do not fit (more entries, a longer list) is decided by the tables.
 */
#define XDPCTL_POL_ANC_LIST_MAX 64
#define XDPCTL_POL_ANC_NONE 0xffffffffu
#define XDPCTL_POL_ANC_IDX_ENTRIES 65536
#define XDPCTL_POL_ANC_LIST_ENTRIES (1u << 19)
#define XDPCTL_POL_ANC_RULES_OFF 0
#define XDPCTL_POL_ANC_BASE_OFF (XDPCTL_POL_MAX_RANKS * 120)
#define XDPCTL_POL_ANC_IDX_OFF (XDPCTL_POL_ANC_BASE_OFF + 64)
#define XDPCTL_POL_ANC_LIST_OFF (XDPCTL_POL_ANC_IDX_OFF + XDPCTL_POL_ANC_IDX_ENTRIES * 4)
/* whole pages: a commit maps the one element it writes */
#define XDPCTL_POL_ANC_BYTES ((XDPCTL_POL_ANC_LIST_OFF + XDPCTL_POL_ANC_LIST_ENTRIES * 2 + 4095) / 4096 * 4096)

/*
 * The flow cache (xdpctl_pflow, per CPU): a packet decided by the anchor lists or the tables
 * leaves its classification key (everything of the parsed packet the policy can match, the
 * interface's key and the direction), the generation it read (xdpctl_pol_ctl.commits << 1 |
 * gen) and the rank + 1 of its deciding rule (0: the default) in slot hash % SLOTS; the next
 * packet of the same flow under the same commit takes that rule without classifying, and
 * counts it as the walk would. Only walks that applied no count or rate-limit rule (and were
 * not decided by one) are kept; explain never reads or writes it. A commit moves `commits`,
 * so no entry of an older generation is ever taken (a torn read of gen and commits during a
 * flip makes a pair no whole commit has). It makes elephant flows cheap, not a flood of new
 * flows: each of those pays a miss (the hash, one compare, eight stores) on top.
 */
#define XDPCTL_POL_FLOW_SLOTS 1024
/*
 * A program's cfg_flow_cache (rodata, lib/bpf/classify.h): XDPCTL_FLOW_CACHE_ON, the default,
 * uses the cache; xdpctl-microbench loads one with XDPCTL_FLOW_CACHE_MISS, which fills it as
 * usual but never takes an entry, for what each packet of a flood of new flows pays
 * (PROG_TEST_RUN repeats one frame, which would hit every time after the first).
 */
#define XDPCTL_FLOW_CACHE_OFF 0
#define XDPCTL_FLOW_CACHE_ON 1
#define XDPCTL_FLOW_CACHE_MISS 2

struct xdpctl_pol_flow {
	__u64 key[6];           /* l3/l4 protocol, VLAN, fragment, TCP flags; ports; addresses */
	__u64 stamp;            /* commits << 1 | gen of the generation that decided */
	__u32 iif_dir;          /* the interface's key | direction << 31 */
	__u32 rank1;            /* rank + 1 of the deciding rule, 0: the default */
};

/* Which fields a small rule names (the others match every packet). */
#define XDPCTL_SMALL_F_PROTO (1u << 0)
#define XDPCTL_SMALL_F_SPORT (1u << 1)
#define XDPCTL_SMALL_F_DPORT (1u << 2)
#define XDPCTL_SMALL_F_TCP_FLAGS (1u << 3)
#define XDPCTL_SMALL_F_VLAN (1u << 4)
#define XDPCTL_SMALL_F_FRAGMENT (1u << 5)

struct xdpctl_pol_small_rule {
	/* An address field matches when (address & mask) == value, word by word (network
	 * order); an address field no rule names has mask and value 0. */
	__u32 src[4], src_mask[4];
	__u32 dst[4], dst_mask[4];
	__u8 family;            /* 0: no address named; 4 or 6: the packet must be of it */
	__u8 proto;             /* XDPCTL_SMALL_F_PROTO */
	__u8 tcp_mask;          /* XDPCTL_SMALL_F_TCP_FLAGS: (flags & mask) == value */
	__u8 tcp_value;
	__u16 sport_lo, sport_hi; /* host order, XDPCTL_SMALL_F_SPORT */
	__u16 dport_lo, dport_hi;
	__u16 vlan;             /* XDPCTL_SMALL_F_VLAN: the outermost tag's ID */
	__u16 flags;            /* XDPCTL_SMALL_F_* */
	__u32 pad[2];
	struct xdpctl_rule_rec rec; /* what a match does, as the walk's record of the rank */
};

struct xdpctl_pol_small {
	__u32 n;                /* rules in evaluation order, at most XDPCTL_POL_SMALL_MAX */
	__u32 pad;
	struct xdpctl_pol_small_rule r[XDPCTL_POL_SMALL_MAX];
};

/* Per-CPU, per rule (by ctr_slot): what `rule list` sums. */
struct xdpctl_rule_ctr {
	__u64 packets;
	__u64 bytes;
	/* bpf_ktime_get_coarse_ns() of the last hit on this CPU: CLOCK_MONOTONIC_COARSE, the
	 * timebase of CLOCK_MONOTONIC at tick resolution. */
	__u64 last_hit_ns;
	/* jiffies of that hit: the clock is read (a helper call, ~10 ns) once a tick, not for
	 * every packet; reading jiffies is an inlined load. Datapath only. */
	__u64 last_hit_jiffies;
};

/*
 * Shared by all CPUs, per rule (by ctr_slot): the rate limiter's bucket. CPUs take tokens
 * from it in batches into their purses (below), so a packet touches this cache line once a
 * batch, not once a packet (lib/bpf/classify.h: pol_rate_conforms, docs/filtering.md).
 */
struct xdpctl_rate_bucket {
	__s64 tokens_nano;      /* tokens * 1e9, so refills of a fraction of a token add up; a
				 * take that raced below what it read gives the excess back */
	__u64 last_ns;          /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) of the last refill */
};

/* A CPU takes at most burst / this many tokens (at least 1) from the bucket at once. */
#define XDPCTL_RATE_PURSE_DIV 64

/* Per-CPU, per rule (by ctr_slot): the tokens this CPU took from the bucket and has not
 * spent. A commit that gives a rule a full bucket empties its purses. */
struct xdpctl_rate_purse {
	__u64 tokens;           /* whole tokens, fewer than a batch (burst / XDPCTL_RATE_PURSE_DIV,
				 * at least 1) */
	__u64 next_ns;          /* the bucket had less than a batch: this CPU, its purse empty,
				 * does not look at it again before this bpf_ktime_get_ns() */
};

struct xdpctl_pol_cls_line {
	__u16 cls[XDPCTL_POL_CLS_PER_LINE];
};

struct xdpctl_pol_row_line {
	__u64 word[XDPCTL_POL_ROW_LINE_WORDS];
};

#ifdef __cplusplus
static_assert(sizeof(struct xdpctl_pol_dir_hdr) == 4 * 24, "xdpctl_pol_dir_hdr layout");
static_assert(sizeof(struct xdpctl_rule_rec) == 32, "xdpctl_rule_rec layout");
static_assert(XDPCTL_IIF_KEY_MAX < XDPCTL_POL_IIF_ENTRIES, "interface keys index the iif table");
static_assert(sizeof(struct xdpctl_pol_small_rule) == 120, "xdpctl_pol_small_rule layout");
static_assert(sizeof(struct xdpctl_pol_small) == 8 + XDPCTL_POL_SMALL_MAX * 120, "xdpctl_pol_small layout");
static_assert(sizeof(struct xdpctl_pol_decide_line) == 64, "xdpctl_pol_decide_line layout");
static_assert(sizeof(struct xdpctl_pol_split) == 64 + 2 * XDPCTL_POL_NODE_CLASSES, "xdpctl_pol_split layout");
static_assert(sizeof(struct xdpctl_pol_set_rec) == 16, "xdpctl_pol_set_rec layout");
static_assert(sizeof(struct xdpctl_pol_flow) == 64, "xdpctl_pol_flow layout");
static_assert(XDPCTL_POL_ANC_BASE_OFF == XDPCTL_POL_MAX_RANKS * sizeof(struct xdpctl_pol_small_rule) &&
		      XDPCTL_POL_ANC_BASE_OFF % 64 == 0 && XDPCTL_POL_FIELDS <= 16,
	      "anchor element layout");
static_assert(sizeof(struct xdpctl_pol_hdr) == 8 + 2 * 96, "xdpctl_pol_hdr layout");
static_assert(sizeof(struct xdpctl_pol_ctl) == 16, "xdpctl_pol_ctl layout");
static_assert(sizeof(struct xdpctl_pol_commit_rec) == 16, "xdpctl_pol_commit_rec layout");
static_assert(sizeof(struct xdpctl_rule_ctr) == 32, "xdpctl_rule_ctr layout");
static_assert(sizeof(struct xdpctl_rate_bucket) == 16, "xdpctl_rate_bucket layout");
static_assert(sizeof(struct xdpctl_rate_purse) == 16, "xdpctl_rate_purse layout");
static_assert(sizeof(struct xdpctl_pol_cls_line) == 64, "xdpctl_pol_cls_line layout");
static_assert(sizeof(struct xdpctl_pol_row_line) == 64, "xdpctl_pol_row_line layout");
#endif
/* ==== end of filtering policy ============================================================== */

/* ==== decision events (issue 14) ===========================================================
 * A rule with --log (xdpctl_rule_rec.log_rate != 0) that decides a packet sends an event into
 * the ring buffer maps/xdpctl_events, at most log_rate a second: each CPU has a token bucket
 * per rule (xdpctl_rlog, by ctr_slot) holding log_rate / CPUs events a second and as many
 * at once, so the CPUs together stay within the rate without sharing a cache line. What the
 * bucket refuses is counted there (not_sent); an event the ring had no room for is counted
 * in slot XDPCTL_LOG_RING_FULL_SLOT. `xdpctl trace` reads the ring (lib/trace/).
 */
#define XDPCTL_EVENT_SNAP 128                 /* packet bytes an event carries, at most */
#define XDPCTL_EVENTS_RING_BYTES (1u << 20)  /* ~6,800 events */
#define XDPCTL_LOG_RING_FULL_SLOT XDPCTL_POL_COUNTER_SLOTS
#define XDPCTL_LOG_SLOTS (XDPCTL_POL_COUNTER_SLOTS + 1)
#define XDPCTL_LOG_RATE_MAX 1000000          /* events a second, per rule */

/* Per-CPU, per rule (by ctr_slot). */
struct xdpctl_log_state {
	__s64 tokens_nano;      /* events * 1e9 * CPUs (see above); refilled from last_ns */
	__u64 last_ns;          /* bpf_ktime_get_coarse_ns() of the last refill; 0: never (a full bucket) */
	__u64 sent;             /* events put in the ring */
	__u64 not_sent;         /* events over the rate (slot RING_FULL_SLOT: the ring was full) */
};

struct xdpctl_event {
	__u64 time_ns;          /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 ifindex;          /* the device the hook ran on, in its own namespace */
	__u32 iif_key;          /* its xdpctl_iface_meta.iif_key: unique across namespaces */
	__u32 rule_id;
	__u32 pkt_len;          /* the frame's length (all buffers) */
	__u16 cap_len;          /* bytes in data: min(pkt_len, XDPCTL_EVENT_SNAP) */
	__u8 hook;              /* enum xdpctl_hook */
	__u8 verdict;           /* XDPCTL_ACT_PASS or XDPCTL_ACT_DROP */
	__u32 pad;
	__u8 data[XDPCTL_EVENT_SNAP];
};

#ifdef __cplusplus
static_assert(sizeof(struct xdpctl_log_state) == 32, "xdpctl_log_state layout");
static_assert(sizeof(struct xdpctl_event) == 32 + XDPCTL_EVENT_SNAP, "xdpctl_event layout");
#endif
/* ==== end of decision events =============================================================== */

/* ==== explain (issue 4) =====================================================================
 * `xdpctl explain` loads a private, unattached instance of a program with cfg_explain = 1
 * (lib/bpf/explain.h), reusing the pinned policy maps, and runs it once on a frame with
 * BPF_PROG_TEST_RUN. In that mode the program changes no counter and no rate bucket; it
 * fills this record (in its .bss), which lib/explain/ reads back after the run.
 */
#define XDPCTL_EXPLAIN_MAX_COUNTED 16

struct xdpctl_explain {
	__u32 done;           /* 1 once the program wrote the verdict */
	__u32 hook;           /* enum xdpctl_hook */
	__u32 malformed;      /* 0, or the XDPCTL_CNT_BAD_* reason: then no rule was looked at */
	__u32 verdict;        /* XDPCTL_ACT_PASS or XDPCTL_ACT_DROP */
	__u32 rule_id;        /* the deciding rule; 0: the default action, or no policy */
	__u32 ifindex;        /* what --iif rules were matched against */
	__u32 n_counted;      /* count / conforming rate-limit rules matched before the decider */
	__u32 counted[XDPCTL_EXPLAIN_MAX_COUNTED]; /* the first of their ids, in walk order */
	/* the parsed headers (struct pkt, lib/bpf/packet.h) */
	__u32 len;
	__u32 saddr[4];       /* network order; IPv4 in [0] */
	__u32 daddr[4];
	__u16 l3_proto;       /* Ethernet type after the VLAN tags, host order */
	__u16 vlan_id[XDPCTL_MAX_VLANS];
	__u16 sport;          /* as struct pkt: TCP/UDP network order; ICMP/ICMPv6 the type */
	__u16 dport;          /* the same; ICMP/ICMPv6 the code */
	__u8 n_vlans;
	__u8 l4_proto;        /* valid when l4_cnt != XDPCTL_CNT_MAX */
	__u8 l3_cnt;          /* XDPCTL_CNT_L3_* */
	__u8 l4_cnt;          /* XDPCTL_CNT_L4_*, XDPCTL_CNT_MAX: no L4 header known */
	__u8 frag;            /* 0 not a fragment, 1 first fragment, 2 later fragment */
	__u8 tcp_flags;
};

#ifdef __cplusplus
static_assert(sizeof(struct xdpctl_explain) == 144, "xdpctl_explain layout");
#endif
/* ==== end of explain ======================================================================= */
/* ==== load balancing (issue 6) ==============================================================
 * Maps in lib/bpf/lb_maps.h, datapath in lib/bpf/lb.h, writer in lib/lb/lb_maps.cpp, Maglev
 * builder in lib/lb/maglev.cpp. Design: docs/load-balancing.md.
 *
 * A VIP (address, port, protocol) maps to a record with its slot (`id`) and forwarding mode.
 * Slot `id` of xdpctl_lb_rings holds the VIP's Maglev table: an inner array of ring_size u32
 * backend slots, built in userspace and installed with ONE update of that slot, so a packet
 * sees the old table or the new one. The ring size is fixed when the VIP is made.
 * Backends live in one array of XDPCTL_LB_MAX_BACKENDS records, each naming its VIP: a
 * connection-table entry whose backend slot was freed (or reused by another VIP) is a miss.
 */
#define XDPCTL_LB_MAX_VIPS 256
#define XDPCTL_LB_MAX_BACKENDS 4096
#define XDPCTL_LB_RING_DEFAULT 65537          /* a prime; Maglev wants one */
#define XDPCTL_LB_RING_MAX 1048573            /* a prime */
#define XDPCTL_LB_CT_DEFAULT 65536            /* connection-table entries, set at first load */
#define XDPCTL_LB_NO_BACKEND 0xffffffffu      /* a ring slot with no backend (all weights 0) */
#define XDPCTL_LB_MAX_WEIGHT 1000
/* In the VIP map, an entry with this proto and port 0 marks an address that some VIP uses:
 * ICMP and fragments to it are counted (and passed to the stack), see lib/bpf/lb.h. */
#define XDPCTL_LB_PROTO_ADDR 0

enum xdpctl_lb_mode {
	XDPCTL_LB_MODE_DSR = 0,   /* rewrite the MACs, XDP_TX: the backend holds the VIP on lo */
	XDPCTL_LB_MODE_IPIP = 1,  /* IPv4-in-IPv4 / IPv6-in-IPv6 to the backend, XDP_TX */
};

/* VIP flags */
#define XDPCTL_LB_F_HASH_3TUPLE (1u << 0) /* hash source, destination, protocol: no ports */

struct xdpctl_lb_vip_key {
	__u32 addr[4];   /* network order; IPv4 in addr[0], the rest zero */
	__be16 port;     /* 0: every port */
	__u8 proto;      /* IPPROTO_TCP, IPPROTO_UDP, or XDPCTL_LB_PROTO_ADDR */
	__u8 family;     /* 4 or 6 */
};

struct xdpctl_lb_vip {
	__u32 id;        /* slot in the rings and VIP counters */
	__u32 mode;      /* enum xdpctl_lb_mode */
	__u32 flags;     /* XDPCTL_LB_F_* */
	__u32 ring_size; /* entries of the Maglev table (prime) */
	__u32 ipip_src[4]; /* outer source for ipip, network order, the VIP's family */
	__u64 table_gen; /* tables installed so far; informational */
};

/* The VIPs by id as well (an array, whose lookup the verifier inlines): a connection-table
 * hit reaches its VIP without the hash lookup. `used` 0: no VIP has this id. */
struct xdpctl_lb_vip_slot {
	struct xdpctl_lb_vip_key key;
	__u32 used;
	struct xdpctl_lb_vip vip;
};

/* Backend flags */
#define XDPCTL_LB_BE_F_USED (1u << 0)
/* Out of rotation by a failed health check (xdpd): the Maglev table gives it no position,
 * its connections stay; `weight` keeps the configured weight. Userspace only: the
 * datapath reads the table, not this bit. */
#define XDPCTL_LB_BE_F_DOWN (1u << 1)

struct xdpctl_lb_backend {
	__u32 addr[4];   /* network order; IPv4 in addr[0] */
	__u8 mac[6];     /* the L2 next hop: the backend itself for dsr */
	__u8 family;     /* 4 or 6 */
	__u8 pad;
	__u32 flags;     /* XDPCTL_LB_BE_F_* */
	__u32 vip_id;    /* the VIP it serves */
	__u32 weight;    /* 0 drains; the datapath reads the ring, not this */
	__u32 gen;       /* the slot's incarnation: +1 each time a backend is placed in it, kept
			  * when it is freed; a connection-table entry names it (xdpctl_lb_flow) */
};

/*
 * The connection table: ONE LRU hash shared by every CPU (per-CPU LRU lists, no common lock).
 * It was per CPU; a flow's packets do not stay on one CPU (veth, RSS changes), and a TCP SYN
 * that re-scheduled a reused 5-tuple on one CPU left the older entry on another CPU sending
 * the connection's later packets to the old backend (resets). One table: the SYN's choice is
 * the one every CPU sees. Lookups write nothing on a hit (cost: docs/load-balancing.md).
 */
struct xdpctl_lb_flow_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u16 pad;
};

/* Flow flags; a zeroed value is not valid. */
#define XDPCTL_LB_FLOW_F_VALID (1u << 0)
/* The marks of a flow cache copy (xdpctl_lb_fcache_slot.copy.flags). DSR_COPY: an older
 * build's copy (struct xdpctl_lb_flow where the copy is now, its hit checked the backend's
 * record); MAC_COPY: this build's (struct xdpctl_lb_fcache_copy). Each build answers only
 * from its own: the two builds may share the pinned cache while interfaces are reloaded one
 * by one, and neither reads the other's layout. */
#define XDPCTL_LB_FLOW_F_DSR_COPY (1u << 1)
#define XDPCTL_LB_FLOW_F_MAC_COPY (1u << 2)
/* This build's copy: a MAC copy whose hits count in the slot (xdpctl_lb_fcache_slot.hits),
 * not in the counters. */
#define XDPCTL_LB_FLOW_F_PEND_COPY (1u << 3)

/* An entry counts only while backend slot `backend` still holds incarnation `be_gen` of a
 * backend of VIP `vip_id`: a VIP deleted and made again, or a backend deleted and its slot
 * reused, never inherits the connections of the old one (the slot's gen moved on). */
struct xdpctl_lb_flow {
	__u32 backend;   /* backend slot */
	__u32 vip_id;
	__u32 flags;     /* XDPCTL_LB_FLOW_F_* */
	__u32 be_gen;    /* xdpctl_lb_backend.gen when the entry was made */
};

/*
 * The flow cache in front of the connection table (lib/bpf/lb_cache.h; design:
 * docs/load-balancing.md, "The flow cache"). Per CPU, direct-mapped: slot
 * xdpctl_lb_fcache_slot_of(key) holds a flow that met it empty (or holding a dead copy)
 * with a copy of its connection-table entry, read by inlined array lookups and compared inline, so an
 * established flow's packet pays no hash-table lookup (no call, no jhash of the 40-byte key).
 * A copy stays valid while its `gen` equals xdpctl_lb_fgen[slot], one word per slot shared by
 * every CPU: every insert into the connection table (a new flow, a SYN) raises the word of
 * its slot on all CPUs at once, and so does userspace after it writes the table itself
 * (LbMaps::conntrack_changed). The word is odd only while some CPU may hold a copy (copies
 * are made under odd words only; an insert leaves it even): a flow whose slot's word is even
 * has no copy anywhere, and its packet reads no slot. Copies are made for dsr VIPs only,
 * and hold what a hit needs to forward and count (struct xdpctl_lb_fcache_copy): the
 * backend's MAC, its slot and the VIP's id. A hit reads no backend record and no VIP: a copy
 * is made only from a table hit whose VIP and backend incarnation were checked (lib/bpf/lb.h,
 * lb_backend_of_flow), and userspace raises every word after it frees a backend or changes
 * a MAC (LbMaps::conntrack_changed), so no copy outlives what it was made from.
 */
#define XDPCTL_LB_FCACHE_BITS 13
#define XDPCTL_LB_FCACHE_SLOTS (1u << XDPCTL_LB_FCACHE_BITS)
/* One hit in this many goes to the connection table as a miss of the cache would, so the
 * LRU sees the flow as used and does not evict it while the cache serves it. */
#define XDPCTL_LB_FCACHE_REFRESH 64
/* What userspace adds to every xdpctl_lb_fgen word (even: the held bit stays): a copy made
 * before, or in flight (its gen a word read before), never equals the new word, unless the
 * slot saw 65,536 inserts meanwhile. */
#define XDPCTL_LB_FGEN_USER_STEP 0x10000u

/* What a copy holds besides its key. `flags` is where an older build's copy (a struct
 * xdpctl_lb_flow) had its flags, so each build tells the other's copies (the marks above). */
struct xdpctl_lb_fcache_copy {
	__u8 mac[6];     /* the backend's (xdpctl_lb_backend.mac), the frame's new destination */
	__u16 vip_id;    /* for the VIP's counters (< XDPCTL_LB_MAX_VIPS) */
	__u32 flags;     /* XDPCTL_LB_FLOW_F_VALID | XDPCTL_LB_FLOW_F_MAC_COPY */
	__u32 backend;   /* backend slot, for its counters */
};

struct xdpctl_lb_fcache_slot {
	__u64 key[5];               /* the flow key (struct xdpctl_lb_flow_key) as 64-bit words,
				     * its pad (bits 48-63 of key[4]) XDPCTL_LB_FCACHE_KEY_MARK */
	struct xdpctl_lb_fcache_copy copy;
	__u32 gen;                  /* xdpctl_lb_fgen[slot] when the copy was made */
	__u32 hits;                 /* the counts pending: hits the copy answered since it was made
				     * (bits below XDPCTL_LB_FCACHE_PEND_SHIFT) and their bytes (above) */
};

/*
 * The counts of a copy's hits (design: docs/load-balancing.md, "Counts pending in the cache"):
 * a hit adds 1 + (its length << XDPCTL_LB_FCACHE_PEND_SHIFT) to its slot's `hits` and writes
 * no counter. They are pending for the copy's backend (copy.backend), its VIP (copy.vip_id)
 * and the global ct_hit and tx counts until the datapath makes a copy in the slot again (a
 * refresh, or another flow's copy): it adds them to those counters first, on the same CPU.
 * Userspace adds what is pending to what it reads (LbMaps), and gives no VIP id or backend
 * slot that a slot's pending counts name to a new VIP or backend, so no count is lost or
 * lands on another. Hits below XDPCTL_LB_FCACHE_REFRESH: the bytes never reach the packets.
 * KEY_MARK: this build's copies hold the key with it (a real key's pad is 0), so an older
 * build never answers from them, nor adds its hits to our counts.
 */
#define XDPCTL_LB_FCACHE_PEND_SHIFT 6
#define XDPCTL_LB_FCACHE_KEY_MARK (0x5043ULL << 48)

/* The slot of a flow key's words (as in memory; only the datapath computes it): the words
 * folded by XOR, the last (ports, protocol, family) turned by 32 bits so that the ports fall
 * on the half an IPv4 address leaves zero, then one multiply, the top bits. One multiply,
 * not one a word: a direct-mapped cache needs spread, not a strong hash (two flows of one
 * slot are told apart by the whole key; the second is served by the connection table). */
static inline __u32 xdpctl_lb_fcache_slot_of(const __u64 *w)
{
	__u64 z = w[0] ^ w[1] ^ w[2] ^ w[3] ^ (w[4] << 32 | w[4] >> 32);

	return (__u32)((z * 0x9e3779b97f4a7c15ULL) >> (64 - XDPCTL_LB_FCACHE_BITS));
}

/* Per-CPU, per VIP (by id) and per backend (by slot). */
struct xdpctl_lb_ctr {
	__u64 packets;
	__u64 bytes;
	__u64 new_flows;
};

/* Per-CPU global LB counters (one array entry). */
enum xdpctl_lb_counter {
	XDPCTL_LB_CNT_CT_HIT = 0,      /* connection-table hits */
	XDPCTL_LB_CNT_CT_MISS,         /* misses: scheduled by the Maglev table */
	XDPCTL_LB_CNT_NO_BACKEND,      /* VIP with no backend of weight > 0: passed */
	XDPCTL_LB_CNT_TOO_BIG,         /* ipip: over the MTU once encapsulated: passed */
	XDPCTL_LB_CNT_FRAGMENT,        /* a fragment to a VIP address: passed */
	XDPCTL_LB_CNT_ICMP,            /* ICMP/ICMPv6 to a VIP address: passed */
	XDPCTL_LB_CNT_OTHER_PROTO,     /* another protocol to a VIP address: passed */
	XDPCTL_LB_CNT_VLAN,            /* VLAN-tagged packet to a VIP: passed (not balanced) */
	XDPCTL_LB_CNT_ERROR,           /* table, backend or head adjustment missing: passed */
	XDPCTL_LB_CNT_TX,              /* forwarded (XDP_TX) */
	XDPCTL_LB_CNT_MAX,
};

struct xdpctl_lb_stats {
	__u64 cnt[XDPCTL_LB_CNT_MAX];
};

/* Global switches, written by userspace. A packet pays one inlined array lookup unless some
 * VIP's address sets its destination's bit (xdpctl_lb_addr_bit) in addr_bits: traffic to
 * other addresses never reaches the VIP hash lookup. The wildcard-port lookup is done only
 * when some VIP has port 0. */
#define XDPCTL_LB_ADDR_BITS 65536
struct xdpctl_lb_ctl {
	__u32 n_vips;
	__u32 n_any_port; /* VIPs with port 0 */
	__u64 addr_bits[XDPCTL_LB_ADDR_BITS / 64];
};

/* The bit of an address (network-order words, IPv4 in a[0], the rest zero) in addr_bits. */
static inline __u32 xdpctl_lb_addr_bit(const __u32 *a)
{
	__u64 z = ((((__u64)(a[0] ^ a[2])) << 32) | (a[1] ^ a[3])) * 0x9e3779b97f4a7c15ULL;

	return (__u32)(z >> 48);
}

/* The TC decapsulator (tc/xdpctl_decap.bpf.c) strips IPIP/IP6IP6 headers addressed to
 * one of these (its map xdpctl_decap_dst, value unused). */
struct xdpctl_lb_decap_key {
	__u32 addr[4];   /* network order; IPv4 in addr[0] */
	__u32 family;    /* 4 or 6 */
};

/* The flow hash, shared so `lb trace` and the Maglev tests compute what the datapath does.
 * Over the words as they are in the packet (network order). The odd multipliers keep every
 * input bit; splitmix64's finaliser spreads them. */
static inline __u64 xdpctl_lb_mix(__u64 z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline __u32 xdpctl_lb_flow_hash(const __u32 *saddr, const __u32 *daddr, __u32 ports,
					__u32 proto)
{
	__u64 z = ((((__u64)saddr[0] << 32) | saddr[1]) * 0x9e3779b97f4a7c15ULL) ^
		  ((((__u64)saddr[2] << 32) | saddr[3]) * 0xc2b2ae3d27d4eb4fULL) ^
		  ((((__u64)daddr[0] << 32) | daddr[1]) * 0x165667b19e3779f9ULL) ^
		  ((((__u64)daddr[2] << 32) | daddr[3]) * 0xd6e8feb86659fd93ULL) ^
		  ((((__u64)ports << 8) | proto) * 0xff51afd7ed558ccdULL);

	return (__u32)(xdpctl_lb_mix(z) >> 32);
}

/* The ring position of a flow hash: [0, ring_size) by multiply-shift, no division. */
static inline __u32 xdpctl_lb_ring_pos(__u32 hash, __u32 ring_size)
{
	return (__u32)(((__u64)hash * ring_size) >> 32);
}

#ifdef __cplusplus
static_assert(sizeof(struct xdpctl_lb_vip_key) == 20, "xdpctl_lb_vip_key layout");
static_assert(sizeof(struct xdpctl_lb_vip) == 40, "xdpctl_lb_vip layout");
static_assert(sizeof(struct xdpctl_lb_vip_slot) == 64, "xdpctl_lb_vip_slot layout");
static_assert(sizeof(struct xdpctl_lb_backend) == 40, "xdpctl_lb_backend layout");
static_assert(sizeof(struct xdpctl_lb_flow_key) == 40, "xdpctl_lb_flow_key layout");
static_assert(sizeof(struct xdpctl_lb_flow) == 16, "xdpctl_lb_flow layout");
static_assert(sizeof(struct xdpctl_lb_ctr) == 24, "xdpctl_lb_ctr layout");
static_assert(sizeof(struct xdpctl_lb_fcache_slot) == 64, "xdpctl_lb_fcache_slot layout");
// The copy's flags where an older build's copy had xdpctl_lb_flow.flags (the marks tell them apart).
static_assert(__builtin_offsetof(struct xdpctl_lb_fcache_slot, copy.flags) == 40 + __builtin_offsetof(struct xdpctl_lb_flow, flags),
              "xdpctl_lb_fcache_copy.flags");
static_assert(XDPCTL_LB_FCACHE_REFRESH <= (1u << XDPCTL_LB_FCACHE_PEND_SHIFT), "the pending hits fit below the bytes");
static_assert(sizeof(struct xdpctl_lb_ctl) == 8 + XDPCTL_LB_ADDR_BITS / 8, "xdpctl_lb_ctl layout");
static_assert(sizeof(struct xdpctl_lb_decap_key) == 20, "xdpctl_lb_decap_key layout");
#endif
/* ==== end of load balancing ================================================================ */

#endif /* XDPCTL_ABI_H */
