/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one packet parser of xdpctl, used by the XDP and the TC programs alike.
 * Small always-inline steps, each checking `ptr + size > end` before it reads
 * (the verifier demands it, and it is what makes truncated frames safe).
 * parse_packet() returns 0 or the XDPCTL_CNT_BAD_* reason of the first fault.
 */
#ifndef XDPCTL_BPF_PARSE_H
#define XDPCTL_BPF_PARSE_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi/xdpctl_abi.h"
#include "bpf/packet.h"

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

#define IPV4_MF 0x2000
#define IPV4_OFFSET_MASK 0x1fff
#define IPV6_FRAG_OFFSET_MASK 0xfff8
#define IPV6_FRAG_MF 0x0001

struct cursor {
	void *pos;
	void *start;
	void *end;
	/*
	 * Offset where the IP packet ends (its length field says so), once the IP header
	 * parsed; the frame length before. Ethernet padding lies between it and the frame's
	 * end and holds no header: headers past L3 must end within it, not only within `end`
	 * (which the verifier needs, and which includes the padding).
	 */
	__u32 limit;
};

struct vlan_tag {
	__be16 tci;
	__be16 next_proto;
};

/* ICMP and ICMPv6 share this 8-byte layout. linux/icmp.h drags in libc headers. */
struct icmp_min {
	__u8 type;
	__u8 code;
	__be16 checksum;
	__be32 rest;
};

/* The fragment header; its first two bytes are also every extension header's. */
struct ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved; /* hdrlen in the other extension headers */
	__be16 frag_off;
	__be32 identification;
};

/* Headers end within the first 4 KiB of a frame, or the frame is malformed. */
#define XDPCTL_MAX_HDR_OFF 0xfff

/* Masks an offset already checked to be <= XDPCTL_MAX_HDR_OFF; clang would drop a plain
 * mask as redundant, the empty asm keeps it for the verifier. */
static __always_inline __u32 bound_off(__u32 off)
{
	asm volatile("" : "+r"(off));
	return off & XDPCTL_MAX_HDR_OFF;
}

static __always_inline __u16 cursor_off(const struct cursor *c)
{
	return (__u16)(c->pos - c->start);
}

/* Ethernet and up to XDPCTL_MAX_VLANS 802.1Q/802.1ad tags. Sets l3_proto. */
static __always_inline int parse_eth(struct cursor *c, struct pkt *p)
{
	struct ethhdr *eth = c->pos;
	__u16 proto;

	if ((void *)(eth + 1) > c->end)
		return XDPCTL_CNT_BAD_ETH_TRUNCATED;
	c->pos = eth + 1;
	/* One 16-bit load: struct ethhdr is packed, and through its member clang reads the type
	 * a byte at a time. A frame starts 2-byte aligned or better (lb.h: lb_set_macs). */
	proto = bpf_ntohs(*(const __be16 *)((const __u8 *)eth + ETH_ALEN * 2));

	/* An untagged frame (the common one) skips the tag loop and its last check. */
	if (__builtin_expect(proto == ETH_P_8021Q || proto == ETH_P_8021AD, 0)) {
#pragma unroll
		for (int i = 0; i < XDPCTL_MAX_VLANS; i++) {
			struct vlan_tag *tag = c->pos;

			if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
				break;
			if ((void *)(tag + 1) > c->end)
				return XDPCTL_CNT_BAD_VLAN_TRUNCATED;
			p->vlan_id[i] = bpf_ntohs(tag->tci) & 0x0fff;
			p->n_vlans = i + 1;
			proto = bpf_ntohs(tag->next_proto);
			c->pos = tag + 1;
		}
		if (proto == ETH_P_8021Q || proto == ETH_P_8021AD)
			return XDPCTL_CNT_BAD_VLAN_TOO_MANY;
	}
	/* l3_cnt: parse_packet, which tests the protocol once for both */
	p->l3_proto = proto;
	return 0;
}

/* IPv4 with options. Returns the next protocol through *proto. */
static __always_inline int parse_ipv4(struct cursor *c, struct pkt *p, __u8 *proto)
{
	struct iphdr *iph = c->pos;
	__u32 hlen, tot_len, l3_len;

	if ((void *)(iph + 1) > c->end)
		return XDPCTL_CNT_BAD_IPV4_TRUNCATED;
	/* The common header, version 4 and no options, in one compare: the check above covers
	 * it. Options take the general checks. */
	if (*(__u8 *)iph == 0x45) {
		hlen = sizeof(*iph);
	} else {
		if (iph->version != 4 || iph->ihl < 5)
			return XDPCTL_CNT_BAD_IPV4_HDR;
		hlen = iph->ihl * 4;
		if (c->pos + hlen > c->end)
			return XDPCTL_CNT_BAD_IPV4_TRUNCATED;
	}
	tot_len = bpf_ntohs(iph->tot_len);
	l3_len = p->len - p->l3_off;
	/* Ethernet padding makes the frame longer than tot_len; never shorter. */
	if (tot_len < hlen || tot_len > l3_len)
		return XDPCTL_CNT_BAD_IPV4_LENGTH;

	p->saddr[0] = iph->saddr;
	p->daddr[0] = iph->daddr;
	*proto = iph->protocol;
	c->pos += hlen;
	c->limit = p->l3_off + tot_len;

	__u16 frag_off = bpf_ntohs(iph->frag_off);
	if (frag_off & IPV4_OFFSET_MASK)
		p->frag = PKT_LATER_FRAGMENT;
	else if (frag_off & IPV4_MF)
		p->frag = PKT_FIRST_FRAGMENT;
	return 0;
}

static __always_inline int ipv6_is_ext(__u8 nh)
{
	return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS ||
	       nh == IPPROTO_FRAGMENT || nh == IPPROTO_AH;
}

/*
 * IPv6 and a chain of at most XDPCTL_MAX_IPV6_EXT extension headers (hop-by-hop,
 * routing, destination options, fragment, AH). ESP and "no next header" end the
 * chain like any upper-layer protocol: they count as L4 "other".
 */
static __always_inline int parse_ipv6(struct cursor *c, struct pkt *p, __u8 *proto)
{
	struct ipv6hdr *ip6 = c->pos;
	__u8 nh;

	if ((void *)(ip6 + 1) > c->end)
		return XDPCTL_CNT_BAD_IPV6_TRUNCATED;
	if (ip6->version != 6)
		return XDPCTL_CNT_BAD_IPV6_HDR;
	if (sizeof(*ip6) + bpf_ntohs(ip6->payload_len) > p->len - p->l3_off)
		return XDPCTL_CNT_BAD_IPV6_LENGTH;
	c->limit = p->l3_off + sizeof(*ip6) + bpf_ntohs(ip6->payload_len);

	__builtin_memcpy(p->saddr, &ip6->saddr, sizeof(p->saddr));
	__builtin_memcpy(p->daddr, &ip6->daddr, sizeof(p->daddr));
	nh = ip6->nexthdr;
	c->pos = ip6 + 1;

	/*
	 * Verifier workaround: walking the chain with a packet pointer gives every iteration
	 * a different variable offset, so no state prunes (400k instructions verified). A
	 * scalar offset masked to a fixed range makes the iterations' states equal.
	 */
	__u32 off = cursor_off(c);
	__u32 avail = c->end - c->start;

	if (avail > c->limit)
		avail = c->limit;

	for (int i = 0; i < XDPCTL_MAX_IPV6_EXT; i++) {
		__u32 len;

		if (!ipv6_is_ext(nh))
			break;
		if (off > XDPCTL_MAX_HDR_OFF)
			return XDPCTL_CNT_BAD_EXT_CHAIN;
		off = bound_off(off);
		/* every extension header is at least 8 bytes: one check covers the reads */
		struct ipv6_frag_hdr *h = c->start + off;
		if ((void *)(h + 1) > c->end || off + sizeof(*h) > avail)
			return XDPCTL_CNT_BAD_EXT_TRUNCATED;

		if (nh == IPPROTO_FRAGMENT) {
			__u16 fo = bpf_ntohs(h->frag_off);

			nh = h->nexthdr;
			off += sizeof(*h);
			if (off > XDPCTL_MAX_HDR_OFF)
				return XDPCTL_CNT_BAD_EXT_CHAIN;
			if (fo & IPV6_FRAG_OFFSET_MASK) {
				/* No upper-layer header follows: stop before reading it. */
				p->frag = PKT_LATER_FRAGMENT;
				c->pos = c->start + bound_off(off);
				*proto = nh;
				return 0;
			}
			if (fo & IPV6_FRAG_MF)
				p->frag = PKT_FIRST_FRAGMENT;
			continue;
		}
		/* AH counts 4-byte units minus 2; the others 8-byte units minus 1 */
		len = nh == IPPROTO_AH ? ((__u32)h->reserved + 2) * 4 : ((__u32)h->reserved + 1) * 8;
		nh = h->nexthdr;
		if (off + len > avail)
			return XDPCTL_CNT_BAD_EXT_TRUNCATED;
		off += len;
	}
	if (off > XDPCTL_MAX_HDR_OFF)
		return XDPCTL_CNT_BAD_EXT_CHAIN;
	c->pos = c->start + bound_off(off);
	if (ipv6_is_ext(nh))
		return XDPCTL_CNT_BAD_EXT_CHAIN;
	*proto = nh;
	return 0;
}

/* The L4 header: ports for TCP/UDP, type and code for ICMP/ICMPv6. */
static __always_inline int parse_l4(struct cursor *c, struct pkt *p)
{
	/* TCP and UDP first, in an if-chain: a switch tests ICMP before TCP. */
	if (__builtin_expect(p->l4_proto == IPPROTO_TCP, 1)) {
		struct tcphdr *th = c->pos;
		__u32 doff;

		p->l4_cnt = XDPCTL_CNT_L4_TCP;
		if ((void *)(th + 1) > c->end)
			return XDPCTL_CNT_BAD_L4_TRUNCATED;
		/* A data offset of 5 or more that ends within the IP packet covers the fixed header
		 * too: one test on the common path; the reason of a fault as before. */
		doff = th->doff;
		if (doff < 5 || (__u32)p->l4_off + doff * 4 > c->limit)
			return (__u32)p->l4_off + sizeof(*th) > c->limit ? XDPCTL_CNT_BAD_L4_TRUNCATED
									  : XDPCTL_CNT_BAD_TCP_HDR;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		return 0;
	}
	if (p->l4_proto == IPPROTO_UDP) {
		struct udphdr *uh = c->pos;

		p->l4_cnt = XDPCTL_CNT_L4_UDP;
		if ((void *)(uh + 1) > c->end || (__u32)p->l4_off + sizeof(*uh) > c->limit)
			return XDPCTL_CNT_BAD_L4_TRUNCATED;
		p->sport = uh->source;
		p->dport = uh->dest;
		return 0;
	}
	switch (p->l4_proto) {
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		/* both are 8 bytes: type, code, checksum, 4 bytes of rest */
		struct icmp_min *ih = c->pos;

		p->l4_cnt = p->l4_proto == IPPROTO_ICMP ? XDPCTL_CNT_L4_ICMP : XDPCTL_CNT_L4_ICMPV6;
		if ((void *)(ih + 1) > c->end || (__u32)p->l4_off + sizeof(*ih) > c->limit)
			return XDPCTL_CNT_BAD_L4_TRUNCATED;
		p->sport = ih->type;
		p->dport = ih->code;
		return 0;
	}
	default:
		p->l4_cnt = XDPCTL_CNT_L4_OTHER;
		return 0;
	}
}

/*
 * Parses a frame of `len` bytes whose first (end - start) bytes are readable.
 * Fills *p (which the caller zeroes) and returns 0 or the malformed reason.
 * p->l3_cnt is always set; p->l4_cnt is XDPCTL_CNT_MAX unless the L4 protocol is known.
 */
static __always_inline int parse_packet(void *start, void *end, __u32 len, struct pkt *p)
{
	struct cursor c = { .pos = start, .start = start, .end = end, .limit = len };
	__u8 proto = 0;
	int err;

	p->len = len;
	p->l3_cnt = XDPCTL_CNT_L3_OTHER;
	p->l4_cnt = XDPCTL_CNT_MAX;

	err = parse_eth(&c, p);
	if (err)
		return err;
	p->l3_off = cursor_off(&c);

	/* likely: clang would test IPv6 and ARP first */
	if (__builtin_expect(p->l3_proto == ETH_P_IP, 1)) {
		p->l3_cnt = XDPCTL_CNT_L3_IPV4;
		err = parse_ipv4(&c, p, &proto);
	} else if (p->l3_proto == ETH_P_IPV6) {
		p->l3_cnt = XDPCTL_CNT_L3_IPV6;
		err = parse_ipv6(&c, p, &proto);
	} else {
		if (p->l3_proto == ETH_P_ARP)
			p->l3_cnt = XDPCTL_CNT_L3_ARP;
		return 0;
	}
	if (err)
		return err;

	p->l4_proto = proto;
	p->l4_off = cursor_off(&c);
	if (p->frag == PKT_LATER_FRAGMENT) {
		p->l4_cnt = XDPCTL_CNT_L4_FRAGMENT;
		return 0;
	}
	return parse_l4(&c, p);
}

#endif
