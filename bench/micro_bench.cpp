// What the parser and the counters cost a packet, measured by the kernel: BPF_PROG_TEST_RUN
// runs a program `kRepeat` times on one frame and reports the mean ns per run. The empty
// XDP program is the floor (the test-run loop itself); compare the others with it.
//
// Counters: ns_per_packet (kernel-measured mean), frame_bytes. The iteration time is the
// kernel's time for kRepeat packets (manual time), so the syscall's own setup, which is
// milliseconds here, stays out of the figures.
//
// Parse and count: xdpctl_xdp/tcp4_64 loads every path (cfg_paths' default);
// xdpctl_xdp/no_policy_no_vip/tcp4_64 is the program `load` gives an interface with no policy
// and no VIP (no path: xdpctl_cnt, compiled without the filter and the LB check).
//
// The filtering cases (xdpctl_xdp_policy/N_rules) load xdpctl_xdp with a committed policy of
// N rules in the mix (bench/workloads.h: 70% /32 source + destination port, 20%
// source prefixes /8 to /30, 10% destination port ranges) and cycle 64 frames, each built
// to hit a random rule.
// They also print what building the policy cost: compile (Policy -> tables) and commit
// (tables -> maps, the flip, the grace periods, freeing the old generation).
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "abi/xdpctl_abi.h"
#include "bpf_test_run.h"
#include "util/error.h"
#include "lb/lb_maps.h"
#include "packet_builder.h"
#include "policy/compiled_policy.h"
#include "policy/policy_maps.h"
#include "policy/policy_paths.h"
#include "attach/loader.h"
#include "attach/skeleton.h"
#include "workloads.h"
#include "xdpctl_bench_empty.skel.h"
#include "xdpctl_xdp.skel.h"

using namespace xdpctl::test;

namespace {

constexpr int kRepeat = 100000;

void bench_prog(benchmark::State& state, int prog_fd, const std::vector<uint8_t>& frame)
{
    double ns_sum = 0;
    for (auto _ : state) {
        const RunResult r = test_run(prog_fd, frame, kRepeat);
        if (r.err) {
            state.SkipWithError(("BPF_PROG_TEST_RUN: " + xdpctl::errno_str(r.err)).c_str());
            return;
        }
        ns_sum += r.duration_ns;
        state.SetIterationTime(double(r.duration_ns) * kRepeat * 1e-9);
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * kRepeat);
    state.counters["ns_per_packet"] = benchmark::Counter(ns_sum, benchmark::Counter::kAvgIterations);
    state.counters["frame_bytes"] = double(frame.size());
}

PacketBuilder B() { return PacketBuilder(); }

// ---- filtering policies ----------------------------------------------------------------

constexpr int kFramesPerPolicy = 64;
constexpr int kRepeatPerFrame = 4000;

// The frames are run kRepeatPerFrame times each, in turn; the figure is the mean over all.
void bench_frames(benchmark::State& state, int prog_fd, const std::vector<std::vector<uint8_t>>& frames)
{
    double ns_sum = 0;
    for (auto _ : state) {
        uint64_t kernel_ns = 0;
        for (const auto& f : frames) {
            const RunResult r = test_run(prog_fd, f, kRepeatPerFrame);
            if (r.err) {
                state.SkipWithError(("BPF_PROG_TEST_RUN: " + xdpctl::errno_str(r.err)).c_str());
                return;
            }
            kernel_ns += uint64_t(r.duration_ns) * kRepeatPerFrame;
        }
        const double packets = double(frames.size()) * kRepeatPerFrame;
        ns_sum += double(kernel_ns) / packets;
        state.SetIterationTime(double(kernel_ns) * 1e-9);
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(frames.size()) * kRepeatPerFrame);
    state.counters["ns_per_packet"] = benchmark::Counter(ns_sum, benchmark::Counter::kAvgIterations);
}

struct PolicyCase {
    // Every packet a new flow to the flow cache (classify.h: XDPCTL_FLOW_CACHE_MISS): what a
    // flood of new flows pays; else one frame repeated hits it after its first run.
    bool new_flows = false;
    xdpctl::SkelPtr<xdpctl_xdp> prog;
    int fd = -1;  // the program measured (load_policy)
    std::vector<std::vector<uint8_t>> frames;
    double compile_ms = 0, commit_ms = 0;
    xdpctl::policy::CommitTimes times;
};

Ipv4Addr addr_bytes(uint32_t a)
{
    return {uint8_t(a >> 24), uint8_t(a >> 16), uint8_t(a >> 8), uint8_t(a)};
}

// `tables_only`: decided by the class tables and the walk whatever the policy's shape.
// `paths`: the object's cfg_paths, its program the one `load` picks for them (PolicyCase::fd);
// every path (xdpctl_xdp) by default.
void load_policy(PolicyCase& c, const xdpctl::policy::Policy& p, bool tables_only = false,
                 uint32_t paths = XDPCTL_PATHS_ALL);

// n rules in the mix, random priorities, and frames that each hit a random rule
// (the first match may be another rule, a prefix covering it with a lower priority number).
PolicyCase make_policy_case(size_t n, uint64_t seed, bool new_flows = false)
{
    using namespace xdpctl::policy;
    std::mt19937_64 rng(seed);
    Policy p = xdpctl::bench::rule_mix(n, rng);
    PolicyCase c;
    c.new_flows = new_flows;
    for (int f = 0; f < kFramesPerPolicy; f++) {
        const Rule& r = p.rules[rng() % n];
        uint32_t src = uint32_t(rng());
        if (r.src.kind == AddrMatch::Kind::prefix) {
            const auto& a = r.src.prefix.addr;
            const uint32_t net = uint32_t(a[0]) << 24 | uint32_t(a[1]) << 16 | uint32_t(a[2]) << 8 | a[3];
            const unsigned len = r.src.prefix.len;
            src = net | (len == 32 ? 0 : src & (~uint32_t(0) >> len));
        }
        uint16_t dport = uint16_t(rng());
        if (!r.dport.any())
            dport = uint16_t(r.dport.lo + rng() % (uint32_t(r.dport.hi - r.dport.lo) + 1));
        c.frames.push_back(B().ipv4({.src = addr_bytes(src), .dst = kDstIpv4})
                               .tcp({.sport = uint16_t(1024 + rng() % 60000), .dport = dport,
                                     .flags = tcp_flags::ack})
                               .payload(10)
                               .build());
    }
    load_policy(c, p);
    return c;
}

// What scripts/bench.sh's xdpctl_rules_N rows run: n - 1 rules of the mix (those holding
// the generator's source address drop), then `--priority 500 --proto udp --dport 9 --action
// drop`, which decides the generator's one flow, 198.18.0.1:1024 -> 198.18.0.2:9, near the
// middle of the evaluation order.
PolicyCase make_lab_case(size_t n, bool new_flows = false)
{
    using namespace xdpctl::policy;
    constexpr uint32_t kLabSrc = 0xc6120001;  // 198.18.0.1
    std::mt19937_64 rng(n);  // xdpctl-benchgen rules N-1 --seed N
    Policy p = xdpctl::bench::rule_mix(n - 1, rng, kLabSrc);
    Rule drop;
    drop.id = uint32_t(n);
    drop.priority = 500;
    drop.proto = 17;
    drop.dport = {9, 9};
    drop.action.kind = ActionKind::drop;
    p.rules.push_back(drop);
    PolicyCase c;
    c.new_flows = new_flows;
    c.frames.push_back(B().ipv4({.src = addr_bytes(kLabSrc), .dst = {198, 18, 0, 2}})
                           .udp(1024, 9)
                           .payload(18)
                           .build());
    load_policy(c, p);
    return c;
}

// n rules `--src A/32 --action drop`, A random, and frames that each hit one: a one-field
// policy (lib/policy/shapes.h), decided by the source's class unless `tables_only`.
// `paths`: load_policy's.
PolicyCase make_src32_case(size_t n, bool tables_only, uint32_t paths = XDPCTL_PATHS_ALL)
{
    using namespace xdpctl::policy;
    std::mt19937_64 rng(n);
    Policy p;
    for (size_t i = 0; i < n; i++) {
        Rule r;
        r.id = uint32_t(i + 1);
        r.src.kind = AddrMatch::Kind::prefix;
        const Ipv4Addr a = addr_bytes(uint32_t(rng()));
        std::copy(a.begin(), a.end(), r.src.prefix.addr.begin());
        r.src.prefix.len = 32;
        r.action.kind = ActionKind::drop;
        p.rules.push_back(r);
    }
    PolicyCase c;
    for (int f = 0; f < kFramesPerPolicy; f++) {
        const auto& a = p.rules[rng() % n].src.prefix.addr;
        c.frames.push_back(B().ipv4({.src = {a[0], a[1], a[2], a[3]}, .dst = kDstIpv4})
                               .udp(1024, 9)
                               .payload(18)
                               .build());
    }
    load_policy(c, p, tables_only, paths);
    return c;
}

void load_policy(PolicyCase& c, const xdpctl::policy::Policy& p, bool tables_only, uint32_t paths)
{
    using namespace xdpctl::policy;
    SlotOf slots;
    for (const auto& r : p.rules)
        slots[r.id] = r.id - 1;

    c.prog.reset(xdpctl_xdp::open());
    if (!c.prog)
        xdpctl::fail("cannot open xdpctl_xdp: {}", xdpctl::errno_str(errno));
    c.prog->rodata->cfg_malformed_action = XDPCTL_MALFORMED_PASS;
    c.prog->rodata->cfg_flow_cache = c.new_flows ? XDPCTL_FLOW_CACHE_MISS : XDPCTL_FLOW_CACHE_ON;
    c.prog->rodata->cfg_paths = paths;
    bpf_program__set_autoload(c.prog->progs.xdpctl_xdp, false);
    bpf_program__set_autoload(xdpctl::xdp_program_for_paths(*c.prog, paths), true);
    if (int err = xdpctl_xdp::load(c.prog.get()))
        xdpctl::fail("cannot load xdpctl_xdp: {}", xdpctl::errno_str(err));
    c.fd = bpf_program__fd(xdpctl::xdp_program_for_paths(*c.prog, paths));
    PolicyMaps maps = PolicyMaps::from_skeleton(*c.prog);
    maps.set_decide_small(!tables_only);
    maps.set_decide_field(!tables_only);
    const auto t0 = std::chrono::steady_clock::now();
    const CompiledPolicy compiled = compile_policy(p, [](const std::string&) { return 0u; });
    const auto t1 = std::chrono::steady_clock::now();
    // The first two commits create each generation's rows map; the figure is the third,
    // which like every later one refills a rows map in place and frees the address tables
    // of the generation it replaces.
    maps.commit(compiled, slots);
    maps.commit(compiled, slots);
    const auto t2 = std::chrono::steady_clock::now();
    maps.commit(compiled, slots);
    const auto t3 = std::chrono::steady_clock::now();
    c.compile_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    c.commit_ms = std::chrono::duration<double, std::milli>(t3 - t2).count();
    c.times = maps.last_commit_times();
}

// ---- load balancing (issue 6) ------------------------------------------------------------
// xdpctl_xdp with one DSR VIP (198.19.0.1:80/tcp, 3 backends). With repeat > 1 every run
// after the first is a connection-table hit. A new flow (Maglev lookup + table insert) needs
// a frame never seen before, so those runs are single (repeat = 1), each a new source port
// and address; the empty program is measured the same way for the ratio, since a single run
// carries the timer's own cost.
struct LbCase {
    xdpctl::SkelPtr<xdpctl_xdp> prog;
    uint32_t next_flow = 0;
};

// ---- the XDP program's kinds (issue 13) ----------------------------------------------------
// The programs `load` picks for a jumbo MTU (multi-buffer: bpf_xdp_get_buff_len, one helper
// call a packet, for the frame's length) and for --next with an empty slot (a tail call that
// falls through), beside the common one (xdp/xdpctl_xdp.bpf.c).
struct XdpKind {
    xdpctl::SkelPtr<xdpctl_xdp> skel;
    int fd = -1;
};

// What a loaded program is (xlated instructions, JIT bytes), on stderr; with
// XDPCTL_MICROBENCH_PIN=DIR in the environment also pinned as DIR/`label`, for
// `bpftool prog dump xlated|jited pinned DIR/label` (in a private bpffs: bench/private_bpffs.sh).
void describe_prog(int fd, const std::string& label)
{
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    bpf_prog_get_info_by_fd(fd, &info, &len);
    std::fprintf(stderr, "%s: %u xlated instructions, %u JIT bytes\n", label.c_str(), info.xlated_prog_len / 8,
                 info.jited_prog_len);
    if (const char* dir = std::getenv("XDPCTL_MICROBENCH_PIN"))
        if (bpf_obj_pin(fd, fmt::format("{}/{}", dir, label).c_str()) != 0)
            std::fprintf(stderr, "cannot pin %s in %s: %s\n", label.c_str(), dir, xdpctl::errno_str(errno).c_str());
}

// The program of xdpctl_xdp that `load` picks for a datapath with `paths` (enum xdpctl_path)
// and nothing else set: with no path the parse-and-count program, with the balancer alone its
// own, with the one-field path alone its own.
bpf_program* xdp_prog_for(const xdpctl_xdp& s, uint32_t paths)
{
    return xdpctl::xdp_program_for_paths(s, paths);
}

// xdpctl_xdp loaded as `load` loads it for a datapath with `paths`: xdp_prog_for's program.
xdpctl::SkelPtr<xdpctl_xdp> load_xdp(uint32_t paths)
{
    xdpctl::SkelPtr<xdpctl_xdp> s(xdpctl_xdp::open());
    if (!s)
        xdpctl::fail("cannot open xdpctl_xdp: {}", xdpctl::errno_str(errno));
    s->rodata->cfg_malformed_action = XDPCTL_MALFORMED_PASS;
    s->rodata->cfg_paths = paths;
    bpf_program__set_autoload(s->progs.xdpctl_xdp, false);
    bpf_program__set_autoload(xdp_prog_for(*s, paths), true);
    if (int err = xdpctl_xdp::load(s.get()))
        xdpctl::fail("cannot load xdpctl_xdp: {}", xdpctl::errno_str(err));
    return s;
}

XdpKind xdp_kind(const char* prog_name)
{
    XdpKind k;
    k.skel.reset(xdpctl_xdp::open());
    if (!k.skel)
        xdpctl::fail("cannot open xdpctl_xdp: {}", xdpctl::errno_str(errno));
    bpf_program* chosen = bpf_object__find_program_by_name(k.skel->obj, prog_name);
    bpf_program__set_autoload(k.skel->progs.xdpctl_xdp, false);
    bpf_program__set_autoload(chosen, true);
    if (int err = xdpctl_xdp::load(k.skel.get()))
        xdpctl::fail("cannot load xdpctl_xdp: {}", xdpctl::errno_str(err));
    k.fd = bpf_program__fd(chosen);
    describe_prog(k.fd, prog_name);
    return k;
}

std::unique_ptr<LbCase> make_lb_case()
{
    using namespace xdpctl::lb;
    auto c = std::make_unique<LbCase>();
    // What `load` gives an interface while a VIP exists and no policy is committed.
    c->prog = load_xdp(XDPCTL_PATH_LB);
    describe_prog(bpf_program__fd(xdp_prog_for(*c->prog, XDPCTL_PATH_LB)), "xdpctl_xdp_lb");
    LbMaps maps = LbMaps::from_skeleton(*c->prog);
    const VipSpec vip{parse_ip("198.19.0.1"), 80, 6};
    maps.add_vip(vip, {});
    for (int i = 1; i <= 3; i++) {
        BackendSpec b;
        b.addr = parse_ip(fmt::format("198.19.10.{}", i));
        b.mac = {0x02, 0, 0, 0, 0x0a, uint8_t(i)};
        maps.add_backend(vip, b);
    }
    return c;
}

std::vector<uint8_t> lb_frame(uint32_t flow)
{
    return B().ipv4({.src = {198, 18, uint8_t(flow >> 16), uint8_t(flow >> 8)}, .dst = {198, 19, 0, 1}})
        .tcp({.sport = uint16_t(1024 + (flow & 0xff) * 200 + (flow >> 24)), .dport = 80, .flags = tcp_flags::ack})
        .payload(10)
        .build();
}

constexpr int kSingleRuns = 4000;

// Keeps this thread on the CPU it runs on (per-CPU maps: the flow caches).
void stay_on_this_cpu()
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    sched_setaffinity(0, sizeof(one), &one);
}

// Each frame run once (repeat 1), in turn: the kernel's ns for all of them, or nullopt once
// a run failed (the benchmark then skips with the error).
std::optional<uint64_t> run_each_once(benchmark::State& state, int prog_fd,
                                      const std::vector<std::vector<uint8_t>>& frames)
{
    uint64_t kernel_ns = 0;
    for (const auto& f : frames) {
        const RunResult r = test_run(prog_fd, f, 1);
        if (r.err) {
            state.SkipWithError(("BPF_PROG_TEST_RUN: " + xdpctl::errno_str(r.err)).c_str());
            return std::nullopt;
        }
        kernel_ns += r.duration_ns;
    }
    return kernel_ns;
}

// kSingleRuns runs of one repetition each; `fresh`: every frame a flow never seen before.
void bench_single(benchmark::State& state, int prog_fd, LbCase* lc, bool fresh)
{
    double ns_sum = 0;
    std::vector<std::vector<uint8_t>> frames;
    for (int i = 0; i < kSingleRuns; i++)
        frames.push_back(lb_frame(uint32_t(i)));
    // The connection table is per CPU: stay on one, and put the frames in it first.
    stay_on_this_cpu();
    if (!fresh)
        for (const auto& f : frames)
            test_run(prog_fd, f, 1);
    for (auto _ : state) {
        if (fresh) {
            state.PauseTiming();
            for (auto& f : frames)
                f = lb_frame(1000000 + lc->next_flow++);
            state.ResumeTiming();
        }
        const std::optional<uint64_t> kernel_ns = run_each_once(state, prog_fd, frames);
        if (!kernel_ns)
            return;
        ns_sum += double(*kernel_ns) / kSingleRuns;
        state.SetIterationTime(double(*kernel_ns) * 1e-9);
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * kSingleRuns);
    state.counters["ns_per_packet"] = benchmark::Counter(ns_sum, benchmark::Counter::kAvgIterations);
}

// ---- the 1M-prefix set (issue 12) --------------------------------------------------------
// What scripts/bench.sh's xdpctl_prefix_1m row runs: a set of 1,000,000 IPv4 prefixes
// (bgp_like4, seed 1, and the 16 /8s of 16.0.0.0/4), `--src @bgp --action drop`, in the
// program `load` gives that policy (its paths), committed as a `rule add` commits it (the
// field split by the set: the set's own table). Each frame has a random source in
// 16.0.0.0/4, as the row's generator sends.
struct SetCase {
    xdpctl::SkelPtr<xdpctl_xdp> prog;
    int fd = -1;
    std::vector<std::vector<uint8_t>> frames;
};

// The row's set: 1,000,000 IPv4 prefixes (bgp_like4, seed 1, and the 16 /8s of 16.0.0.0/4).
xdpctl::policy::PrefixSet bgp_set_1m()
{
    using namespace xdpctl::policy;
    PrefixSet set;
    set.name = "bgp";
    auto add = [&](uint32_t a, uint8_t len) {
        SetEntry e;
        const Ipv4Addr b = addr_bytes(a);
        std::copy(b.begin(), b.end(), e.prefix.addr.begin());
        e.prefix.len = len;
        set.entries.push_back(e);
    };
    for (const auto& e : xdpctl::bench::bgp_like4(1000000 - 16, 1))
        add(e.prefix.addr, e.prefix.len);
    for (uint32_t a = 16; a < 32; a++)
        add(a << 24, 8);
    set.normalize();
    return set;
}

// `--id ID --priority PRIORITY --src @bgp --action drop`.
xdpctl::policy::Rule bgp_drop_rule(uint32_t id, uint32_t priority)
{
    using namespace xdpctl::policy;
    Rule r;
    r.id = id;
    r.priority = priority;
    r.src.kind = AddrMatch::Kind::set;
    r.src.set = "bgp";
    r.action.kind = ActionKind::drop;
    return r;
}

std::unique_ptr<SetCase> make_set_1m_case(size_t n_frames)
{
    using namespace xdpctl::policy;
    Policy p;
    p.sets["bgp"] = bgp_set_1m();
    p.rules.push_back(bgp_drop_rule(1, kDefaultPriority));
    CompiledPolicy c = compile_policy(p, [](const std::string&) { return 0u; }, {.max_split_sets = kMaxSplitSets});
    auto sc = std::make_unique<SetCase>();
    const uint32_t paths = compiled_paths(c)[0];
    sc->prog = load_xdp(paths);
    sc->fd = bpf_program__fd(xdp_prog_for(*sc->prog, paths));
    describe_prog(sc->fd, "xdpctl_xdp_set_1m");
    PolicyMaps maps = PolicyMaps::from_skeleton(*sc->prog);
    PreparedCommit placed;
    if (!maps.place_sets(c, p.sets, placed, true))
        xdpctl::fail("the 1M-prefix set got no table of its own");
    PreparedCommit prepared = take_address_tables(c, xdpctl::TableLayout::sparse16);
    prepared.set_slot = placed.set_slot;
    maps.commit(c, std::move(prepared), {{1, 0}});
    std::mt19937_64 rng(7);
    for (size_t i = 0; i < n_frames; i++)
        sc->frames.push_back(B().ipv4({.src = addr_bytes(0x10000000u | (uint32_t(rng()) & 0x0fffffffu)), .dst = kDstIpv4})
                                 .udp(1024, 9)
                                 .payload(18)
                                 .build());
    return sc;
}

// A blocklist beside the rules: 9,999 rules of the mix and `--src @bgp --action drop` on
// the 1M-prefix set, last (the default priority) or first (priority 0, the mix's moved up by
// one), compiled as a commit makes it with every loaded program of ABI 5 (`edge`: the set's
// rule decided beside the walk, the mix keeping its anchor lists) or before (ranked: the
// source field split by the set, the tables' walk).
// Frames `rule_hit` each hit a rule of the mix (as make_policy_case's), `set_member` have a
// source in 16.0.0.0/4 that no rule of the mix names (a member: the set decides); every packet
// misses the flow cache (what deciding costs).
struct MixSetCase {
    PolicyCase pc;
    std::vector<std::vector<uint8_t>> members;
};

std::unique_ptr<MixSetCase> make_mix_set_case(bool edge, bool first)
{
    using namespace xdpctl::policy;
    std::mt19937_64 rng(4242);
    Policy p = xdpctl::bench::rule_mix(9999, rng);
    if (first)
        for (Rule& r : p.rules)
            r.priority++;
    auto out = std::make_unique<MixSetCase>();
    out->pc.new_flows = true;
    for (int f = 0; f < kFramesPerPolicy; f++) {
        const Rule& r = p.rules[rng() % p.rules.size()];
        uint32_t src = uint32_t(rng());
        if (r.src.kind == AddrMatch::Kind::prefix) {
            const auto& a = r.src.prefix.addr;
            const uint32_t net = uint32_t(a[0]) << 24 | uint32_t(a[1]) << 16 | uint32_t(a[2]) << 8 | a[3];
            src = net | (r.src.prefix.len == 32 ? 0 : src & (~uint32_t(0) >> r.src.prefix.len));
        }
        const uint16_t dport = r.dport.any() ? uint16_t(rng()) : uint16_t(r.dport.lo + rng() % (uint32_t(r.dport.hi - r.dport.lo) + 1));
        out->pc.frames.push_back(B().ipv4({.src = addr_bytes(src), .dst = kDstIpv4})
                                     .tcp({.sport = uint16_t(1024 + rng() % 60000), .dport = dport, .flags = tcp_flags::ack})
                                     .payload(10)
                                     .build());
    }
    while (out->members.size() < size_t(kFramesPerPolicy)) {
        PacketKey k;
        k.family = Family::v4;
        const uint32_t src = 0x10000000u | (uint32_t(rng()) & 0x0fffffffu);
        const Ipv4Addr b = addr_bytes(src);
        std::copy(b.begin(), b.end(), k.src.begin());
        k.dst = {kDstIpv4[0], kDstIpv4[1], kDstIpv4[2], kDstIpv4[3]};
        k.proto = 17;
        k.has_ports = true;
        k.sport = 1024;
        k.dport = 9;
        if (classify(p, k).rule_id)
            continue;  // a rule of the mix names it: not the set's
        out->members.push_back(B().ipv4({.src = b, .dst = kDstIpv4}).udp(1024, 9).payload(18).build());
    }
    p.sets["bgp"] = bgp_set_1m();
    p.rules.push_back(bgp_drop_rule(10000, first ? 0 : kDefaultPriority));
    CompiledPolicy c = compile_policy(p, [](const std::string&) { return 0u; },
                                      {.max_split_sets = kMaxSplitSets, .edge_sets = edge});
    if (bool(c.dir[0].edge) != edge || (edge && c.dir[0].edge->first != first))
        xdpctl::fail("the set's rule is not the edge rule it should be");
    const uint32_t paths = compiled_paths(c)[0];
    PolicyCase& pc = out->pc;
    pc.prog.reset(xdpctl_xdp::open());
    if (!pc.prog)
        xdpctl::fail("cannot open xdpctl_xdp: {}", xdpctl::errno_str(errno));
    pc.prog->rodata->cfg_malformed_action = XDPCTL_MALFORMED_PASS;
    pc.prog->rodata->cfg_flow_cache = XDPCTL_FLOW_CACHE_MISS;
    pc.prog->rodata->cfg_paths = paths;
    bpf_program__set_autoload(pc.prog->progs.xdpctl_xdp, false);
    bpf_program__set_autoload(xdp_prog_for(*pc.prog, paths), true);
    if (int err = xdpctl_xdp::load(pc.prog.get()))
        xdpctl::fail("cannot load xdpctl_xdp: {}", xdpctl::errno_str(err));
    pc.fd = bpf_program__fd(xdp_prog_for(*pc.prog, paths));
    describe_prog(pc.fd, fmt::format("xdpctl_xdp_mix_set_{}_{}", first ? "first" : "last", edge ? "edge" : "ranked"));
    PolicyMaps maps = PolicyMaps::from_skeleton(*pc.prog);
    PreparedCommit placed;
    if (!maps.place_sets(c, p.sets, placed, true))
        xdpctl::fail("the 1M-prefix set got no table of its own");
    SlotOf slots;
    for (const auto& rule : p.rules)
        slots[rule.id] = rule.id - 1;
    PreparedCommit prepared = take_address_tables(c, xdpctl::TableLayout::sparse16);
    prepared.set_slot = placed.set_slot;
    maps.commit(c, std::move(prepared), slots);
    return out;
}

// Each frame run once, in turn (repeat 1: the timer's own cost is in each figure, so compare
// with the empty program measured the same way): every packet reads lines the packets
// before it did not, as random sources do on the wire, where a frame repeated reads them
// from the cache after its first run.
void bench_each_once(benchmark::State& state, int prog_fd, const std::vector<std::vector<uint8_t>>& frames)
{
    stay_on_this_cpu();
    double ns_sum = 0;
    for (auto _ : state) {
        const std::optional<uint64_t> kernel_ns = run_each_once(state, prog_fd, frames);
        if (!kernel_ns)
            return;
        ns_sum += double(*kernel_ns) / double(frames.size());
        state.SetIterationTime(double(*kernel_ns) * 1e-9);
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(frames.size()));
    state.counters["ns_per_packet"] = benchmark::Counter(ns_sum, benchmark::Counter::kAvgIterations);
}

}  // namespace

// Whether --benchmark_filter selects a benchmark of this name (its regex, or "-REGEX" for
// the ones it does not match, as Google Benchmark reads it): the policies and the LB case
// are built only for selected benchmarks, as building 10,000 rules takes most of a minute.
bool selected(const std::string& name)
{
    std::string f = benchmark::GetBenchmarkFilter();
    if (f.empty() || f == "all")
        return true;
    const bool negate = f[0] == '-';
    if (negate)
        f.erase(0, 1);
    return std::regex_search(name, std::regex(f, std::regex::extended)) != negate;
}

int main(int argc, char** argv)
{
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    if (geteuid() != 0) {
        std::fprintf(stderr, "xdpctl-microbench: needs root (loads BPF programs); nothing run\n");
        return 0;
    }

    try {
        xdpctl::SkelPtr<xdpctl_bench_empty> empty(xdpctl_bench_empty::open_and_load());
        if (!empty)
            xdpctl::fail("cannot load xdpctl_bench_empty: {}", xdpctl::errno_str(errno));
        const ParserPrograms xdpctl_progs(XDPCTL_MALFORMED_PASS);

        // 64 bytes: the smallest Ethernet frame with its FCS, the packet-rate worst case.
        const auto tcp4 = B().ipv4().tcp({.flags = tcp_flags::ack}).payload(10).build();
        // The most work the parser does on a valid frame in common use: two tags, a chain.
        const auto qinq6 = B().qinq(100, 200)
                               .ipv6()
                               .ext(Ext::hop_by_hop)
                               .ext(Ext::dstopts)
                               .udp()
                               .payload(10)
                               .build();

        const int empty_fd = bpf_program__fd(empty->progs.bench_xdp_pass);
        const int empty_tc_fd = bpf_program__fd(empty->progs.bench_tc_pass);
        const int xdp_fd = xdpctl_progs.prog_fd(XDPCTL_HOOK_XDP);
        const int tc_fd = xdpctl_progs.prog_fd(XDPCTL_HOOK_TC_INGRESS);
        // Parse and count: the program `load` gives an interface with no policy and no VIP
        // (no path: xdpctl_cnt, no filter, no load-balancer check).
        const auto parse_count = load_xdp(0);
        const int parse_count_fd = bpf_program__fd(xdp_prog_for(*parse_count, 0));
        describe_prog(parse_count_fd, "xdpctl_xdp_no_paths");
        describe_prog(xdp_fd, "xdpctl_xdp_all_paths");
        struct Case {
            const char* name;
            int fd;
            const std::vector<uint8_t>* frame;
        };
        for (const Case& c : {Case{"empty_xdp/tcp4_64", empty_fd, &tcp4},
                              Case{"xdpctl_xdp/tcp4_64", xdp_fd, &tcp4},
                              Case{"xdpctl_xdp/no_policy_no_vip/tcp4_64", parse_count_fd, &tcp4},
                              Case{"xdpctl_xdp/qinq_ipv6_2ext_udp", xdp_fd, &qinq6},
                              Case{"empty_tc/tcp4_64", empty_tc_fd, &tcp4},
                              Case{"xdpctl_tc_in/tcp4_64", tc_fd, &tcp4}}) {
            benchmark::RegisterBenchmark(c.name, bench_prog, c.fd, *c.frame)
                ->UseManualTime()
                ->Unit(benchmark::kMillisecond);
        }
        std::vector<XdpKind> kinds;
        for (auto [name, prog] : {std::pair{"xdpctl_xdp_kind/common/tcp4_64", "xdpctl_xdp"},
                                  std::pair{"xdpctl_xdp_kind/multi_buffer/tcp4_64", "xdpctl_xdp_mb"},
                                  std::pair{"xdpctl_xdp_kind/next_empty_slot/tcp4_64", "xdpctl_xdp_nx"}}) {
            if (!selected(name))
                continue;
            kinds.push_back(xdp_kind(prog));
            benchmark::RegisterBenchmark(name, bench_prog, kinds.back().fd, tcp4)
                ->UseManualTime()
                ->Unit(benchmark::kMillisecond);
        }
        // Built before any benchmark runs: loading and committing would disturb the figures.
        std::vector<std::unique_ptr<PolicyCase>> policies;
        // `/new_flows`: the same frames, each packet a miss of the flow cache.
        for (auto [n, new_flows] : {std::pair{size_t(1), false}, std::pair{size_t(1000), false},
                                    std::pair{size_t(10000), false}, std::pair{size_t(10000), true}}) {
            const std::string name = fmt::format("xdpctl_xdp_policy/{}_rules{}", n, new_flows ? "/new_flows" : "");
            if (!selected(name))
                continue;
            policies.push_back(std::make_unique<PolicyCase>(make_policy_case(n, 42 + n, new_flows)));
            const PolicyCase& pc = *policies.back();
            const auto& t = pc.times;
            std::fprintf(stderr,
                         "policy of %zu rules: compile %.1f ms, commit %.1f ms (tables %.1f, rows+addr %.1f, "
                         "install %.1f, flip %.1f, free+grace %.1f), rows %.1f MiB, address tables %.1f MiB\n",
                         n, pc.compile_ms, pc.commit_ms, t.tables_ns / 1e6, t.inner_ns / 1e6, t.install_ns / 1e6,
                         t.flip_ns / 1e6, t.free_ns / 1e6, double(t.rows_bytes) / (1 << 20),
                         double(t.addr_bytes) / (1 << 20));
            benchmark::RegisterBenchmark(name.c_str(), bench_frames, bpf_program__fd(pc.prog->progs.xdpctl_xdp),
                                         pc.frames)
                ->UseManualTime()
                ->Unit(benchmark::kMillisecond);
        }
        // bench.sh's rule rows, on their one flow.
        std::vector<std::unique_ptr<PolicyCase>> lab;
        for (auto [n, new_flows] : {std::pair{size_t(1), false}, std::pair{size_t(10000), false},
                                    std::pair{size_t(10000), true}}) {
            const std::string name =
                fmt::format("xdpctl_xdp_policy/bench_sh_{}_rules_udp64{}", n, new_flows ? "/new_flows" : "");
            if (!selected(name))
                continue;
            lab.push_back(std::make_unique<PolicyCase>(make_lab_case(n, new_flows)));
            benchmark::RegisterBenchmark(name.c_str(), bench_prog,
                                         bpf_program__fd(lab.back()->prog->progs.xdpctl_xdp), lab.back()->frames[0])
                ->UseManualTime()
                ->Unit(benchmark::kMillisecond);
        }
        // A one-field policy (10,000 source /32s) in its own shape and through the tables, in
        // xdpctl_xdp with every path; and in the program `load` attaches for it (its path
        // alone: xdpctl_fld_only, lib/bpf/policy_fast.h).
        for (const char* variant : {"one_field", "tables", "one_field_program"}) {
            const std::string name = fmt::format("xdpctl_xdp_policy/10000_src32/{}", variant);
            if (!selected(name))
                continue;
            const bool tables = std::string(variant) == "tables", own = std::string(variant) == "one_field_program";
            lab.push_back(std::make_unique<PolicyCase>(
                make_src32_case(10000, tables, own ? uint32_t(XDPCTL_PATH_FIELD) : uint32_t(XDPCTL_PATHS_ALL))));
            benchmark::RegisterBenchmark(name.c_str(), bench_frames, lab.back()->fd, lab.back()->frames)
                ->UseManualTime()
                ->Unit(benchmark::kMillisecond);
        }
        // The 1M-prefix set row: the same 64 frames repeated (lines in the cache), and 4,000
        // frames each run once beside the empty program run once on them.
        std::vector<std::unique_ptr<MixSetCase>> mix_sets;
        for (const auto& [edge, first] : {std::pair{true, false}, {false, false}, {true, true}, {false, true}}) {
            const std::string base = fmt::format("xdpctl_xdp_policy/10000_rules_set_1m/{}_{}", first ? "first" : "last",
                                                 edge ? "edge" : "ranked");
            if (!selected(base + "/rule_hit") && !selected(base + "/set_member"))
                continue;
            mix_sets.push_back(make_mix_set_case(edge, first));
            const MixSetCase& m = *mix_sets.back();
            for (const auto& [what, frames] : {std::pair{"rule_hit", &m.pc.frames}, std::pair{"set_member", &m.members}})
                benchmark::RegisterBenchmark((base + "/" + what).c_str(), bench_frames, m.pc.fd, *frames)
                    ->UseManualTime()
                    ->Unit(benchmark::kMillisecond);
        }
        std::unique_ptr<SetCase> set_1m;
        if (selected("xdpctl_xdp_policy/set_1m/random_src") || selected("xdpctl_xdp_policy/set_1m/each_once") ||
            selected("xdpctl_xdp_policy/set_1m/empty_xdp_each_once")) {
            set_1m = make_set_1m_case(kSingleRuns);
            const std::vector<std::vector<uint8_t>> some(set_1m->frames.begin(), set_1m->frames.begin() + kFramesPerPolicy);
            benchmark::RegisterBenchmark("xdpctl_xdp_policy/set_1m/random_src", bench_frames, set_1m->fd, some)
                ->UseManualTime()
                ->Unit(benchmark::kMillisecond);
            for (const auto& [name, fd] : {std::pair{"xdpctl_xdp_policy/set_1m/each_once", set_1m->fd},
                                           std::pair{"xdpctl_xdp_policy/set_1m/empty_xdp_each_once", empty_fd}})
                // A fixed count, as lb_single_run's: the manual time of an iteration is ~0.3 ms of
                // its ~2 ms wall, so a time-based count took bench.sh's micro pass minutes longer.
                benchmark::RegisterBenchmark(name, bench_each_once, fd, set_1m->frames)
                    ->UseManualTime()
                    ->Iterations(20)
                    ->Unit(benchmark::kMillisecond);
        }
        // Load balancing: built before any benchmark runs, like the policies.
        const bool lb_wanted = selected("xdpctl_xdp_lb/conntrack_hit") || selected("xdpctl_xdp_lb/non_vip_tcp4_64") ||
                               selected("lb_single_run/empty_xdp") || selected("lb_single_run/conntrack_hit") ||
                               selected("lb_single_run/new_flow");
        const auto lb = lb_wanted ? make_lb_case() : nullptr;
        if (lb) {
            const int lb_fd = bpf_program__fd(xdp_prog_for(*lb->prog, XDPCTL_PATH_LB));
            const auto lb_hit = lb_frame(7);
            benchmark::RegisterBenchmark("xdpctl_xdp_lb/conntrack_hit", bench_prog, lb_fd, lb_hit)
                ->UseManualTime()
                ->Unit(benchmark::kMillisecond);
            // A packet that is no VIP's while VIPs exist: the cost the LB adds to other traffic.
            benchmark::RegisterBenchmark("xdpctl_xdp_lb/non_vip_tcp4_64", bench_prog, lb_fd, tcp4)
                ->UseManualTime()
                ->Unit(benchmark::kMillisecond);
            for (const auto& [name, fd, new_flow] : {std::tuple{"lb_single_run/empty_xdp", empty_fd, false},
                                                     std::tuple{"lb_single_run/conntrack_hit", lb_fd, false},
                                                     std::tuple{"lb_single_run/new_flow", lb_fd, true}})
                benchmark::RegisterBenchmark(name, bench_single, fd, lb.get(), new_flow)
                    ->UseManualTime()
                    ->Iterations(5)
                    ->Unit(benchmark::kMillisecond);
        }
        benchmark::RunSpecifiedBenchmarks();
        benchmark::Shutdown();
    } catch (const xdpctl::Error& e) {
        std::fprintf(stderr, "xdpctl-microbench: %s\n", e.what());
        return 1;
    }
    return 0;
}
