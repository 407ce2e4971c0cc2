/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdpctl-pktgen's frame writer. BPF_PROG_TEST_RUN in live-frames mode runs it once per frame
 * on a copy of the template the generator built; it gives the frame its flow (source and
 * destination address, ports) and returns XDP_TX, which the kernel turns into a transmit
 * out of the generator's interface (the test run's ingress_ifindex).
 *
 * Live frames are recycled through a page pool without being copied again from the
 * template, so a frame arrives here with whatever flow it carried last time: the writer
 * sets absolute values and updates the checksums from the bytes it replaces (RFC 1624),
 * never from the template.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "xdpctl_pktgen.h"

/* The generator's interface: the test runs' ingress_ifindex. */
const volatile __u32 cfg_ifindex = 0;
/* The template's layout and the ranges, set by the generator before load. */
const volatile __u32 cfg_l3_off = 14;      /* after Ethernet and the optional VLAN tag */
const volatile __u8 cfg_ipv6 = 0;
const volatile __u8 cfg_tcp = 0;           /* else UDP */
const volatile __u8 cfg_random = 0;        /* else sequential */
const volatile __u8 cfg_vary = 0;          /* any range holds more than one value */
const volatile __u8 cfg_l4_csum = 1;       /* 0: IPv4 UDP sent without a checksum */
/* Addresses vary in their last 32 bits: base + offset never carries out (checked by the generator). */
const volatile __u32 cfg_src_base = 0, cfg_dst_base = 0;     /* host order */
const volatile __u64 cfg_src_count = 1, cfg_dst_count = 1;   /* up to 2^32 */
const volatile __u32 cfg_sport_base = 0, cfg_dport_base = 0;
const volatile __u32 cfg_sport_count = 1, cfg_dport_count = 1;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdpctl_pktgen_cursor);
} pktgen_cursor SEC(".maps");

/* Offsets inside the L3 header of the last 32 bits of the addresses. */
#define V4_SADDR 12
#define V4_DADDR 16
#define V4_CSUM 10
#define V6_SADDR_LO 20
#define V6_DADDR_LO 36
#define UDP_CSUM 6
#define TCP_CSUM 16
#define TCP_HLEN 20
#define UDP_HLEN 8

static __always_inline __u32 words32(__u32 v)
{
	return (v & 0xffff) + (v >> 16);
}

/*
 * One's complement sums are byte-order independent, so the words are summed as they sit in
 * memory and the result is stored the same way: no byte swaps on the hot path.
 * `diff` is the sum of ~old + new words of everything that changed under this checksum.
 */
static __always_inline void csum_apply(__u16 *csum, __u32 diff, int udp)
{
	__u32 c = (__u16)~*csum;

	c += diff;
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	c = (__u16)~c;
	/* In UDP a zero checksum means "none"; one's complement zero is also 0xffff. */
	if (udp && c == 0)
		c = 0xffff;
	*csum = c;
}

static __always_inline __u64 pick(__u64 *idx, __u64 count)
{
	__u64 v;

	if (count <= 1)
		return 0;
	if (cfg_random)
		return bpf_get_prandom_u32() % count;
	/* Sequential: the flow index read as a mixed-radix number, source address fastest. */
	v = *idx % count;
	*idx /= count;
	return v;
}

/* Replaces a 32-bit field and returns what that adds to the covering checksums. */
static __always_inline __u32 set32(void *p, __u32 host_val)
{
	__u32 old = *(__u32 *)p, new = bpf_htonl(host_val);

	*(__u32 *)p = new;
	return words32(~old) + words32(new);
}

static __always_inline __u32 set16(void *p, __u32 host_val)
{
	__u16 old = *(__u16 *)p, new = bpf_htons((__u16)host_val);

	*(__u16 *)p = new;
	return (__u16)~old + new;
}

SEC("xdp")
int pktgen_tx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l4_off = cfg_l3_off + (cfg_ipv6 ? 40 : 20);
	struct xdpctl_pktgen_cursor *cur;
	__u32 addr_diff = 0, port_diff = 0, zero = 0;
	__u64 idx = 0;
	void *l3, *l4;

	/*
	 * The generator also attaches this program to its namespace's loopback, only so the
	 * kernel's XDP dispatcher keeps it: otherwise every test run swaps it in and out of the
	 * dispatcher, two RCU grace periods (~24 ms here) per call. Real traffic there passes.
	 */
	if (ctx->ingress_ifindex != cfg_ifindex)
		return XDP_PASS;
	/* A single flow: the template is sent as built. */
	if (!cfg_vary)
		return XDP_TX;
	/* The generator builds every frame long enough; this is for the verifier. */
	if (data + l4_off + (cfg_tcp ? TCP_HLEN : UDP_HLEN) > data_end)
		return XDP_ABORTED;
	l3 = data + cfg_l3_off;
	l4 = data + l4_off;

	if (!cfg_random) {
		cur = bpf_map_lookup_elem(&pktgen_cursor, &zero);
		if (!cur)
			return XDP_ABORTED;
		idx = cur->next;
		cur->next += cur->step;
	}

	if (cfg_src_count > 1)
		addr_diff += set32(l3 + (cfg_ipv6 ? V6_SADDR_LO : V4_SADDR),
				   cfg_src_base + (__u32)pick(&idx, cfg_src_count));
	if (cfg_dst_count > 1)
		addr_diff += set32(l3 + (cfg_ipv6 ? V6_DADDR_LO : V4_DADDR),
				   cfg_dst_base + (__u32)pick(&idx, cfg_dst_count));
	if (cfg_sport_count > 1)
		port_diff += set16(l4, cfg_sport_base + (__u32)pick(&idx, cfg_sport_count));
	if (cfg_dport_count > 1)
		port_diff += set16(l4 + 2, cfg_dport_base + (__u32)pick(&idx, cfg_dport_count));

	/* IPv6 has no header checksum; the L4 one covers the addresses through the pseudo-header. */
	if (!cfg_ipv6 && addr_diff)
		csum_apply(l3 + V4_CSUM, addr_diff, 0);
	if (cfg_l4_csum && (addr_diff || port_diff))
		csum_apply(l4 + (cfg_tcp ? TCP_CSUM : UDP_CSUM), addr_diff + port_diff, !cfg_tcp);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
