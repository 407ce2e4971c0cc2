/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The load balancer's decapsulator, for the backends of `ipip` VIPs (TC ingress, tcx): an
 * IPv4-in-IPv4 or IPv6-in-IPv6 packet whose outer destination is one of this host's
 * addresses listed in xdpctl_decap_dst loses its outer header, so the inner packet, to the
 * VIP, reaches the socket listening on the VIP (held on lo). The kernel's ipip/ip6_tunnel
 * modules are not needed (and not in every kernel). Outer headers with options or extension
 * headers, and outer fragments, are left to the stack.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi/xdpctl_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct xdpctl_lb_decap_key);
	__type(value, __u32);
} xdpctl_decap_dst SEC(".maps");

/* Per-CPU packets and bytes decapsulated (slot 0: IPv4, 1: IPv6). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct xdpctl_ctr);
} xdpctl_decap_stats SEC(".maps");

#define IPV4_FRAG_MASK 0x3fff /* MF and the offset */

static __always_inline int decap(struct __sk_buff *skb, __u32 family, __u32 hlen)
{
	__u32 idx = family == 6;
	struct xdpctl_ctr *c;
	__u32 len = skb->len;

	if (bpf_skb_adjust_room(skb, -(__s32)hlen, BPF_ADJ_ROOM_MAC, 0))
		return TCX_NEXT;
	c = bpf_map_lookup_elem(&xdpctl_decap_stats, &idx);
	if (c) {
		c->packets++;
		c->bytes += len;
	}
	return TCX_NEXT;
}

SEC("tcx/ingress")
int xdpctl_decap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct xdpctl_lb_decap_key k = {};
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return TCX_NEXT;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_IPIP || ip->ihl != 5 ||
		    (ip->frag_off & bpf_htons(IPV4_FRAG_MASK)))
			return TCX_NEXT;
		k.addr[0] = ip->daddr;
		k.family = 4;
		if (!bpf_map_lookup_elem(&xdpctl_decap_dst, &k))
			return TCX_NEXT;
		return decap(skb, 4, sizeof(*ip));
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_IPV6)
			return TCX_NEXT;
		__builtin_memcpy(k.addr, &ip6->daddr, sizeof(k.addr));
		k.family = 6;
		if (!bpf_map_lookup_elem(&xdpctl_decap_dst, &k))
			return TCX_NEXT;
		return decap(skb, 6, sizeof(*ip6));
	}
	return TCX_NEXT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
