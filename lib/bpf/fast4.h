/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The common frame's parse, into registers: untagged IPv4 with no options and no fragment,
 * TCP or UDP, well-formed by every check of parse_packet (lib/bpf/parse.h). What a program
 * needs of such a frame (the counters' L4 index, the protocol, the TCP flags, the headers'
 * places) comes back in a struct that never escapes, so clang keeps it in registers: no
 * packet record on the stack and no parser of every case between the reads. A frame that is
 * anything else (VLAN, IPv6, options, fragments, other protocols, truncated or malformed)
 * returns 0 untouched, for parse_packet, which names its fault.
 * Users: lib/bpf/lb_fast.h (the balancer's program) and count_fast4 below (the
 * parse-and-count program).
 */
#ifndef XDPCTL_BPF_FAST4_H
#define XDPCTL_BPF_FAST4_H

#include "bpf/parse.h"
#include "bpf/count.h"

struct fast4 {
	struct iphdr *iph;
	__u8 *l4;     /* the TCP or UDP header, its fixed part readable */
	__u32 len;    /* the frame's (data_end - data: the first buffer is the frame) */
	__u32 l4_cnt; /* XDPCTL_CNT_L4_TCP or XDPCTL_CNT_L4_UDP */
	__u8 proto;
	__u8 flags;   /* TCP's flags byte; 0 for UDP */
};

/* 1 and *f when the frame is the common one; 0 and nothing read for the caller otherwise. */
static __always_inline int fast4_parse(struct xdp_md *ctx, struct fast4 *f)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 len = end - data;
	struct iphdr *iph = data + ETH_HLEN;
	__u8 *l4 = (__u8 *)(iph + 1);
	__u32 tot_len, l4_len;
	__u8 proto;

	/* the fixed TCP header's length covers UDP's too: a shorter UDP frame takes the
	 * general path */
	if ((void *)(l4 + sizeof(struct tcphdr)) > end)
		return 0;
	if (*(const __be16 *)(data + ETH_ALEN * 2) != bpf_htons(ETH_P_IP) || *(__u8 *)iph != 0x45 ||
	    (iph->frag_off & bpf_htons(IPV4_MF | IPV4_OFFSET_MASK)))
		return 0;
	/* parse_ipv4's and parse_l4's checks, a fault left to them (they name it) */
	tot_len = bpf_ntohs(iph->tot_len);
	if (tot_len < sizeof(*iph) || tot_len > len - ETH_HLEN)
		return 0;
	l4_len = tot_len - sizeof(*iph);
	proto = iph->protocol;
	f->flags = 0;
	if (proto == IPPROTO_TCP) {
		__u32 doff = l4[12] >> 4;

		if (doff < 5 || doff * 4 > l4_len)
			return 0;
		f->flags = l4[13];
		f->l4_cnt = XDPCTL_CNT_L4_TCP;
	} else if (proto == IPPROTO_UDP) {
		if (sizeof(struct udphdr) > l4_len)
			return 0;
		f->l4_cnt = XDPCTL_CNT_L4_UDP;
	} else {
		return 0;
	}
	f->iph = iph;
	f->l4 = l4;
	f->len = len;
	f->proto = proto;
	return 1;
}

/* The packet record parse_packet makes of the common frame, from fast4_parse's registers and
 * the addresses and ports its caller read (lib/bpf/lb_fast.h for the connection table's
 * step, lib/bpf/policy_fast.h for the small rules' compares). */
static __always_inline struct pkt fast4_record(const struct fast4 *f, __u32 saddr, __u32 daddr, __be16 sport,
					       __be16 dport)
{
	return (struct pkt){
		.len = f->len,
		.l3_proto = ETH_P_IP,
		.l4_proto = f->proto,
		.tcp_flags = f->flags,
		.l3_cnt = XDPCTL_CNT_L3_IPV4,
		.l4_cnt = f->l4_cnt,
		.sport = sport,
		.dport = dport,
		.l3_off = ETH_HLEN,
		.l4_off = ETH_HLEN + sizeof(struct iphdr),
		.saddr = {saddr},
		.daddr = {daddr},
	};
}

/* The parse-and-count program's common frame (xdp/xdpctl_xdp.bpf.c, XDP_PATHS_NONE):
 * counted as parse_packet and count_packet count it (L3 IPv4, its L4, passed). 1 when
 * counted; 0 and nothing counted for any other frame. */
static __always_inline int count_fast4(struct xdp_md *ctx)
{
	struct fast4 f;

	if (!fast4_parse(ctx, &f))
		return 0;
	count_passed(XDPCTL_HOOK_XDP, XDPCTL_CNT_L3_IPV4, f.l4_cnt, f.len);
	return 1;
}

#endif
