// Random policies and packets for the differential tests (tests/test_compiler_diff.cpp
// against the compiled tables in C++, tests/test_classify_bpf.cpp against the BPF program):
// nested and overlapping prefixes from a small pool, set members and exceptions, port
// ranges on their edges, both families, VLANs, fragments, TCP flags, --iif, count and
// rate-limit rules; packets drawn from the same pools so that they hit the rules.
#pragma once

#include <array>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "policy/compiled_policy.h"
#include "policy/reference_classifier.h"
#include "policy/rule.h"

namespace xdpctl::test {

// The interfaces the generator names: "if1" -> 5, "if2" -> 6, "ifgone" -> 0 (a rule naming
// it matches nothing). Packets also come from "lo", index 1.
// How many random policies a differential test tries: n, or XDPCTL_DIFF_SEEDS_PERCENT percent
// of n (at least 1). scripts/sanitize.sh runs a share of them: under ASan+UBSan compiling a
// policy costs ~5x the release build's CPU, and the paths are the same at any count; the
// main suite runs them all. Thresholds on what the seeds hit scale with them.
inline uint64_t diff_seeds(uint64_t n)
{
    const char* v = std::getenv("XDPCTL_DIFF_SEEDS_PERCENT");
    const uint64_t pct = v && *v ? std::strtoull(v, nullptr, 10) : 100;
    const uint64_t scaled = n * (pct > 100 ? 100 : pct) / 100;
    return scaled ? scaled : 1;
}

inline constexpr uint32_t kGenIf1Index = 5;
inline constexpr uint32_t kGenIf2Index = 6;
uint32_t gen_ifindex(const std::string& name);

struct GenOptions {
    // Rate-limit rules get this rate and burst: the reference classifier takes them as
    // conforming, so a test against a real token bucket makes the burst never run out.
    uint64_t rate_pps = 100;
    uint64_t burst = 100;
};

struct Gen {
    std::mt19937_64 rng;
    GenOptions opts;
    explicit Gen(uint64_t seed, GenOptions o = {}) : rng(seed), opts(o) {}

    uint64_t u(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); }
    bool coin(int pct) { return int(u(100)) < pct; }

    // A pool of nested and overlapping prefixes so that rules and sets interact.
    std::vector<policy::Prefix> pool4, pool6;

    policy::Prefix make(policy::Family f, unsigned len);
    void make_pools();
    policy::Prefix pick(policy::Family f);
    policy::PortRange ports();
    policy::Policy policy(int n_rules, int n_sets);
    std::array<uint8_t, 16> address(policy::Family f);
    // *ifindex: the index of the packet's interface (gen_ifindex, or 1 for "lo").
    policy::PacketKey packet(uint32_t* ifindex);
};

// The class layout a generation holding `cd` records (PolicyMaps::held): what align_classes()
// numbers the next compile after.
policy::ClassLayout layout_of(const policy::CompiledDirection& cd);

}  // namespace xdpctl::test
