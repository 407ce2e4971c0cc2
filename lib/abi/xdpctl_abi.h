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
	__u32 pad;
	__u64 loaded_at_ns;   /* CLOCK_REALTIME of the first load */
	__u64 reloaded_at_ns; /* CLOCK_REALTIME of the last load --force, or 0 */
};

/* xdpctl created the clsact qdisc (so unload removes it; one it found stays). */
#define XDPCTL_META_F_CREATED_CLSACT (1u << 0)

#define XDPCTL_ABI_VERSION 1

/* clsact fallback: the handle and priority xdpctl's own filters use, so unload finds them. */
#define XDPCTL_TC_HANDLE 0x58d9
#define XDPCTL_TC_PRIORITY 0xc7

#ifdef __cplusplus
static_assert(sizeof(struct xdpctl_ctr) == 16, "xdpctl_ctr layout");
static_assert(sizeof(struct xdpctl_hook_stats) == 16 * XDPCTL_CNT_MAX, "xdpctl_hook_stats layout");
static_assert(sizeof(struct xdpctl_iface_meta) == 48, "xdpctl_iface_meta layout");
#endif



/* ==== filtering policy (issue 4) ============================================================
 * The compiled policy (lib/policy/compiled_policy.h) in BPF maps, lookup in lib/bpf/classify.h,
 * writer in lib/policy/policy_maps.cpp. Every table exists twice, one per generation; a commit
 * fills the generation not in use and flips xdpctl_pol_ctl.gen with one map update, so a
 * packet, which reads gen once, sees the old policy or the new one, never a mix.
 * Fields, in row order: src, dst, sport, dport, l4 (later-fragment, proto, tcp flags), vlan, iif.
 */
#define XDPCTL_POL_GENS 2
#define XDPCTL_POL_DIRS 2            /* 0 ingress (XDP, TC ingress), 1 egress (TC egress) */
#define XDPCTL_POL_FIELDS 7
#define XDPCTL_POL_MAX_RULES 10000   /* per direction */
#define XDPCTL_POL_MAX_WORDS ((XDPCTL_POL_MAX_RULES + 63) / 64)
#define XDPCTL_POL_MAX_AGG ((XDPCTL_POL_MAX_WORDS + 63) / 64)
#define XDPCTL_POL_PORTS 65536
#define XDPCTL_POL_L4_ENTRIES (2 * 256 * 256) /* (later_fragment << 16) | (proto << 8) | tcp flags */
#define XDPCTL_POL_VLAN_ENTRIES 4097         /* VLAN ID, or 4096 for untagged */
#define XDPCTL_POL_IIF_ENTRIES 4096          /* ifindex; larger ones use iif_other */
#define XDPCTL_POL_COUNTER_SLOTS (2 * XDPCTL_POL_MAX_RULES + 1024)
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
	__u32 row_words;        /* agg_words + words */
	__u32 rows_offset;      /* first u64 of this direction's rows in the generation's rows map */
	__u32 row_base[XDPCTL_POL_FIELDS]; /* row of class 0 of each field */
	__u32 src_nonip;        /* classes for packets without the field */
	__u32 dst_nonip;
	__u32 sport_none;
	__u32 dport_none;
	__u32 l4_nonip;
	__u32 iif_other;
	__u32 pad[6];
};

struct xdpctl_pol_hdr {
	__u32 default_action;   /* XDPCTL_ACT_PASS or XDPCTL_ACT_DROP */
	__u32 pad;
	struct xdpctl_pol_dir_hdr dir[XDPCTL_POL_DIRS];
};

struct xdpctl_pol_ctl {
	__u32 gen;              /* the generation packets use */
	__u32 installed;        /* 0: no policy ever committed: every packet passes unclassified */
	__u64 commits;          /* how many commits; informational */
};

/* A rule by rank (evaluation order) in one generation and direction. */
struct xdpctl_rule_rec {
	__u32 id;               /* stable rule id */
	__u32 action;           /* enum xdpctl_pol_action */
	__u32 ctr_slot;         /* index into the per-CPU rule counters (stable per id) */
	__u32 pad;
	__u64 rate_pps;         /* rate-limit */
	__u64 burst;
};

/* Per-CPU, per rule (by ctr_slot): what `rule list` sums. */
struct xdpctl_rule_ctr {
	__u64 packets;
	__u64 bytes;
	__u64 last_hit_ns;      /* bpf_ktime_get_ns() of the last hit on this CPU */
};

/* Shared by all CPUs, per rule (by ctr_slot): the rate limiter's bucket. */
struct xdpctl_rate_bucket {
	__u64 tokens_nano;      /* tokens * 1e9, so refills of a fraction of a token add up */
	__u64 last_ns;
};

#ifdef __cplusplus
static_assert(sizeof(struct xdpctl_pol_dir_hdr) == 4 * 24, "xdpctl_pol_dir_hdr layout");
static_assert(sizeof(struct xdpctl_rule_rec) == 32, "xdpctl_rule_rec layout");
#endif
/* ==== end of filtering policy ============================================================== */

#endif /* XDPCTL_ABI_H */
