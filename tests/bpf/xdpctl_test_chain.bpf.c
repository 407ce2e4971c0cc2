/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Programs that run beside xdpctl's in tests/test_chain.cpp: XDP programs for `load --next`
 * (single- and multi-buffer) and tcx programs attached before and after xdpctl's. Each
 * counts what it sees (packets, whole-frame bytes) in `seen`; the tcx ones drop UDP to one
 * port each, so that the test sees which ran first.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum { SEEN_NEXT, SEEN_NEXT_FRAGS, SEEN_TC_BEFORE, SEEN_TC_AFTER, SEEN_MAX };

struct seen {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SEEN_MAX);
	__type(key, __u32);
	__type(value, struct seen);
} seen SEC(".maps");

/* UDP ports the tcx programs drop (the test's choice, before load). */
const volatile __u16 drop_port_before = 0;
const volatile __u16 drop_port_after = 0;

static __always_inline void count(__u32 slot, __u64 bytes)
{
	struct seen *s = bpf_map_lookup_elem(&seen, &slot);

	if (s) {
		__sync_fetch_and_add(&s->packets, 1);
		__sync_fetch_and_add(&s->bytes, bytes);
	}
}

/* The UDP destination port of an IPv4 frame (host order), 0 for any other. */
static __always_inline __u16 udp_dport(void *data, void *end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 ||
	    ip->protocol != IPPROTO_UDP)
		return 0;
	return bpf_ntohs(udp->dest);
}

SEC("xdp")
int test_next(struct xdp_md *ctx)
{
	count(SEEN_NEXT, ctx->data_end - ctx->data);
	return XDP_PASS;
}

SEC("xdp.frags")
int test_next_frags(struct xdp_md *ctx)
{
	count(SEEN_NEXT_FRAGS, bpf_xdp_get_buff_len(ctx));
	return XDP_PASS;
}

static __always_inline int tc_step(struct __sk_buff *skb, __u32 slot, __u16 port)
{
	count(slot, skb->len);
	return port && udp_dport((void *)(long)skb->data, (void *)(long)skb->data_end) == port ? TCX_DROP
											      : TCX_NEXT;
}

SEC("tcx/ingress")
int test_tc_before(struct __sk_buff *skb)
{
	return tc_step(skb, SEEN_TC_BEFORE, drop_port_before);
}

SEC("tcx/ingress")
int test_tc_after(struct __sk_buff *skb)
{
	return tc_step(skb, SEEN_TC_AFTER, drop_port_after);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
