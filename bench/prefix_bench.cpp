// Prefix tables against the kernel's LPM trie, in one run, holding the same prefixes.
//
// Lookups: BPF_PROG_TEST_RUN repeats a program kRepeat times; the kernel reports the mean
// ns per run (integer ns), which is the iteration's manual time. Each run takes the next
// address of a 1M-entry array (bench/bpf/xdpctl_bench_prefix.bpf.c), so consecutive
// lookups hit unrelated parts of the structure, as random traffic does. The same addresses
// go to every structure of a case:
//   <case>/base        address fetch and bookkeeping only: the floor to subtract
//   <case>/dir_flat    the prefix table in a plain array (line reads inlined)
//   <case>/dir_table   the prefix table as the datapath holds it: an ARRAY_OF_MAPS inner
//                      map (BPF_F_INNER_MAP: one call per line read)
//   <case>/lpm_trie    BPF_MAP_TYPE_LPM_TRIE (BPF_F_NO_PREALLOC) with the same prefixes
//   <case>/compare     base, dir_table and lpm_trie in turn within every iteration: the
//                      ratio to quote (trie_over_dir, and _net of base)
// Cases: IPv4 sets of 10, 10,000 and 1,000,000 BGP-like prefixes with uniform random
// addresses; an IPv6 set of 256,000 prefixes shaped like a real table, 80% of the addresses
// inside its prefixes (uniform IPv6 addresses would almost all stop at level 1).
// Counters: ns_per_lookup (kernel mean), net_ns (minus base), map_bytes (memlock of the
// structure), and on lpm_trie: trie_over_dir = trie ns / dir_table ns, both net of base.
//
// Control plane: build_load/* times, end to end, text prefixes -> parse -> build -> map
// create and fill through mmap -> switch an ARRAY_OF_MAPS slot (what `set load` does), and
// for the trie, map create + batch insert of the same prefixes.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "abi/xdpctl_abi.h"
#include "bpf_test_run.h"
#include "util/error.h"
#include "policy/prefix_table.h"
#include "attach/skeleton.h"
#include "workloads.h"
#include "xdpctl_bench_prefix.skel.h"

using namespace xdpctl;
using xdpctl::bench::bgp_like4;
using xdpctl::bench::real_like6;

namespace {

constexpr int kRepeat = 1 << 18;
constexpr size_t kAddrs = size_t(1) << 20;  // BENCH_ADDRS in the BPF program
constexpr size_t kVerify = size_t(1) << 16;
using Rng = std::mt19937_64;

// ---- prefix sets ---------------------------------------------------------------------------

// ---- one case: a set in every structure, loaded and cross-checked -------------------------

struct Case {
    std::string name;
    bool v6 = false;
    size_t prefixes = 0;
    SkelPtr<xdpctl_bench_prefix> skel;
    UniqueFd table;  // the generation in pfx_tables[0]
    PrefixTableStats stats;
    uint64_t dir_bytes = 0;
    uint64_t lpm_bytes = 0;
    std::vector<std::string> text;  // the same set as a set file's lines, for build_load
};

void lpm_insert(int fd, const std::vector<PrefixEntry4>& v4, const std::vector<PrefixEntry6>& v6)
{
    // Key layouts of struct lpm4_key / lpm6_key in the BPF program: length, then the
    // address in network order.
    std::vector<uint8_t> keys;
    std::vector<uint32_t> values;
    size_t key_size = 0;
    if (!v6.empty()) {
        key_size = 20;
        keys.resize(v6.size() * key_size);
        for (size_t i = 0; i < v6.size(); i++) {
            uint8_t* k = &keys[i * key_size];
            const uint32_t len = v6[i].prefix.len;
            std::memcpy(k, &len, 4);
            for (int b = 0; b < 8; b++) {
                k[4 + b] = uint8_t(v6[i].prefix.addr.hi >> (56 - 8 * b));
                k[12 + b] = uint8_t(v6[i].prefix.addr.lo >> (56 - 8 * b));
            }
            values.push_back(v6[i].value);
        }
    } else {
        key_size = 8;
        keys.resize(v4.size() * key_size);
        for (size_t i = 0; i < v4.size(); i++) {
            const uint32_t len = v4[i].prefix.len, a = htonl(v4[i].prefix.addr);
            std::memcpy(&keys[i * key_size], &len, 4);
            std::memcpy(&keys[i * key_size + 4], &a, 4);
            values.push_back(v4[i].value);
        }
    }
    // One syscall for all when the kernel takes batches; element by element otherwise.
    __u32 count = uint32_t(values.size());
    if (bpf_map_update_batch(fd, keys.data(), values.data(), &count, nullptr) == 0 && count == values.size())
        return;
    for (size_t i = 0; i < values.size(); i++)
        if (bpf_map_update_elem(fd, &keys[i * key_size], &values[i], BPF_ANY) != 0)
            fail("LPM trie insert: {}", errno_str(errno));
}

UniqueFd create_lpm(bool v6, size_t n)
{
    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
    const int fd = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "bench_lpm", v6 ? 20 : 8, 4, uint32_t(n), &opts);
    if (fd < 0)
        fail("cannot create an LPM trie: {}", errno_str(errno));
    return UniqueFd(fd);
}

std::vector<uint32_t> run_recorded(Case& c, bpf_program* prog, size_t n)
{
    c.skel->bss->next_index = 0;
    c.skel->bss->record = 1;
    const test::RunResult r = test::test_run(bpf_program__fd(prog), std::vector<uint8_t>(64, 0), int(n));
    c.skel->bss->record = 0;
    if (r.err)
        fail("BPF_PROG_TEST_RUN: {}", errno_str(r.err));
    MappedMap results(bpf_map__fd(c.skel->maps.results));
    std::vector<uint32_t> out(n);
    for (size_t i = 0; i < n; i++)
        out[i] = results.at<uint32_t>(i);
    return out;
}

std::unique_ptr<Case> make_case(std::string name, const std::vector<PrefixEntry4>& v4,
                                const std::vector<PrefixEntry6>& v6, uint64_t seed)
{
    auto c = std::make_unique<Case>();
    c->name = std::move(name);
    c->v6 = !v6.empty();
    c->prefixes = c->v6 ? v6.size() : v4.size();
    for (const auto& e : v4)
        c->text.push_back(to_string(e.prefix));
    for (const auto& e : v6)
        c->text.push_back(to_string(e.prefix));

    const PrefixTable t = PrefixTable::build(v4, v6);
    c->stats = t.stats();
    c->table = create_prefix_table_map(t);
    c->dir_bytes = map_memlock(c->table.get());

    c->skel.reset(xdpctl_bench_prefix::open());
    if (!c->skel)
        fail("cannot open xdpctl_bench_prefix: {}", errno_str(errno));
    bpf_map__set_max_entries(c->skel->maps.pfx_flat, uint32_t(t.lines().size()));
    // The unused family's trie stays tiny; BPF_F_NO_PREALLOC allocates per prefix anyway.
    bpf_map__set_max_entries(c->skel->maps.lpm4, uint32_t(std::max<size_t>(v4.size(), 1)));
    bpf_map__set_max_entries(c->skel->maps.lpm6, uint32_t(std::max<size_t>(v6.size(), 1)));
    if (int err = xdpctl_bench_prefix::load(c->skel.get()))
        fail("cannot load xdpctl_bench_prefix: {}", errno_str(err));
    install_prefix_table(bpf_map__fd(c->skel->maps.pfx_tables), 0, c->table.get());
    fill_prefix_table_map(bpf_map__fd(c->skel->maps.pfx_flat), t);
    const int lpm_fd = bpf_map__fd(c->v6 ? c->skel->maps.lpm6 : c->skel->maps.lpm4);
    lpm_insert(lpm_fd, v4, v6);
    c->lpm_bytes = map_memlock(lpm_fd);

    Rng rng(seed);
    if (!c->v6) {
        MappedMap a(bpf_map__fd(c->skel->maps.addrs4));
        for (size_t i = 0; i < kAddrs; i++)
            a.at<uint32_t>(i) = uint32_t(rng());  // uniform: byte order does not matter
    } else {
        MappedMap a(bpf_map__fd(c->skel->maps.addrs6));
        for (size_t i = 0; i < kAddrs; i++) {
            Ip6 x{(uint64_t(1) << 61) | (rng() >> 3), rng()};
            if (rng() % 5 != 0) {
                const Prefix6& p = v6[rng() % v6.size()].prefix;
                const Ip6 m = mask6(p.len);
                x = {p.addr.hi | (x.hi & ~m.hi), p.addr.lo | (x.lo & ~m.lo)};
            }
            uint8_t* b = &a.at<uint8_t>(i);
            for (int k = 0; k < 8; k++) {
                b[k] = uint8_t(x.hi >> (56 - 8 * k));
                b[8 + k] = uint8_t(x.lo >> (56 - 8 * k));
            }
        }
    }

    // Timing structures that disagree would mean nothing: all three answer the same.
    auto& p = c->skel->progs;
    const auto dir = run_recorded(*c, c->v6 ? p.pfx6_table : p.pfx4_table, kVerify);
    const auto flat = run_recorded(*c, c->v6 ? p.pfx6_flat : p.pfx4_flat, kVerify);
    const auto lpm = run_recorded(*c, c->v6 ? p.pfx6_lpm : p.pfx4_lpm, kVerify);
    size_t hits = 0;
    for (size_t i = 0; i < kVerify; i++) {
        if (dir[i] != lpm[i] || flat[i] != lpm[i])
            fail("{}: address #{}: table says {}, flat {}, LPM trie {}", c->name, i, dir[i], flat[i], lpm[i]);
        hits += dir[i] != XDPCTL_PFX_NONE;
    }
    std::fprintf(stderr,
                 "%s: %zu prefixes, %.1f%% of addresses match; table %.1f MiB (%zu+%zu IPv4 chunks + %zu sparse, %zu IPv6 "
                 "buckets, %zu markers, %zu displaced, %u lengths, tree depth %u), LPM trie %.1f MiB\n",
                 c->name.c_str(), c->prefixes, 100.0 * double(hits) / kVerify, double(c->dir_bytes) / (1 << 20),
                 c->stats.v4_l2_chunks, c->stats.v4_l3_chunks, c->stats.v4_sparse_chunks, c->stats.v6_buckets, c->stats.v6_markers,
                 c->stats.v6_displaced, c->stats.v6_lengths, c->stats.v6_tree_depth,
                 double(c->lpm_bytes) / (1 << 20));
    return c;
}

// ---- benchmarks ----------------------------------------------------------------------------

// Net means of earlier benchmarks of a run, so later ones report against them.
std::map<std::string, double> g_mean_ns;

void bench_lookup(benchmark::State& state, Case* c, bpf_program* prog, const char* kind, uint64_t bytes)
{
    const std::vector<uint8_t> frame(64, 0);
    double ns_sum = 0;
    for (auto _ : state) {
        const test::RunResult r = test::test_run(bpf_program__fd(prog), frame, kRepeat);
        if (r.err) {
            state.SkipWithError(("BPF_PROG_TEST_RUN: " + errno_str(r.err)).c_str());
            return;
        }
        ns_sum += r.duration_ns;
        state.SetIterationTime(double(r.duration_ns) * kRepeat * 1e-9);
    }
    const double mean = ns_sum / double(state.iterations());
    g_mean_ns[c->name + "/" + kind] = mean;
    state.SetItemsProcessed(int64_t(state.iterations()) * kRepeat);
    state.counters["ns_per_lookup"] = mean;
    state.counters["prefixes"] = double(c->prefixes);
    if (bytes)
        state.counters["map_bytes"] = double(bytes);
    if (auto b = g_mean_ns.find(c->name + "/base"); b != g_mean_ns.end() && std::string(kind) != "base") {
        state.counters["net_ns"] = mean - b->second;
        auto d = g_mean_ns.find(c->name + "/dir_table");
        if (std::string(kind) == "lpm_trie" && d != g_mean_ns.end() && d->second - b->second > 0)
            state.counters["trie_over_dir"] = (mean - b->second) / (d->second - b->second);
    }
}

// The same three programs taken in turn within each iteration, so that the ratio compares
// runs made seconds apart at most: on a shared machine the cache pressure from other work
// drifts by 2x over a minute, and a trie walk suffers from it more than the table does.
void bench_compare(benchmark::State& state, Case* c, bpf_program* base, bpf_program* dir, bpf_program* lpm)
{
    const std::vector<uint8_t> frame(64, 0);
    bpf_program* progs[3] = {base, dir, lpm};
    double sum[3] = {0, 0, 0};
    uint64_t turn = 0;
    for (auto _ : state) {
        double total = 0;
        for (int k = 0; k < 3; k++) {
            const int which = int((turn + k) % 3);  // rotate who goes first
            const test::RunResult r = test::test_run(bpf_program__fd(progs[which]), frame, kRepeat);
            if (r.err) {
                state.SkipWithError(("BPF_PROG_TEST_RUN: " + errno_str(r.err)).c_str());
                return;
            }
            sum[which] += r.duration_ns;
            total += double(r.duration_ns) * kRepeat * 1e-9;
        }
        turn++;
        state.SetIterationTime(total);
    }
    const double n = double(state.iterations());
    const double b = sum[0] / n, d = sum[1] / n, t = sum[2] / n;
    state.counters["base_ns"] = b;
    state.counters["dir_table_ns"] = d;
    state.counters["lpm_trie_ns"] = t;
    state.counters["trie_over_dir"] = t / d;
    if (d > b)
        state.counters["trie_over_dir_net"] = (t - b) / (d - b);
    state.counters["prefixes"] = double(c->prefixes);
}

// What `set load` does with a file of prefixes, minus reading the file: parse every line,
// build, create and fill the generation's map, switch the slot (which waits for an RCU
// grace period); the old generation is closed after the switch.
void bench_build_load_dir(benchmark::State& state, Case* c)
{
    const int outer = bpf_map__fd(c->skel->maps.pfx_tables);
    UniqueFd previous;
    double parse = 0, build = 0, fill = 0, swap = 0;
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<PrefixEntry4> v4;
        std::vector<PrefixEntry6> v6;
        uint32_t id = 1;
        for (const std::string& line : c->text) {
            const Cidr p = parse_cidr(line);
            const uint32_t value = p.except ? XDPCTL_PFX_EXCEPTED : id++;
            if (p.v6)
                v6.push_back({p.p6, value});
            else
                v4.push_back({p.p4, value});
        }
        const auto t1 = std::chrono::steady_clock::now();
        const PrefixTable t = PrefixTable::build(v4, v6);
        const auto t2 = std::chrono::steady_clock::now();
        UniqueFd fd = create_prefix_table_map(t);
        const auto t3 = std::chrono::steady_clock::now();
        install_prefix_table(outer, 1, fd.get());
        previous = std::move(fd);
        const auto t4 = std::chrono::steady_clock::now();
        auto s = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
        parse += s(t0, t1);
        build += s(t1, t2);
        fill += s(t2, t3);
        swap += s(t3, t4);
        state.SetIterationTime(s(t0, t4));
    }
    using C = benchmark::Counter;
    state.counters["parse_s"] = C(parse, C::kAvgIterations);
    state.counters["build_s"] = C(build, C::kAvgIterations);
    state.counters["map_fill_s"] = C(fill, C::kAvgIterations);
    state.counters["switch_s"] = C(swap, C::kAvgIterations);
    state.counters["prefixes"] = double(c->prefixes);
    state.counters["prefixes_per_s"] =
        benchmark::Counter(double(c->prefixes), benchmark::Counter::kIsIterationInvariantRate);
}

void bench_build_load_lpm(benchmark::State& state, Case* c)
{
    std::vector<PrefixEntry4> v4;
    std::vector<PrefixEntry6> v6;
    for (const std::string& line : c->text) {
        const Cidr p = parse_cidr(line);
        if (p.v6)
            v6.push_back({p.p6, 1});
        else
            v4.push_back({p.p4, 1});
    }
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        UniqueFd fd = create_lpm(c->v6, c->prefixes);
        lpm_insert(fd.get(), v4, v6);
        state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    state.counters["prefixes"] = double(c->prefixes);
    state.counters["prefixes_per_s"] =
        benchmark::Counter(double(c->prefixes), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

int main(int argc, char** argv)
{
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    if (geteuid() != 0) {
        std::fprintf(stderr, "xdpctl-prefixbench: needs root (loads BPF programs); nothing run\n");
        return 0;
    }
    try {
        std::vector<std::unique_ptr<Case>> cases;
        for (size_t n : {size_t(10), size_t(10000), size_t(1000000)})
            cases.push_back(make_case("v4/" + std::to_string(n), bgp_like4(n, n), {}, 42 + n));
        cases.push_back(make_case("v6/256000", {}, real_like6(256000, 6), 43));

        for (const auto& cp : cases) {
            Case* c = cp.get();
            auto& p = c->skel->progs;
            struct Prog {
                const char* kind;
                bpf_program* prog;
                uint64_t bytes;
            };
            const uint64_t flat_bytes = map_memlock(bpf_map__fd(c->skel->maps.pfx_flat));
            for (const Prog& pr : {Prog{"base", c->v6 ? p.pfx6_base : p.pfx4_base, 0},
                                   Prog{"dir_flat", c->v6 ? p.pfx6_flat : p.pfx4_flat, flat_bytes},
                                   Prog{"dir_table", c->v6 ? p.pfx6_table : p.pfx4_table, c->dir_bytes},
                                   Prog{"lpm_trie", c->v6 ? p.pfx6_lpm : p.pfx4_lpm, c->lpm_bytes}}) {
                benchmark::RegisterBenchmark((c->name + "/" + pr.kind).c_str(), bench_lookup, c, pr.prog,
                                             pr.kind, pr.bytes)
                    ->UseManualTime()
                    ->Unit(benchmark::kMillisecond);
            }
        }
        for (const auto& cp : cases) {
            Case* c = cp.get();
            auto& p = c->skel->progs;
            benchmark::RegisterBenchmark((c->name + "/compare").c_str(), bench_compare, c,
                                         c->v6 ? p.pfx6_base : p.pfx4_base, c->v6 ? p.pfx6_table : p.pfx4_table,
                                         c->v6 ? p.pfx6_lpm : p.pfx4_lpm)
                ->UseManualTime()
                ->Iterations(8)
                ->Unit(benchmark::kMillisecond);
        }
        for (Case* c : {cases[2].get(), cases[3].get()}) {
            benchmark::RegisterBenchmark(("build_load/" + c->name + "/dir_table").c_str(), bench_build_load_dir, c)
                ->UseManualTime()
                ->Iterations(3)
                ->Unit(benchmark::kMillisecond);
            benchmark::RegisterBenchmark(("build_load/" + c->name + "/lpm_trie").c_str(), bench_build_load_lpm, c)
                ->UseManualTime()
                ->Iterations(2)
                ->Unit(benchmark::kMillisecond);
        }
        benchmark::RunSpecifiedBenchmarks();
        benchmark::Shutdown();
    } catch (const Error& e) {
        std::fprintf(stderr, "xdpctl-prefixbench: %s\n", e.what());
        return 1;
    }
    return 0;
}
