/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Decision events (abi/xdpctl_abi.h, "decision events"): the rate check a --log rule makes
 * when it decides (log_take(), from the classifier) and the event the program then sends
 * (log_event_reserve() / log_event_submit(), around the hook's own copy of the packet).
 * Only programs loaded with XDPCTL_PATH_LOG reach any of it: without it the verifier
 * deletes every call, so a policy with no --log rule runs the code it ran before.
 */
#ifndef XDPCTL_BPF_TRACE_H
#define XDPCTL_BPF_TRACE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi/xdpctl_abi.h"

/* Per-CPU token buckets and counts, by ctr_slot: no atomics, no shared cache line. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPCTL_LOG_SLOTS);
	__type(key, __u32);
	__type(value, struct xdpctl_log_state);
} xdpctl_rlog SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, XDPCTL_EVENTS_RING_BYTES);
} xdpctl_events SEC(".maps");

/* Set by the loader (rodata): the possible CPUs, each of which gets 1/cfg_log_cpus of a
 * rule's rate. */
const volatile __u32 cfg_log_cpus = 1;

/* In a decision's action byte (lib/bpf/classify.h): the deciding rule sends an event. */
#define XDPCTL_POL_EMIT 0x80

#define XDPCTL_LOG_NSEC 1000000000ULL
/* Past this long without an event the bucket is full; below it el * rate cannot overflow
 * (log_rate <= XDPCTL_LOG_RATE_MAX). */
#define XDPCTL_LOG_FULL_NS (64 * XDPCTL_LOG_NSEC)

/*
 * Whether this CPU may send an event for the rule of counter slot `slot`: XDPCTL_POL_EMIT or
 * 0 (counted as not sent). Each CPU's bucket fills at `rate` nanotokens a ns, an event costs
 * cfg_log_cpus * 1e9 of them, and it holds one second's worth (at least one event).
 */
static __always_inline __u32 log_take(__u32 slot, __u32 rate)
{
	struct xdpctl_log_state *st = bpf_map_lookup_elem(&xdpctl_rlog, &slot);
	__u64 cost = (__u64)cfg_log_cpus * XDPCTL_LOG_NSEC, cap = (__u64)rate * XDPCTL_LOG_NSEC, now, el;
	__s64 tokens;

	if (!st)
		return 0;
	if (cap < cost)
		cap = cost;
	/* The coarse clock (a tick's resolution): a packet the bucket refuses must stay cheap,
	 * and bpf_ktime_get_ns() reads the clock source (~20-30 ns where it is a VM's kvm-clock,
	 * measured: bench/trace_overhead.sh), the coarse one a word the tick wrote. Over a second
	 * the refill is the same. */
	now = bpf_ktime_get_coarse_ns();
	el = now - st->last_ns;
	tokens = st->tokens_nano + (el >= XDPCTL_LOG_FULL_NS ? (__s64)cap : (__s64)(el * rate));
	if (tokens > (__s64)cap)
		tokens = (__s64)cap;
	st->last_ns = now;
	if (tokens < (__s64)cost) {
		st->tokens_nano = tokens;
		st->not_sent++;
		return 0;
	}
	st->tokens_nano = tokens - (__s64)cost;
	st->sent++;
	return XDPCTL_POL_EMIT;
}

/* An event with everything but the packet's bytes; NULL (counted) when the ring is full. */
static __always_inline struct xdpctl_event *log_event_reserve(__u32 hook, __u32 ifindex, __u32 iif_key,
							     __u32 rule_id, int drop, __u32 len)
{
	struct xdpctl_event *e = bpf_ringbuf_reserve(&xdpctl_events, sizeof(*e), 0);
	__u32 full = XDPCTL_LOG_RING_FULL_SLOT;
	struct xdpctl_log_state *st;

	if (!e) {
		st = bpf_map_lookup_elem(&xdpctl_rlog, &full);
		if (st)
			st->not_sent++;
		return NULL;
	}
	e->time_ns = bpf_ktime_get_ns();
	e->ifindex = ifindex;
	e->iif_key = iif_key;
	e->pad = 0;
	e->rule_id = rule_id;
	e->pkt_len = len;
	e->cap_len = 0;
	e->hook = hook;
	e->verdict = drop ? XDPCTL_ACT_DROP : XDPCTL_ACT_PASS;
	return e;
}

/* How many bytes of a frame of `len` an event copies: 1..XDPCTL_EVENT_SNAP, in a form the
 * verifier sees bounded (the copy helpers take no 0). */
static __always_inline __u32 log_snap_len(__u32 len)
{
	__u32 n = len < XDPCTL_EVENT_SNAP ? len : XDPCTL_EVENT_SNAP;

	asm volatile("" : "+r"(n));
	if (n < 1 || n > XDPCTL_EVENT_SNAP)
		n = 1;
	return n;
}

/* `copied`: bytes of the frame now in e->data (0: the copy failed). */
static __always_inline void log_event_submit(struct xdpctl_event *e, __u32 copied)
{
	e->cap_len = copied;
	bpf_ringbuf_submit(e, 0);
}

#endif
