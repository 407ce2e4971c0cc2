/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Prefix-table lookups under BPF_PROG_TEST_RUN, for tests/test_prefix_table.cpp and
 * bench/prefix_bench.cpp. Each run of a program takes the next address from a filled array
 * (a counter walks it, so every packet of a repeated run looks up a different address),
 * looks it up in one structure, and can record the answer at the same index:
 *   pfx{4,6}_table  the datapath's path: the table is the inner map in pfx_tables[0]
 *   pfx{4,6}_flat   the same lookup on a plain array, whose line reads the verifier inlines
 *   pfx{4,6}_lpm    the kernel's LPM trie holding the same prefixes
 *   pfx{4,6}_base   only the address fetch and the bookkeeping: subtract it from the others
 * The frame itself is ignored.
 */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "abi/xdpctl_abi.h"
#include "bpf/prefix_table.h"

/* Addresses per array: a power of two, so the counter wraps with a mask. */
#define BENCH_ADDRS (1u << 20)

struct bench_addr6 {
	__u8 b[16]; /* network order, as in a packet */
};

struct lpm4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct lpm6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct xdpctl_pfx_table_map);
} pfx_tables SEC(".maps");

/* Sized by userspace before load; the default only has to be valid. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XDPCTL_PFX6_BUCKET_LINE);
	__type(key, __u32);
	__type(value, union xdpctl_pfx_line);
} pfx_flat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4u << 20);
	__type(key, struct lpm4_key);
	__type(value, __u32);
} lpm4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1u << 20);
	__type(key, struct lpm6_key);
	__type(value, __u32);
} lpm6 SEC(".maps");

/* Mmapable so the harness fills 1M addresses with plain stores. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, BENCH_ADDRS);
	__type(key, __u32);
	__type(value, __u32); /* network order */
} addrs4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, BENCH_ADDRS);
	__type(key, __u32);
	__type(value, struct bench_addr6);
} addrs6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, BENCH_ADDRS);
	__type(key, __u32);
	__type(value, __u32);
} results SEC(".maps");

/*
 * Harness state in .bss, which userspace reaches through the skeleton's mmap. Not per-CPU:
 * a repeated test run can move to another CPU when it reschedules, and only one run is in
 * flight at a time. `record` is a runtime switch, not rodata, so one loaded object both
 * checks answers (record = 1) and is timed (record = 0); its cost is one cached load.
 */
__u32 next_index;
__u32 record;
__u64 sink;

static __always_inline __u32 take_index(void)
{
	return next_index++ & (BENCH_ADDRS - 1);
}

/* Uses the answer, so the compiler cannot drop the lookup's last read. */
static __always_inline int finish(__u32 i, __u32 value)
{
	if (record) {
		__u32 *r = bpf_map_lookup_elem(&results, &i);

		if (r)
			*r = value;
	}
	sink += value;
	return XDP_PASS;
}

static __always_inline void *current_table(void)
{
	__u32 slot = 0;

	return bpf_map_lookup_elem(&pfx_tables, &slot);
}

static __always_inline void addr6_halves(const struct bench_addr6 *a, __u64 *hi, __u64 *lo)
{
	__u64 h, l;

	__builtin_memcpy(&h, &a->b[0], 8);
	__builtin_memcpy(&l, &a->b[8], 8);
	*hi = bpf_be64_to_cpu(h);
	*lo = bpf_be64_to_cpu(l);
}

SEC("xdp")
int pfx4_base(struct xdp_md *ctx)
{
	__u32 i = take_index();
	__u32 *a = bpf_map_lookup_elem(&addrs4, &i);

	if (!a)
		return XDP_ABORTED;
	return finish(i, bpf_ntohl(*a));
}

SEC("xdp")
int pfx4_table(struct xdp_md *ctx)
{
	__u32 i = take_index();
	__u32 *a = bpf_map_lookup_elem(&addrs4, &i);
	void *t = current_table();

	if (!a || !t)
		return XDP_ABORTED;
	return finish(i, xdpctl_pfx4_lookup(t, bpf_ntohl(*a)));
}

SEC("xdp")
int pfx4_flat(struct xdp_md *ctx)
{
	__u32 i = take_index();
	__u32 *a = bpf_map_lookup_elem(&addrs4, &i);

	if (!a)
		return XDP_ABORTED;
	return finish(i, xdpctl_pfx4_lookup(&pfx_flat, bpf_ntohl(*a)));
}

SEC("xdp")
int pfx4_lpm(struct xdp_md *ctx)
{
	__u32 i = take_index();
	__u32 *a = bpf_map_lookup_elem(&addrs4, &i);
	struct lpm4_key key = {.prefixlen = 32};
	__u32 *v;

	if (!a)
		return XDP_ABORTED;
	__builtin_memcpy(key.addr, a, 4);
	v = bpf_map_lookup_elem(&lpm4, &key);
	return finish(i, v ? *v : XDPCTL_PFX_NONE);
}

SEC("xdp")
int pfx6_base(struct xdp_md *ctx)
{
	__u32 i = take_index();
	struct bench_addr6 *a = bpf_map_lookup_elem(&addrs6, &i);
	__u64 hi, lo;

	if (!a)
		return XDP_ABORTED;
	addr6_halves(a, &hi, &lo);
	return finish(i, (__u32)(hi ^ lo));
}

SEC("xdp")
int pfx6_table(struct xdp_md *ctx)
{
	__u32 i = take_index();
	struct bench_addr6 *a = bpf_map_lookup_elem(&addrs6, &i);
	void *t = current_table();
	__u64 hi, lo;

	if (!a || !t)
		return XDP_ABORTED;
	addr6_halves(a, &hi, &lo);
	return finish(i, xdpctl_pfx6_lookup(t, hi, lo));
}

SEC("xdp")
int pfx6_flat(struct xdp_md *ctx)
{
	__u32 i = take_index();
	struct bench_addr6 *a = bpf_map_lookup_elem(&addrs6, &i);
	__u64 hi, lo;

	if (!a)
		return XDP_ABORTED;
	addr6_halves(a, &hi, &lo);
	return finish(i, xdpctl_pfx6_lookup(&pfx_flat, hi, lo));
}

SEC("xdp")
int pfx6_lpm(struct xdp_md *ctx)
{
	__u32 i = take_index();
	struct bench_addr6 *a = bpf_map_lookup_elem(&addrs6, &i);
	struct lpm6_key key = {.prefixlen = 128};
	__u32 *v;

	if (!a)
		return XDP_ABORTED;
	__builtin_memcpy(key.addr, a->b, 16);
	v = bpf_map_lookup_elem(&lpm6, &key);
	return finish(i, v ? *v : XDPCTL_PFX_NONE);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
