/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps every xdpctl program declares. The loader pins them per interface under
 * /sys/fs/bpf/xdpctl/.../IFACE/, so the XDP and TC objects loaded on one interface
 * share one instance, and a reload finds (and keeps) the counters.
 */
#ifndef XDPCTL_BPF_MAPS_H
#define XDPCTL_BPF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "abi/xdpctl_abi.h"

/* Per-CPU: no atomics on the hot path, userspace sums the CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPCTL_HOOK_MAX);
	__type(key, __u32);
	__type(value, struct xdpctl_hook_stats);
} xdpctl_stats SEC(".maps");

/* Written by userspace only: what is loaded on this interface. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdpctl_iface_meta);
} xdpctl_meta SEC(".maps");

/*
 * The policy as the user wrote it, for `rule list`, `export` and the next commit: the
 * policy image (lib/policy/policy_binary.h) of each generation in chunks, key
 * (gen << 24) | chunk; chunk 0 starts with the image's length (u64). No datapath reads it.
 * A rule's counter slot is read from the active generation's rule records (xdpctl_prule).
 */
struct xdpctl_src_chunk {
	__u8 data[XDPCTL_SRC_CHUNK_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, XDPCTL_SRC_MAX_CHUNKS);
	__type(key, __u32);
	__type(value, struct xdpctl_src_chunk);
} xdpctl_psrc SEC(".maps");


#endif
