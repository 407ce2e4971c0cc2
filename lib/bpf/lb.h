/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The load balancer's step of the XDP program, after filtering passed a packet.
 *
 * A TCP/UDP packet to a VIP (exact port, then port 0) takes its backend from the connection
 * table (one LRU hash for all CPUs), or, on a miss or a TCP SYN, from the VIP's Maglev table
 * at the position of its flow hash, and is then forwarded with XDP_TX:
 *   dsr   the destination MAC becomes the backend's, the source MAC the one the frame was
 *         sent to (ours); the IP packet is untouched, the backend answers the client itself;
 *   ipip  an outer IPv4 (IPv6) header from the VIP's ipip source to the backend is put in
 *         front of the IPv4 (IPv6) packet; the MACs as for dsr, towards the backend's L2 hop.
 * Everything else is passed to the stack untouched, and counted when it is addressed to a
 * VIP address (an address marker in the VIP map): fragments (the later ones carry no ports,
 * so no fragment is balanced), ICMP/ICMPv6 (echo to a VIP is answered by the LB host when it
 * holds the address; errors are not matched to flows), other protocols, VLAN-tagged frames,
 * and ipip packets that would exceed the MTU once encapsulated.
 *
 * xdpctl_lb() is global: the verifier checks it once on its own, not once per parser path
 * (the XDP program verifies ~100k instructions without it).
 */
#ifndef XDPCTL_BPF_LB_H
#define XDPCTL_BPF_LB_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi/xdpctl_abi.h"
#include "bpf/packet.h"
#include "bpf/lb_maps.h"
#include "bpf/lb_cache.h"

/* The interface's MTU, set by the loader (rodata); 0 (tests): 1500. */
const volatile __u32 cfg_lb_mtu = 0;

#define LB_IPIP_TTL 64
#define LB_TCP_SYN 0x02
#define LB_TCP_ACK 0x10

static __always_inline struct xdpctl_lb_stats *lb_stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&xdpctl_lb_stats, &zero);
}

/* One lookup of the stats a packet (the caller's), however many counters it touches. An
 * index clang knows after inlining is a constant offset; another (one call site for several
 * reasons) is hidden from the optimiser, which would drop the bound check the verifier needs. */
static __always_inline void lb_count_in(struct xdpctl_lb_stats *s, __u32 idx)
{
	if (!s)
		return;
	if (!__builtin_constant_p(idx))
		asm volatile("" : "+r"(idx));
	if (idx < XDPCTL_LB_CNT_MAX)
		s->cnt[idx]++;
}

static __always_inline void lb_count(__u32 idx)
{
	lb_count_in(lb_stats(), idx);
}

static __always_inline __u16 lb_csum_fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/*
 * Source MAC := the destination the frame came to (ours); destination := the next hop. In
 * 16-bit words: a frame starts 2-byte aligned or better (the MACs too, and a backend's mac
 * field), and a byte-wise memcpy would be 24 loads and stores instead of 12. `to` may be
 * `from` (dsr): ours is read whole before anything is written.
 */
static __always_inline void lb_set_macs(void *to, const void *from, const __u8 *next_hop)
{
	const __u16 *o = from, *n = (const __u16 *)next_hop;
	__u16 *t = to;
	__u16 o0 = o[0], o1 = o[1], o2 = o[2];

	t[3] = o0;
	t[4] = o1;
	t[5] = o2;
	t[0] = n[0];
	t[1] = n[1];
	t[2] = n[2];
}

static __always_inline __u32 lb_mtu(void)
{
	return cfg_lb_mtu ? cfg_lb_mtu : 1500;
}

/*
 * Puts `outer` (`len` bytes, a constant at each call) between a new Ethernet header and the
 * packet's IP header, the new header addressed to `mac`, and sends the frame back out.
 */
static __always_inline int lb_push_outer(struct xdp_md *ctx, const void *outer, __u32 len, __u16 proto,
					 const __u8 *mac)
{
	void *data, *end;

	if (bpf_xdp_adjust_head(ctx, -(int)len)) {
		lb_count(XDPCTL_LB_CNT_ERROR);
		return XDP_PASS;
	}
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	/* the old Ethernet header now starts len bytes in: no overlap with the new */
	if (data + ETH_HLEN + len + ETH_HLEN > end)
		return XDP_DROP; /* cannot happen: the frame only grew; the verifier wants it */
	lb_set_macs(data, data + len, mac);
	((struct ethhdr *)data)->h_proto = bpf_htons(proto);
	__builtin_memcpy(data + ETH_HLEN, outer, len);
	return XDP_TX;
}

/* IPv4-in-IPv4. The frame is untagged (l3 at ETH_HLEN). Returns an XDP action. */
static __always_inline int lb_encap4(struct xdp_md *ctx, const struct xdpctl_lb_vip *vip,
				     const struct xdpctl_lb_backend *be)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct iphdr *inner = data + ETH_HLEN;
	struct iphdr outer = {};
	__u32 inner_len, sum = 0;
	__u16 *w = (__u16 *)&outer;

	if ((void *)(inner + 1) > end)
		return XDP_PASS;
	inner_len = bpf_ntohs(inner->tot_len);
	if (inner_len + sizeof(outer) > lb_mtu()) {
		lb_count(XDPCTL_LB_CNT_TOO_BIG);
		return XDP_PASS;
	}
	outer.version = 4;
	outer.ihl = 5;
	outer.tos = inner->tos;
	outer.tot_len = bpf_htons(inner_len + sizeof(outer));
	outer.ttl = LB_IPIP_TTL;
	outer.protocol = IPPROTO_IPIP;
	outer.saddr = vip->ipip_src[0];
	outer.daddr = be->addr[0];
#pragma unroll
	for (int i = 0; i < (int)sizeof(outer) / 2; i++)
		sum += w[i];
	outer.check = lb_csum_fold(sum);

	return lb_push_outer(ctx, &outer, sizeof(outer), ETH_P_IP, be->mac);
}

/* IPv6-in-IPv6, as lb_encap4. The flow label carries the flow hash, for the backend's RSS. */
static __always_inline int lb_encap6(struct xdp_md *ctx, const struct xdpctl_lb_vip *vip,
				     const struct xdpctl_lb_backend *be, __u32 hash)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ipv6hdr *inner = data + ETH_HLEN;
	struct ipv6hdr outer = {};
	__u32 inner_len;

	if ((void *)(inner + 1) > end)
		return XDP_PASS;
	inner_len = sizeof(*inner) + bpf_ntohs(inner->payload_len);
	if (inner_len + sizeof(outer) > lb_mtu()) {
		lb_count(XDPCTL_LB_CNT_TOO_BIG);
		return XDP_PASS;
	}
	outer.version = 6;
	/* traffic class: the inner one's (it straddles the first two bytes) */
	outer.priority = inner->priority;
	outer.flow_lbl[0] = (inner->flow_lbl[0] & 0xf0) | ((hash >> 16) & 0x0f);
	outer.flow_lbl[1] = (hash >> 8) & 0xff;
	outer.flow_lbl[2] = hash & 0xff;
	outer.payload_len = bpf_htons(inner_len);
	outer.nexthdr = IPPROTO_IPV6;
	outer.hop_limit = LB_IPIP_TTL;
	__builtin_memcpy(&outer.saddr, vip->ipip_src, sizeof(outer.saddr));
	__builtin_memcpy(&outer.daddr, be->addr, sizeof(outer.daddr));

	return lb_push_outer(ctx, &outer, sizeof(outer), ETH_P_IPV6, be->mac);
}

/* A packet to a VIP address that is not balanced: counted under `why` if the address is a
 * VIP's, passed either way. */
static __always_inline int lb_pass_if_vip_addr(struct xdpctl_lb_vip_key *vk, __u32 why)
{
	vk->port = 0;
	vk->proto = XDPCTL_LB_PROTO_ADDR;
	if (bpf_map_lookup_elem(&xdpctl_lb_vips, vk))
		lb_count(why);
	return XDP_PASS;
}

/* The VIP a connection-table entry was scheduled under, if it still has that id and the
 * packet is still its (address, protocol, and port unless the VIP's is 0). The addresses
 * compare in 64-bit words: the slot's key starts its 64-byte value, `daddr` is 8-byte
 * aligned (a flow key's, a struct pkt's). */
static __always_inline struct xdpctl_lb_vip *lb_vip_of_flow(const struct xdpctl_lb_flow *fl, __u8 family,
							    __u8 proto, __be16 dport, const __u32 *daddr)
{
	__u32 id = fl->vip_id;
	struct xdpctl_lb_vip_slot *s = bpf_map_lookup_elem(&xdpctl_lb_vip_ids, &id);
	const __u64 *a, *b;

	if (!s || !s->used || s->key.family != family || s->key.proto != proto ||
	    (s->key.port && s->key.port != dport))
		return NULL;
	a = (const __u64 *)s->key.addr;
	b = (const __u64 *)daddr;
	if ((a[0] ^ b[0]) | (a[1] ^ b[1]))
		return NULL;
	return &s->vip;
}

/* The entry's backend, if its slot still holds the incarnation the entry was made with, of
 * the VIP the entry names (the slot may have been freed, or given to another VIP or a new
 * backend). A drained backend (weight 0) still serves its connections.
 * A flow cache copy is made from an entry that passed this check and holds what it found
 * (the MAC): its hit reads neither the backend nor the VIP, as userspace voids every copy
 * after it frees a backend or changes a MAC (abi: struct xdpctl_lb_fcache_slot), and a VIP
 * does not change while it has a backend in use: its address, port, protocol and mode change
 * only by a delete and an add again, and a delete frees its backends first (LbMaps::del_vip). */
static __always_inline struct xdpctl_lb_backend *lb_backend_of_flow(const struct xdpctl_lb_flow *fl)
{
	__u32 id = fl->backend;
	struct xdpctl_lb_backend *be = bpf_map_lookup_elem(&xdpctl_lb_backends, &id);

	if (!be || !(be->flags & XDPCTL_LB_BE_F_USED) || be->vip_id != fl->vip_id || be->gen != fl->be_gen)
		return NULL;
	return be;
}

/* 4 or 6 for an IPv4/IPv6 packet, else 0. */
static __always_inline __u8 lb_family(const struct pkt *p)
{
	return p->l3_proto == ETH_P_IP ? 4 : p->l3_proto == ETH_P_IPV6 ? 6 : 0;
}

/* What a TCP/UDP packet's flow key holds after the addresses (abi: xdpctl_lb_flow_key), as
 * the key's last 64-bit word. */
static __always_inline __u64 lb_key_tail_of(__be16 sport, __be16 dport, __u8 proto, __u8 family)
{
	union {
		struct {
			__be16 sport, dport;
			__u8 proto, family;
			__u16 pad;
		} f;
		__u64 w;
	} t = {.f = {sport, dport, proto, family, 0}};

	return t.w;
}

static __always_inline __u64 lb_key_tail(const struct pkt *p, __u8 family)
{
	return lb_key_tail_of(p->sport, p->dport, p->l4_proto, family);
}

/* A TCP SYN without ACK: a new connection, scheduled afresh. */
static __always_inline int lb_is_syn_of(__u8 l4_proto, __u8 tcp_flags)
{
	return l4_proto == IPPROTO_TCP && (tcp_flags & (LB_TCP_SYN | LB_TCP_ACK)) == LB_TCP_SYN;
}

static __always_inline int lb_is_syn(const struct pkt *p)
{
	return lb_is_syn_of(p->l4_proto, p->tcp_flags);
}

/* The VIP key of a TCP/UDP packet, from its flow key: a connection-table hit needs none. */
static __always_inline void lb_vip_key(struct xdpctl_lb_vip_key *vk, const struct xdpctl_lb_flow_key *fk)
{
	__builtin_memcpy(vk->addr, fk->daddr, sizeof(vk->addr));
	vk->port = fk->dport;
	vk->proto = fk->proto;
	vk->family = fk->family;
}

/* The flow hash's ports: none when the VIP hashes 3-tuples. */
static __always_inline __u32 lb_hash_ports(const struct xdpctl_lb_vip *vip, const struct pkt *p)
{
	return vip->flags & XDPCTL_LB_F_HASH_3TUPLE ? 0 : ((__u32)p->sport << 16) | p->dport;
}

/* The VIP of a packet by the hash: exact port, then port 0. */
static __always_inline struct xdpctl_lb_vip *lb_vip_lookup(struct xdpctl_lb_vip_key *vk, __u32 any_port)
{
	struct xdpctl_lb_vip *vip = bpf_map_lookup_elem(&xdpctl_lb_vips, vk);

	if (!vip && any_port) {
		__be16 port = vk->port;

		vk->port = 0;
		vip = bpf_map_lookup_elem(&xdpctl_lb_vips, vk);
		vk->port = port;
	}
	return vip;
}

/* What was forwarded (XDP_TX), counted; a packet passed as too big is in too_big only. */
static __always_inline int lb_counted(int act, const struct pkt *p, struct xdpctl_lb_stats *st,
				      __u32 vip_id, __u32 be_id, __u32 new_flow)
{
	if (act == XDP_TX) {
		lb_count_in(st, XDPCTL_LB_CNT_TX);
		lb_ctr_add(&xdpctl_lb_vctr, vip_id, 1, p->len, new_flow);
		lb_ctr_add(&xdpctl_lb_bctr, be_id, 1, p->len, new_flow);
	}
	return act;
}

/* dsr's rewrite: the MACs only; `mac` the backend's. 0: no Ethernet header (cannot be). */
static __always_inline int lb_dsr_macs(struct xdp_md *ctx, const __u8 *mac)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;

	if (data + ETH_HLEN > end)
		return 0;
	lb_set_macs(data, data, mac);
	return 1;
}

/* dsr, counted. */
static __always_inline int lb_dsr(struct xdp_md *ctx, const struct pkt *p, struct xdpctl_lb_stats *st,
				  __u32 vip_id, const __u8 *mac, __u32 be_id, __u32 new_flow)
{
	if (!lb_dsr_macs(ctx, mac))
		return XDP_PASS;
	return lb_counted(XDP_TX, p, st, vip_id, be_id, new_flow);
}

/* A TCP/UDP packet's connection-table key; every byte set (pad too): the table hashes and
 * compares the whole key. */
static __always_inline void lb_flow_key(struct xdpctl_lb_flow_key *fk, const struct pkt *p, __u8 family)
{
	__u64 *w = (__u64 *)fk;
	const __u64 *a = (const __u64 *)p->saddr;

	w[0] = a[0];
	w[1] = a[1];
	a = (const __u64 *)p->daddr;
	w[2] = a[0];
	w[3] = a[1];
	w[4] = lb_key_tail(p, family);
}

/*
 * The common packet, on its own short path: an established flow's TCP/UDP packet that the
 * flow cache (lib/bpf/lb_cache.h) holds a valid copy for, to a dsr VIP, untagged, no
 * fragment. Forwarded as xdpctl_lb() would after a connection-table hit, from the copy alone
 * (no backend record, no VIP: lb_backend_of_flow), its counts pending in the slot until the
 * slot is copied again (lb_fcache_flush; userspace adds them when it reads), few values live (no
 * spills of the general step's). Returns an XDP action, or a negative value when the cache
 * does not answer (no valid copy of this build, a SYN, the refresh hit, ipip, any other
 * packet): then xdpctl_lb() decides, from the table, with the
 * slot's word this probe read (LB_PROBE_*), so a new flow reads it once.
 */
static __always_inline __s64 lb_cached_flow(struct xdp_md *ctx, const __u64 *a, const __u64 *b, __u64 tail,
					    int syn, __u32 len)
{
	const __u64 w[5] = {a[0], a[1], b[0], b[1], tail};
	struct xdpctl_lb_fcache_slot *s;
	__u32 *gen, idx, seen;

	idx = xdpctl_lb_fcache_slot_of(w);
	gen = bpf_map_lookup_elem(&xdpctl_lb_fgen, &idx);
	if (!gen)
		return (__s64)LB_PROBE_MISS;
	seen = *(volatile __u32 *)gen;
	if (syn)  /* scheduled afresh: never a copy's */
		return lb_probe_missed(idx, seen);
	s = lb_fcache_find(a, b, tail, idx, seen);
	if (!s)
		return lb_probe_missed(idx, seen);
	if (!lb_dsr_macs(ctx, s->copy.mac))
		return XDP_PASS;
	/* ct_hit, tx and the VIP's and backend's packets and bytes, pending in the slot (abi:
	 * XDPCTL_LB_FCACHE_PEND_SHIFT): one write instead of three counter records */
	s->hits += 1 + (len << XDPCTL_LB_FCACHE_PEND_SHIFT);
	return XDP_TX;
}

/* lb_cached_flow() for a parsed packet: its addresses where the record holds them, the
 * key's last word in a register. */
static __always_inline __s64 lb_cached(struct xdp_md *ctx, const struct pkt *p)
{
	__u8 family;

	if (p->frag != PKT_NOT_FRAGMENT || p->n_vlans ||
	    (p->l4_proto != IPPROTO_TCP && p->l4_proto != IPPROTO_UDP))
		return (__s64)LB_PROBE_MISS;
	family = lb_family(p);
	if (!family)
		return (__s64)LB_PROBE_MISS;
	return lb_cached_flow(ctx, (const __u64 *)p->saddr, (const __u64 *)p->daddr, lb_key_tail(p, family),
			      lb_is_syn(p), p->len);
}

/* lb_cached() as a function of its own, for the program with the filter: there it is not
 * inlined, so the packet's record stays the filter's (no spills of the probe's values). */
__noinline __s64 xdpctl_lb_cached(struct xdp_md *ctx, const struct pkt *p)
{
	if (!ctx || !p)
		return (__s64)LB_PROBE_MISS;
	return lb_cached(ctx, p);
}

/* The step itself. `any_port`: some VIP has port 0; `probe`: what xdpctl_lb_cached()
 * returned. Returns an XDP action. */
__noinline int xdpctl_lb(struct xdp_md *ctx, const struct pkt *p, __u32 any_port, __u64 probe)
{
	/* aligned: the addresses copy and compare in 64-bit words */
	struct xdpctl_lb_vip_key vk __attribute__((aligned(8)));
	struct xdpctl_lb_flow_key fk __attribute__((aligned(8)));
	struct xdpctl_lb_backend *be = NULL;
	struct xdpctl_lb_vip *vip = NULL;
	const struct xdpctl_lb_flow *fl;
	__u32 be_id, hash, new_flow = 0;
	struct lb_fc fc;
	struct xdpctl_lb_stats *st;
	__u8 family;

	if (!ctx || !p)
		return XDP_PASS;
	family = lb_family(p);
	if (!family)
		return XDP_PASS;

	if (p->frag != PKT_NOT_FRAGMENT || (p->l4_proto != IPPROTO_TCP && p->l4_proto != IPPROTO_UDP)) {
		__builtin_memset(&vk, 0, sizeof(vk));
		vk.family = family;
		__builtin_memcpy(vk.addr, p->daddr, sizeof(vk.addr));
		if (p->frag != PKT_NOT_FRAGMENT)
			return lb_pass_if_vip_addr(&vk, XDPCTL_LB_CNT_FRAGMENT);
		if (p->l4_proto == IPPROTO_ICMP || p->l4_proto == IPPROTO_ICMPV6)
			return lb_pass_if_vip_addr(&vk, XDPCTL_LB_CNT_ICMP);
		return lb_pass_if_vip_addr(&vk, XDPCTL_LB_CNT_OTHER_PROTO);
	}

	lb_flow_key(&fk, p, family);
	st = lb_stats();
	if (p->n_vlans) {
		lb_vip_key(&vk, &fk);
		if (lb_vip_lookup(&vk, any_port))
			lb_count_in(st, XDPCTL_LB_CNT_VLAN);
		return XDP_PASS;
	}

	/* A hit counts only while its backend slot holds the same incarnation (gen) of a
	 * backend of this VIP (lb_backend_of_flow): a VIP deleted and made again gets new
	 * incarnations.
	 * A TCP SYN (without ACK) opens a new connection: it is scheduled afresh and replaces
	 * what the table held for its 5-tuple, which clients reuse (a closed connection's
	 * entry must not send the new one to a drained backend). The table is shared by all
	 * CPUs, so the SYN's choice is what the connection's later packets find on any CPU.
	 * What the table gives is copied into the flow cache, which answers the flow's next
	 * packets on this CPU (xdpctl_lb_cached); the cache's word is read first. */
	lb_fcache_at(&fc, &fk, probe);
	fl = lb_is_syn(p) ? NULL : bpf_map_lookup_elem(&xdpctl_lb_ct, &fk);
	if (fl && (fl->flags & XDPCTL_LB_FLOW_F_VALID))
		vip = lb_vip_of_flow(fl, family, fk.proto, fk.dport, fk.daddr);
	if (vip) {
		be_id = fl->backend;
		be = lb_backend_of_flow(fl);
	} else {
		/* no entry, or one of a VIP that is gone: the packet's VIP, if any, by the hash */
		lb_vip_key(&vk, &fk);
		vip = lb_vip_lookup(&vk, any_port);
		if (!vip)
			return XDP_PASS;
	}
	if (be) {
		lb_count_in(st, XDPCTL_LB_CNT_CT_HIT);
		/* dsr, the common hit, runs straight to its return: no merge with the miss, which
		 * would keep the values of both paths live (spilled); only its flows are copied */
		if (vip->mode != XDPCTL_LB_MODE_IPIP) {
			lb_fcache_put(&fc, &fk, fl, be, be_id, st);
			return lb_dsr(ctx, p, st, vip->id, be->mac, be_id, 0);
		}
		/* the flow label of ipip6 wants it; ipip4 needs no hash on a hit */
		hash = family == 6 ? xdpctl_lb_flow_hash(p->saddr, p->daddr, lb_hash_ports(vip, p), p->l4_proto)
				   : 0;
	} else {
		struct xdpctl_lb_flow nf = {};
		__u32 vid = vip->id, pos;
		__u32 *slot;
		void *ring;

		lb_count_in(st, XDPCTL_LB_CNT_CT_MISS);
		hash = xdpctl_lb_flow_hash(p->saddr, p->daddr, lb_hash_ports(vip, p), p->l4_proto);
		ring = bpf_map_lookup_elem(&xdpctl_lb_rings, &vid);
		if (!ring) {
			lb_count_in(st, XDPCTL_LB_CNT_ERROR);
			return XDP_PASS;
		}
		pos = xdpctl_lb_ring_pos(hash, vip->ring_size);
		slot = bpf_map_lookup_elem(ring, &pos);
		if (!slot || *slot == XDPCTL_LB_NO_BACKEND) {
			lb_count_in(st, XDPCTL_LB_CNT_NO_BACKEND);
			return XDP_PASS;
		}
		be_id = *slot;
		be = bpf_map_lookup_elem(&xdpctl_lb_backends, &be_id);
		if (!be || !(be->flags & XDPCTL_LB_BE_F_USED)) {
			lb_count_in(st, XDPCTL_LB_CNT_ERROR);
			return XDP_PASS;
		}
		nf.backend = be_id;
		nf.vip_id = vid;
		nf.flags = XDPCTL_LB_FLOW_F_VALID;
		nf.be_gen = be->gen;
		if (!bpf_map_update_elem(&xdpctl_lb_ct, &fk, &nf, BPF_ANY))
			lb_fcache_inserted(&fc, lb_is_syn(p));
		new_flow = 1;
	}
	if (vip->mode != XDPCTL_LB_MODE_IPIP)
		return lb_dsr(ctx, p, st, vip->id, be->mac, be_id, new_flow);
	return lb_counted(family == 4 ? lb_encap4(ctx, vip, be) : lb_encap6(ctx, vip, be, hash), p, st, vip->id,
			  be_id, new_flow);
}

/* The balancer's control record while some VIP exists and destination `daddr` (abi:
 * xdpctl_lb_addr_bit) may be a VIP's address, else NULL: one inlined array lookup and a bit
 * test (abi: struct xdpctl_lb_ctl). */
static __always_inline struct xdpctl_lb_ctl *lb_ctl_if_vip_addr(const __u32 *daddr)
{
	__u32 zero = 0, bit;
	struct xdpctl_lb_ctl *c = bpf_map_lookup_elem(&xdpctl_lb_ctl, &zero);

	if (!c || !c->n_vips)
		return NULL;
	bit = xdpctl_lb_addr_bit(daddr);
	if (!((c->addr_bits[(bit >> 6) & (XDPCTL_LB_ADDR_BITS / 64 - 1)] >> (bit & 63)) & 1))
		return NULL;
	return c;
}

/* Called by the XDP program for a parsed packet the filter passed. `inline_probe`: the
 * flow cache's probe inlined (the program without the filter, xdp/xdpctl_xdp.bpf.c). */
static __always_inline int lb_step_at(struct xdp_md *ctx, const struct pkt *p, const int inline_probe)
{
	__s64 act;
	struct xdpctl_lb_ctl *c = lb_ctl_if_vip_addr(p->daddr);

	if (!c)
		return XDP_PASS;
	act = inline_probe ? lb_cached(ctx, p) : xdpctl_lb_cached(ctx, p);
	return act >= 0 ? (int)act : xdpctl_lb(ctx, p, c->n_any_port, (__u64)act);
}

static __always_inline int lb_step(struct xdp_md *ctx, const struct pkt *p)
{
	return lb_step_at(ctx, p, 0);
}

static __always_inline int lb_step_inline(struct xdp_md *ctx, const struct pkt *p)
{
	return lb_step_at(ctx, p, 1);
}

#endif
