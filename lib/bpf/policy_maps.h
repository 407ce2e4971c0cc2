/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The filtering policy's maps (layout: the "filtering policy" section of abi/xdpctl_abi.h).
 * Both programs include this one header, and the loader pins every map by name under
 * /sys/fs/bpf/xdpctl/maps/, so every program on every interface reads one policy.
 * Writer: lib/policy/policy_maps.cpp.
 *
 * Fixed-size tables are plain arrays, which the verifier inlines (an array lookup is a
 * bounds check and an add). They are mmapable so that a commit fills a generation with
 * plain stores instead of 100,000 map updates.
 */
#ifndef XDPCTL_BPF_POLICY_MAPS_H
#define XDPCTL_BPF_POLICY_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi/xdpctl_abi.h"
#include "bpf/prefix_table.h"

/* The generation packets use; written by userspace with one update per commit. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdpctl_pol_ctl);
} xdpctl_pctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XDPCTL_POL_GENS);
	__type(key, __u32);
	__type(value, struct xdpctl_pol_hdr);
} xdpctl_phdr SEC(".maps");

/* A one-field policy's decisions by class (see the ABI header). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XDPCTL_POL_GENS * XDPCTL_POL_DIRS * XDPCTL_POL_DECIDE_LINES);
	__type(key, __u32);
	__type(value, struct xdpctl_pol_decide_line);
} xdpctl_pdecide SEC(".maps");

/* Element XDPCTL_POL_GD(gen, dir): a small policy's rules (see the ABI header). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XDPCTL_POL_GENS * XDPCTL_POL_DIRS);
	__type(key, __u32);
	__type(value, struct xdpctl_pol_small);
} xdpctl_psmall SEC(".maps");

/* Element XDPCTL_POL_GD(gen, dir): a direction's anchor lists and the rules on them, laid out
 * as the ABI header says (XDPCTL_POL_ANC_*): one inlined lookup, then plain loads. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XDPCTL_POL_GENS * XDPCTL_POL_DIRS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, XDPCTL_POL_ANC_BYTES);
} xdpctl_panc SEC(".maps");

/* The flow cache (see the ABI header): per CPU, so no entry is shared or locked. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPCTL_POL_FLOW_SLOTS);
	__type(key, __u32);
	__type(value, struct xdpctl_pol_flow);
} xdpctl_pflow SEC(".maps");

/* Line XDPCTL_POL_GD(gen, dir) * 2 * XDPCTL_POL_PORT_LINES + (0 sport | 1 dport) * ... */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XDPCTL_POL_GENS * XDPCTL_POL_DIRS * 2 * XDPCTL_POL_PORT_LINES);
	__type(key, __u32);
	__type(value, struct xdpctl_pol_cls_line);
} xdpctl_pport SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XDPCTL_POL_GENS * XDPCTL_POL_DIRS * XDPCTL_POL_L4_LINES);
	__type(key, __u32);
	__type(value, struct xdpctl_pol_cls_line);
} xdpctl_pl4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XDPCTL_POL_GENS * XDPCTL_POL_DIRS * XDPCTL_POL_VLAN_LINES);
	__type(key, __u32);
	__type(value, struct xdpctl_pol_cls_line);
} xdpctl_pvlan SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XDPCTL_POL_GENS * XDPCTL_POL_DIRS * XDPCTL_POL_IIF_LINES);
	__type(key, __u32);
	__type(value, struct xdpctl_pol_cls_line);
} xdpctl_piif SEC(".maps");

/* Rule records by rank: XDPCTL_POL_GD(gen, dir) * XDPCTL_POL_MAX_RANKS + rank. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XDPCTL_POL_GENS * XDPCTL_POL_DIRS * XDPCTL_POL_MAX_RANKS);
	__type(key, __u32);
	__type(value, struct xdpctl_rule_rec);
} xdpctl_prule SEC(".maps");

/* By counter slot, not by generation: counters outlive commits. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPCTL_POL_COUNTER_SLOTS);
	__type(key, __u32);
	__type(value, struct xdpctl_rule_ctr);
} xdpctl_rctr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPCTL_POL_COUNTER_SLOTS);
	__type(key, __u32);
	__type(value, struct xdpctl_rate_bucket);
} xdpctl_rrate SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPCTL_POL_COUNTER_SLOTS);
	__type(key, __u32);
	__type(value, struct xdpctl_rate_purse);
} xdpctl_rpurse SEC(".maps");

/*
 * Address tables and rows: sized per generation (inner maps with BPF_F_INNER_MAP), so a
 * 10-rule policy takes kilobytes and a 10,000-rule one what it needs. Lookups into them are
 * calls (the verifier inlines only lookups into maps whose size it knows).
 * The templates give the value's size, not its type: clang emits a type reached through two
 * levels of pointers (outer map -> inner definition -> value) as a forward declaration,
 * whose size libbpf cannot read.
 */
/* The prefix tables' inner map (lib/bpf/prefix_table.h): type, flags and value size match. */
struct xdpctl_pol_tab_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE | BPF_F_INNER_MAP);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, XDPCTL_PFX_LINE_BYTES);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, XDPCTL_POL_GENS * XDPCTL_POL_TABS_PER_GEN);
	__type(key, __u32);
	__array(values, struct xdpctl_pol_tab_map);
} xdpctl_ptabs SEC(".maps");

/* Elements of 4 MiB: one lookup, then plain loads anywhere in it. */
struct xdpctl_pol_rows_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE | BPF_F_INNER_MAP);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, XDPCTL_POL_ROWS_ELEM_BYTES);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, XDPCTL_POL_GENS);
	__type(key, __u32);
	__array(values, struct xdpctl_pol_rows_map);
} xdpctl_prows SEC(".maps");

/* IPv4 level 1 of every address table (XDPCTL_POL_L1): an inlined lookup. */
struct xdpctl_pol_l1 {
	__u32 word[XDPCTL_PFX_L1_ENTRIES];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XDPCTL_POL_GENS * XDPCTL_POL_TABS_PER_GEN);
	__type(key, __u32);
	__type(value, struct xdpctl_pol_l1);
} xdpctl_pl1 SEC(".maps");

/* Sets' own tables (abi: "Sets' own tables"): the tables, their IPv4 level 1s (inlined), and
 * per (gen, dir, dst) a split field's sets and node classes (inlined). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, XDPCTL_POL_SET_SLOTS);
	__type(key, __u32);
	__array(values, struct xdpctl_pol_tab_map);
} xdpctl_pset SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XDPCTL_POL_SET_SLOTS);
	__type(key, __u32);
	__type(value, struct xdpctl_pol_l1);
} xdpctl_psl1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XDPCTL_POL_GENS * XDPCTL_POL_TABS_PER_GEN);
	__type(key, __u32);
	__type(value, struct xdpctl_pol_split);
} xdpctl_psplit SEC(".maps");

/* A small policy's rows (XDPCTL_POL_SMALL_ROWS_BYTES): element gen, an inlined lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XDPCTL_POL_GENS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, XDPCTL_POL_SMALL_ROWS_BYTES);
} xdpctl_prows_small SEC(".maps");

#endif
