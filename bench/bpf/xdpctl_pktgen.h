/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared by xdpctl_pktgen.bpf.c and xdpctl-pktgen (bench/pktgen/): the per-CPU flow cursor. */
#ifndef XDPCTL_PKTGEN_H
#define XDPCTL_PKTGEN_H

#include <linux/types.h>

/*
 * Where a generator thread is in the sequence of flows. Each thread runs on its own CPU, so
 * a per-CPU value needs no atomics; thread k of n starts at k and steps by n, which makes
 * the threads' frames together walk the flows in order instead of each repeating them.
 */
struct xdpctl_pktgen_cursor {
	__u64 next;
	__u64 step;
};

#ifdef __cplusplus
static_assert(sizeof(struct xdpctl_pktgen_cursor) == 16, "cursor layout is shared with BPF");
#endif

#endif
