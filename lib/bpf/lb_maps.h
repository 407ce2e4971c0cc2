/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The load balancer's maps (layout: the "load balancing" section of abi/xdpctl_abi.h). Only
 * the XDP program declares them; the loader pins them by name under /sys/fs/bpf/xdpctl/maps/
 * like the policy maps, so they outlive reloads and every interface serves the same VIPs.
 * Writer: lib/lb/lb_maps.cpp.
 */
#ifndef XDPCTL_BPF_LB_MAPS_H
#define XDPCTL_BPF_LB_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi/xdpctl_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdpctl_lb_ctl);
} xdpctl_lb_ctl SEC(".maps");

/* Replaced whole by userspace (no preallocation: an update swaps in a new element under RCU,
 * so a reader never sees half of one). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 2 * XDPCTL_LB_MAX_VIPS);  /* the VIPs and their address markers */
	__type(key, struct xdpctl_lb_vip_key);
	__type(value, struct xdpctl_lb_vip);
} xdpctl_lb_vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPCTL_LB_MAX_VIPS);
	__type(key, __u32);
	__type(value, struct xdpctl_lb_vip_slot);
} xdpctl_lb_vip_ids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPCTL_LB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct xdpctl_lb_backend);
} xdpctl_lb_backends SEC(".maps");

/* A VIP's Maglev table: ring_size backend slots. Sized per VIP (BPF_F_INNER_MAP). */
struct xdpctl_lb_ring_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, XDPCTL_LB_MAX_VIPS);
	__type(key, __u32);
	__array(values, struct xdpctl_lb_ring_map);
} xdpctl_lb_rings SEC(".maps");

/* The connection table, one for all CPUs (why: abi/xdpctl_abi.h). BPF_F_NO_COMMON_LRU keeps
 * an LRU list per CPU, so a new flow takes no lock another CPU holds. Its size is set by the
 * load that creates it (loader: --lb-conntrack). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__uint(max_entries, XDPCTL_LB_CT_DEFAULT);
	__type(key, struct xdpctl_lb_flow_key);
	__type(value, struct xdpctl_lb_flow);
} xdpctl_lb_ct SEC(".maps");

/* The flow cache (abi: struct xdpctl_lb_fcache_slot): a per-CPU array, whose lookup the
 * verifier inlines, and the generation words all CPUs share. Pinned like the others, so every
 * interface's program invalidates the same copies. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPCTL_LB_FCACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct xdpctl_lb_fcache_slot);
} xdpctl_lb_fcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPCTL_LB_FCACHE_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} xdpctl_lb_fgen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPCTL_LB_MAX_VIPS);
	__type(key, __u32);
	__type(value, struct xdpctl_lb_ctr);
} xdpctl_lb_vctr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPCTL_LB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct xdpctl_lb_ctr);
} xdpctl_lb_bctr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdpctl_lb_stats);
} xdpctl_lb_stats SEC(".maps");

#endif
