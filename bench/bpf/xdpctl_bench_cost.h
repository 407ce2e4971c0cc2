/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared by xdpctl_bench_empty.bpf.c and xdpctl-costmodel (bench/cost_model.cpp). */
#ifndef XDPCTL_BENCH_COST_H
#define XDPCTL_BENCH_COST_H

/* Helper calls bench_xdp_calls makes a run: enough that their cost stands well above the
 * run-to-run noise of the empty program (~0.3 ns), few enough to stay in the i-cache. */
#define XDPCTL_BENCH_HELPER_CALLS 32

#endif
