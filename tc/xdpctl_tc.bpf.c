/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdpctl on TC ingress and egress (tcx links, or clsact direct-action as the fallback).
 * Same parser, classifier and counters as XDP: ingress rules on ingress, egress rules on
 * egress. `--iif` matches the device the hook runs on (its key, cfg_iif_key): on egress that
 * is the egress device. "Pass" returns TCX_NEXT (== TC_ACT_UNSPEC) so that programs after ours
 * still run.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "bpf/parse.h"
#include "bpf/count.h"
#include "bpf/classify.h"
#include "bpf/explain.h"
#include "bpf/trace.h"

/*
 * Set by the loader (rodata): 0 when xdpctl's XDP program runs on the same interface, which
 * has already applied the ingress rules to every packet TC ingress sees: applying them
 * again would count count-rules twice and spend rate limits twice.
 */
const volatile __u32 cfg_tc_ingress_rules = 1;

/* Headers xdpctl may need to read; pulled into the linear area only when missing. */
#define TC_PULL_LEN 512

/* A --log rule's event (lib/bpf/trace.h); the bytes through the helper, which reads the
 * non-linear part too. */
static __noinline void tc_log_event(struct __sk_buff *skb, __u32 hook, __u32 rule_id, int drop)
{
	struct xdpctl_event *e = log_event_reserve(hook, skb->ifindex, pol_iif_key(skb, hook), rule_id,
							     drop, skb->len);
	__u32 n = log_snap_len(skb->len);

	if (e)
		log_event_submit(e, bpf_skb_load_bytes(skb, 0, e->data, n) ? 0 : n);
}

static __always_inline int tc_handle(struct __sk_buff *skb, __u32 hook)
{
	struct pkt p = {};
	__u32 rule_id = 0, verdict = 0;
	int bad, drop;

	/*
	 * A GRO/GSO skb may keep headers outside its linear part. Pull them in first, paying
	 * only on such skbs: parsing twice would double what the verifier has to walk.
	 */
	__u32 linear = skb->data_end - skb->data;
	if (linear < skb->len && linear < TC_PULL_LEN)
		bpf_skb_pull_data(skb, skb->len < TC_PULL_LEN ? skb->len : TC_PULL_LEN);

	bad = parse_packet((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, &p);
	if (bad)
		drop = malformed_drop(bad);
	else if (hook == XDPCTL_HOOK_TC_INGRESS && !cfg_tc_ingress_rules)
		drop = 0;
	else {
		verdict = classify(&p, hook == XDPCTL_HOOK_TC_EGRESS, skb, hook, &rule_id);
		drop = (verdict & ~XDPCTL_POL_EMIT) == XDPCTL_ACT_DROP;
	}
	if (cfg_explain)  /* explain changes no counter */
		explain_verdict(hook, &p, bad, drop, rule_id, skb->ifindex);
	else
		count_packet(hook, &p, bad, drop);
	if (pol_has(XDPCTL_PATH_LOG) && (verdict & XDPCTL_POL_EMIT))
		tc_log_event(skb, hook, rule_id, drop);
	return drop ? TCX_DROP : TCX_NEXT;
}

SEC("tcx/ingress")
int xdpctl_tc_in(struct __sk_buff *skb)
{
	return tc_handle(skb, XDPCTL_HOOK_TC_INGRESS);
}

SEC("tcx/egress")
int xdpctl_tc_eg(struct __sk_buff *skb)
{
	return tc_handle(skb, XDPCTL_HOOK_TC_EGRESS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
