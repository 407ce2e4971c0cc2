/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdpctl on the XDP hook: parse, classify against the filtering policy (ingress rules),
 * count, pass or drop. Malformed frames are not classified: they get the --malformed action.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpf/parse.h"
#include "bpf/count.h"
#include "bpf/classify.h"
#include "bpf/explain.h"
#include "bpf/lb.h"
#include "bpf/lb_fast.h"
#include "bpf/fast4.h"
#include "bpf/policy_fast.h"
#include "bpf/trace.h"

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} xdpctl_next SEC(".maps");

/* A --log rule's event (lib/bpf/trace.h); the bytes through the helper, which reads past the
 * first buffer too. */
static __noinline void xdp_log_event(struct xdp_md *ctx, __u32 rule_id, int drop, __u32 len)
{
	struct xdpctl_event *e = log_event_reserve(XDPCTL_HOOK_XDP, ctx->ingress_ifindex,
							     pol_iif_key(ctx, XDPCTL_HOOK_XDP), rule_id, drop, len);
	__u32 n = log_snap_len(len);

	if (e)
		log_event_submit(e, bpf_xdp_load_bytes(ctx, 0, e->data, n) ? 0 : n);
}

/*
 * One body, eleven programs: `frags`, `next` and `paths` are compile-time constants, so the
 * program a load picks (lib/attach/loader.cpp: XdpShape, and cfg_paths) has exactly the code
 * it needs and the common one, xdpctl_xdp, is the same code as before either existed. (A const
 * volatile switch would leave its load, and the context kept live for the tail call costs
 * spills on every path.)
 * frags: multi-buffer (BPF_F_XDP_HAS_FRAGS, for an MTU over one buffer): a frame may go on
 * past data_end, so its length for the counters is bpf_xdp_get_buff_len's, a helper call
 * (a call costs ~2.5 ns where the kernel does not mitigate SRSO, 7-10 ns with Safe RET).
 * next: `load --next`: what xdpctl passes is tail-called into xdpctl_next's slot 0 (empty:
 * XDP_PASS), on the unchanged frame.
 * paths: XDP_PATHS_NONE for the programs `load` picks when cfg_paths is 0 (no policy to
 * read, no VIP): parse and count, and nothing else. The verifier would delete the filter's and
 * the balancer's code from the others too, but not what the parser stores for them (addresses,
 * ports, offsets: the packet's record escapes into their calls, so clang keeps every field);
 * compiled without them, the record lives in registers and the parser keeps only what the
 * counters take (microbench: ~140 instructions a TCP/IPv4 frame instead of ~210).
 * XDP_PATHS_LB for the one `load` picks when cfg_paths is XDPCTL_PATH_LB alone (VIPs, no
 * policy, no --log rule), common shape only: parse, count, balance. Compiled without the
 * filter, clang allocates registers for the balancer's path alone and the flow cache's probe
 * is inlined (lb_step_inline): microbench, calls-cheap kind (a helper call ~2.4 ns), medians
 * of 6 alternated pairs beside the empty program's 7.4 ns, a packet to no VIP 21.0 -> 17.7 ns,
 * a flow-cache hit 35.9 -> 31.9 ns (docs/load-balancing.md, "The balancer's own program").
 * Its common frame (untagged TCP/UDP IPv4, no options, no fragment) takes lib/bpf/lb_fast.h
 * first: parsed into registers, counted, probed from the packet's bytes; every other frame
 * the parse below ("A parse into registers").
 * The parse-and-count programs (XDP_PATHS_NONE, one buffer) count that common frame from
 * the same registers (count_fast4, lib/bpf/fast4.h) and leave the rest to the parser:
 * microbench, calls-cheap kind of the AMD EPYC VM without microcode (a helper call ~1.1 ns),
 * medians of 5 interleaved repetitions in 4 alternated pairs, TCP/IPv4 64 bytes against the
 * empty program: 1.94x -> 1.45x (~9.9 -> ~7.0 ns beside ~5 ns).
 * XDP_PATHS_FIELD and XDP_PATHS_SMALL for the ones `load` picks when cfg_paths is the
 * one-field path alone (a policy decided by one address field, such as 10,000 source /32s) or
 * the small rules' alone (a policy of up to 8 rules), with no VIP and no --log rule, common
 * shape only: their common frame takes lib/bpf/policy_fast.h first (parsed into registers,
 * decided, counted), every other frame the body below, which is then the filter's as in
 * XDP_PATHS_ALL. AMD EPYC VM without microcode (a helper call ~1.1 ns), PROG_TEST_RUN against
 * xdp-filter in the same run (bench/prog_run_compare.sh): 10,000 source /32s 31 -> 18 ns
 * beside xdp-filter's 30.
 */
enum { XDP_PATHS_NONE, XDP_PATHS_ALL, XDP_PATHS_LB, XDP_PATHS_FIELD, XDP_PATHS_SMALL };

static __always_inline int xdpctl_xdp_run(struct xdp_md *ctx, const int frags, const int next,
					  const int paths)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	/* headers are parsed in the first buffer; the counters take the whole frame */
	__u32 len = frags ? (__u32)bpf_xdp_get_buff_len(ctx) : (__u32)(data_end - data);
	/* the filter's paths: the general program's and, past its fast path, the one-field one's */
	const int policy = paths == XDP_PATHS_ALL || paths == XDP_PATHS_FIELD || paths == XDP_PATHS_SMALL;
	struct pkt p;
	__u32 rule_id = 0, verdict = 0;
	int bad, drop = 0, act;

	if (paths == XDP_PATHS_LB && !frags && !next && lb_fast4(ctx, &p, &act))
		return act;
	if (paths == XDP_PATHS_FIELD && !frags && !next && field_fast4(ctx, &act))
		return act;
	if (paths == XDP_PATHS_SMALL && !frags && !next && small_fast4(ctx, &act))
		return act;
	if (paths == XDP_PATHS_NONE && !frags && count_fast4(ctx)) {
		if (next)
			bpf_tail_call(ctx, &xdpctl_next, 0);
		return XDP_PASS;
	}
	/* zeroed here, not where declared: the fast path's hit writes no record */
	__builtin_memset(&p, 0, sizeof(p));
	bad = parse_packet(data, data_end, len, &p);
	if (bad)
		drop = malformed_drop(bad);
	else if (policy) {
		verdict = classify(&p, 0, ctx, XDPCTL_HOOK_XDP, &rule_id);
		drop = (verdict & ~XDPCTL_POL_EMIT) == XDPCTL_ACT_DROP;
	}
	if (policy && cfg_explain) {  /* explain changes no counter and stops at the filter's verdict */
		explain_verdict(XDPCTL_HOOK_XDP, &p, bad, drop, rule_id, ctx->ingress_ifindex);
		return drop ? XDP_DROP : XDP_PASS;
	}
	count_packet(XDPCTL_HOOK_XDP, &p, bad, drop);
	if (policy && pol_has(XDPCTL_PATH_LOG) && (verdict & XDPCTL_POL_EMIT))
		xdp_log_event(ctx, rule_id, drop, len);
	if (drop)
		return XDP_DROP;
	/* Load balancing after the filter (lib/bpf/lb.h): counted above as passed. Only in a
	 * program loaded while a VIP exists (cfg_paths). */
	if (bad || paths == XDP_PATHS_NONE || paths == XDP_PATHS_FIELD || paths == XDP_PATHS_SMALL)
		act = XDP_PASS;
	else if (paths == XDP_PATHS_LB)
		act = lb_step_inline(ctx, &p);
	else
		act = pol_has(XDPCTL_PATH_LB) ? lb_step(ctx, &p) : XDP_PASS;
	if (next && act == XDP_PASS)
		bpf_tail_call(ctx, &xdpctl_next, 0);
	return act;
}

#define XDPCTL_XDP_PROGRAM(sec, name, frags, next, paths)      \
	SEC(sec) int name(struct xdp_md *ctx)                      \
	{                                                          \
		return xdpctl_xdp_run(ctx, frags, next, paths);    \
	}

XDPCTL_XDP_PROGRAM("xdp", xdpctl_xdp, 0, 0, XDP_PATHS_ALL)
/* The others load only when the loader asks ("?": no autoload). */
XDPCTL_XDP_PROGRAM("?xdp.frags", xdpctl_xdp_mb, 1, 0, XDP_PATHS_ALL)
XDPCTL_XDP_PROGRAM("?xdp", xdpctl_xdp_nx, 0, 1, XDP_PATHS_ALL)
XDPCTL_XDP_PROGRAM("?xdp.frags", xdpctl_xdp_mbnx, 1, 1, XDP_PATHS_ALL)
/* cfg_paths 0: parse and count (names of at most 15 characters: the kernel's limit). */
XDPCTL_XDP_PROGRAM("?xdp", xdpctl_cnt, 0, 0, XDP_PATHS_NONE)
XDPCTL_XDP_PROGRAM("?xdp.frags", xdpctl_cnt_mb, 1, 0, XDP_PATHS_NONE)
XDPCTL_XDP_PROGRAM("?xdp", xdpctl_cnt_nx, 0, 1, XDP_PATHS_NONE)
XDPCTL_XDP_PROGRAM("?xdp.frags", xdpctl_cnt_mbnx, 1, 1, XDP_PATHS_NONE)
/* cfg_paths XDPCTL_PATH_LB alone, common shape (the others take their xdpctl_xdp_*). */
XDPCTL_XDP_PROGRAM("?xdp", xdpctl_lb_only, 0, 0, XDP_PATHS_LB)
/* cfg_paths XDPCTL_PATH_FIELD alone (and the default's), common shape. */
XDPCTL_XDP_PROGRAM("?xdp", xdpctl_fld_only, 0, 0, XDP_PATHS_FIELD)
/* cfg_paths XDPCTL_PATH_SMALL alone (and the default's), common shape. */
XDPCTL_XDP_PROGRAM("?xdp", xdpctl_sml_only, 0, 0, XDP_PATHS_SMALL)

char LICENSE[] SEC("license") = "Dual BSD/GPL";
