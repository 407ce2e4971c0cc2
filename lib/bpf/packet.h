/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What the parser learns about a packet; what counting and (later) filtering consume. */
#ifndef XDPCTL_BPF_PACKET_H
#define XDPCTL_BPF_PACKET_H

#include <linux/types.h>

enum pkt_frag {
	PKT_NOT_FRAGMENT = 0,
	PKT_FIRST_FRAGMENT = 1,  /* offset 0, more fragments: carries the L4 header */
	PKT_LATER_FRAGMENT = 2,  /* offset > 0: no L4 header, no ports */
};

struct pkt {
	__u32 len;          /* whole frame (skb->len on TC, data_end - data on XDP) */
	__u16 l3_proto;     /* Ethernet type after VLAN tags, host order */
	__u8 l4_proto;      /* IPPROTO_*, valid when l4_cnt != XDPCTL_CNT_MAX */
	__u8 n_vlans;
	__u16 vlan_id[XDPCTL_MAX_VLANS]; /* outermost first, 12-bit VID */
	__u8 frag;          /* enum pkt_frag */
	__u8 tcp_flags;     /* byte 13 of the TCP header */
	__u8 l3_cnt;        /* XDPCTL_CNT_L3_*: one for every frame */
	__u8 l4_cnt;        /* XDPCTL_CNT_L4_* or XDPCTL_CNT_MAX when the L4 protocol is unknown */
	__be16 sport;       /* TCP/UDP ports, network order; ICMP: type in sport, code in dport */
	__be16 dport;
	__u16 l3_off;       /* offsets from the frame start */
	__u16 l4_off;
	__u32 saddr[4];     /* IPv4 uses [0], network order */
	__u32 daddr[4];
} __attribute__((aligned(8))); /* the addresses (at 24, 40) copy in 64-bit words */

#endif
