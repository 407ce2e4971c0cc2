// Atomic commits: packets run through the XDP program from two threads (one per CPU) while
// the main thread commits two policies in turn, A A B B A A ..., so that every commit
// rewrites a generation that held the other policy. A and B pass the probe packets by
// different rules; every mix of their tables (any part of one generation's header, class
// tables, rows or rule records read with the rest of the other's) drops them or decides
// them by a third rule. The design is checked first by walking every such mix in C++; then
// no probe packet may be dropped, and only A's and B's passing rules may count.
#include <pthread.h>
#include <sched.h>

#include <bpf/bpf.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "abi/xdpctl_abi.h"
#include "bpf_test_run.h"
#include "stats/counters.h"
#include "attach/datapath_paths.h"
#include "attach/iface_pins.h"
#include "netns_lab.h"
#include "packet_builder.h"
#include "policy/compiled_policy.h"
#include "policy/shapes.h"
#include "policy/policy_store.h"
#include "policy/reference_classifier.h"
#include "policy/rule_parse.h"
#include "policy/set_tables.h"
#include "policy_programs.h"

using namespace xdpctl;
using namespace xdpctl::test;
using namespace xdpctl::policy;

namespace {

uint32_t lo_only(const std::string& name)
{
    return name == "lo" ? 1 : 0;
}

// A passes the probe at rank 7 (rule 17) after decoys that shift the probe's class in every
// field (a decoy on an earlier value of a field takes the class id before the probe's); B
// passes it at rank 8 (rule 23). Both have 9 rules, so every rank exists in both, and each
// one's passing rank is, in the other, a rule so specific in every field that no mix of
// classes reaches it. No catch-all: a mix that matches nothing gets the default, drop.
constexpr const char* kPolicyA = R"(default drop
rule --id 11 --priority 1 --src 198.18.0.0/32 --action drop
rule --id 12 --priority 2 --dst 198.19.0.0/32 --action drop
rule --id 13 --priority 3 --proto tcp --sport 999 --action drop
rule --id 14 --priority 4 --proto tcp --dport 79 --action drop
rule --id 15 --priority 5 --proto icmp --action drop
rule --id 16 --priority 6 --vlan 9 --action drop
rule --id 10 --priority 7 --proto udp --action drop
rule --id 17 --priority 8 --src 198.18.0.1/32 --dst 198.19.0.1/32 --proto tcp --sport 1000 --dport 80 --vlan 10 --iif lo --action pass
rule --id 19 --priority 9 --src 198.18.77.77/32 --dst 198.19.77.77/32 --proto udp --sport 7777 --dport 7777 --vlan 777 --action drop
)";
constexpr const char* kPolicyB = R"(default drop
rule --id 21 --priority 1 --src 198.18.9.9/32 --action drop
rule --id 22 --priority 2 --src 198.18.9.8/32 --action drop
rule --id 24 --priority 3 --proto tcp --sport 2000 --action drop
rule --id 25 --priority 4 --proto tcp --dport 2000 --action drop
rule --id 26 --priority 5 --vlan 2000 --action drop
rule --id 28 --priority 6 --proto 200 --action drop
rule --id 29 --priority 7 --src 198.18.9.10/32 --action drop
rule --id 27 --priority 8 --src 198.18.66.66/32 --dst 198.19.66.66/32 --proto udp --sport 6666 --dport 6666 --vlan 666 --action drop
rule --id 23 --priority 9 --src 198.18.0.1/32 --dst 198.19.0.1/32 --proto tcp --sport 1000 --dport 80 --vlan 10 --action pass
)";
constexpr uint32_t kPassA = 17, kPassB = 23;

PacketKey probe_key()
{
    PacketKey k;
    k.family = Family::v4;
    k.src = parse_prefix("198.18.0.1").addr;
    k.dst = parse_prefix("198.19.0.1").addr;
    k.proto = 6;
    k.has_ports = true;
    k.sport = 1000;
    k.dport = 80;
    k.tcp_flags = tcp_flags::syn;
    k.vlan = 10;
    k.iif = "lo";
    return k;
}

std::vector<uint8_t> probe_frame()
{
    return PacketBuilder()
        .vlan(10)
        .ipv4({.src = {198, 18, 0, 1}, .dst = {198, 19, 0, 1}})
        .tcp({.sport = 1000, .dport = 80, .flags = tcp_flags::syn})
        .build();
}

// ---- the mixes, walked in C++ the way lib/bpf/classify.h walks the maps --------------------

enum Part { kHdr, kSrc, kDst, kSport, kDport, kL4, kVlan, kIif, kRows, kRecs, kParts };

struct Outcome {
    ActionKind action;
    uint32_t rule_id;
};

// Each part from the policy `from[part]`; a row or record that is not there reads as the
// datapath reads it: a missing row line gives the default, a rank past the records a
// zeroed record (pass, rule 0).
Outcome mixed(const CompiledPolicy* const from[kParts], const PacketKey& k, uint32_t ifindex)
{
    const CompiledDirection& h = from[kHdr]->dir[0];
    const ActionKind def = from[kHdr]->default_action;
    auto d = [&](Part p) -> const CompiledDirection& { return from[p]->dir[0]; };
    uint32_t cls[kFieldCount];
    cls[kFieldSrc] = d(kSrc).src_v4.lookup(Family::v4, k.src);
    cls[kFieldDst] = d(kDst).dst_v4.lookup(Family::v4, k.dst);
    cls[kFieldSport] = d(kSport).sport[k.sport];
    cls[kFieldDport] = d(kDport).dport[k.dport];
    cls[kFieldL4] = d(kL4).l4[l4_index(false, *k.proto, k.tcp_flags.value_or(0))];
    cls[kFieldVlan] = d(kVlan).vlan[*k.vlan];
    cls[kFieldIif] = d(kIif).iif[ifindex];
    const RowTable& rows = d(kRows).rows;
    std::vector<uint64_t> written[kFieldCount];
    const uint64_t* row[kFieldCount];
    for (int f = 0; f < kFieldCount; f++) {
        const size_t r = size_t(h.row_base[f]) + cls[f];
        if (r >= rows.count() || rows.row_words() != h.row_words())
            return {def, 0};
        written[f] = rows.row(r);
        row[f] = written[f].data();
    }
    for (uint32_t a = 0; a < h.agg_words; a++) {
        uint64_t agg = ~0ull, anchors = 0;
        for (int f = 0; f < kFieldCount; f++) {
            agg &= row[f][a];
            anchors |= row[f][h.agg_words + a];
        }
        for (agg &= anchors; agg; agg &= agg - 1) {
            const uint32_t w = a * 64 + uint32_t(__builtin_ctzll(agg));
            uint64_t word = ~0ull;
            for (int f = 0; f < kFieldCount; f++)
                word &= row[f][2 * h.agg_words + w];
            for (; word; word &= word - 1) {
                const uint32_t rank = w * 64 + uint32_t(__builtin_ctzll(word));
                if (rank >= h.n_rules)
                    return {def, 0};
                if (rank >= d(kRecs).ranked.size())
                    return {ActionKind::pass, 0};
                const RuleRecord& r = d(kRecs).ranked[rank];
                if (r.action == ActionKind::count || r.action == ActionKind::rate_limit)
                    continue;
                return {r.action, r.id};
            }
        }
    }
    return {def, 0};
}

void check_design(const CompiledPolicy& a, const CompiledPolicy& b, const PacketKey& k)
{
    const CompiledPolicy* from[kParts];
    int undetectable = 0;
    for (uint32_t mask = 0; mask < (1u << kParts); mask++) {
        for (int p = 0; p < kParts; p++)
            from[p] = mask & (1u << p) ? &b : &a;
        const Outcome o = mixed(from, k, 1);
        if (mask == 0) {
            ASSERT_EQ(o.rule_id, kPassA);
            ASSERT_EQ(o.action, ActionKind::pass);
        } else if (mask == (1u << kParts) - 1) {
            ASSERT_EQ(o.rule_id, kPassB);
            ASSERT_EQ(o.action, ActionKind::pass);
        } else if (o.action == ActionKind::pass && (o.rule_id == kPassA || o.rule_id == kPassB)) {
            ADD_FAILURE() << "parts from B (mask 0x" << std::hex << mask << std::dec << ") give rule " << o.rule_id
                          << ": that mix would go unnoticed";
            undetectable++;
        }
    }
    ASSERT_EQ(undetectable, 0);
}

}  // namespace

TEST(AtomicCommit, EveryMixOfTheTwoPoliciesIsDetectable)
{
    const Policy pa = parse_policy_text(kPolicyA, "A"), pb = parse_policy_text(kPolicyB, "B");
    const PacketKey k = probe_key();
    ASSERT_EQ(classify(pa, k).rule_id, kPassA);
    ASSERT_EQ(classify(pb, k).rule_id, kPassB);
    check_design(compile_policy(pa, lo_only), compile_policy(pb, lo_only), k);
}

namespace {

// Commits `c` (compiled from `p`) as `xdpctl` commits with sets in tables of their own: a set
// whose entries no slot holds gets a table built anew into a slot no generation refers to,
// and the old one is freed after the flip.
void commit_placing_sets(PolicyPrograms& progs, const CompiledPolicy& c, const Policy& p, const SlotOf& slots)
{
    PreparedCommit placed;
    if (!progs.maps().place_sets(c, p.sets, placed, true))
        throw std::runtime_error("the sets found no slots");
    PreparedCommit prepared = prepare_commit(c);
    prepared.set_slot = placed.set_slot;
    progs.maps().commit(c, std::move(prepared), slots);
}

// Commits A and B in turn (A A B B ...) while two threads run the probe through the XDP
// program; `shape(maps, i)` may change how commit i lays the policy out. No probe may be
// dropped, and only A's and B's passing rules may count it, exactly as often as it passed.
// `split_sets`: the policies' sets in tables of their own (set_tables.h), placed as `xdpctl`
// commits place them: a set whose entries differ between A and B gets a table built anew
// into a slot no generation refers to, and the old one is freed after the flip.
// `edges`: a first or last rule on a set alone decided beside the walk (CompiledDirection::edge;
// with the sets placed so).
void commits_under_load(const Policy& pa, const Policy& pb, uint32_t pass_a, uint32_t pass_b,
                        const std::function<void(PolicyMaps&, int)>& shape, bool split_sets = false,
                        bool edges = false)
{
    const CompileOptions opts{
        .max_split_sets = split_sets ? kMaxSplitSets : 0, .edge_sets = edges, .edge_min_rules = 1};
    const CompiledPolicy ca = compile_policy(pa, lo_only, opts), cb = compile_policy(pb, lo_only, opts);
    // One slot per rule id of both, from 1: slot 0 would count a zeroed record.
    SlotOf slots = slots_by_id(pa, 1);
    for (const auto& [id, slot] : slots_by_id(pb, uint32_t(slots.size()) + 1))
        slots[id] = slot;
    const uint32_t n_slots = uint32_t(slots.size()) + 1;

    PolicyPrograms progs;
    auto commit = [&](const CompiledPolicy& c, const Policy& p) {
        if (!split_sets)
            return progs.maps().commit(c, slots);
        commit_placing_sets(progs, c, p, slots);
    };
    commit(ca, pa);
    const std::vector<xdpctl_rule_ctr> before = read_rule_counters(progs.rule_counters_fd(), n_slots);

    const auto frame = probe_frame();
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> passed{0}, dropped{0}, errors{0};
    std::vector<std::thread> senders;
    const int cpus = std::min(2, possible_cpus());
    for (int cpu = 0; cpu < cpus; cpu++)
        senders.emplace_back([&, cpu] {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
            uint64_t p = 0, d = 0, e = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                const RunResult r = progs.run(XDPCTL_HOOK_XDP, frame);
                e += r.err != 0;
                p += r.err == 0 && r.retval == XDP_PASS;
                d += r.err == 0 && r.retval != XDP_PASS;
            }
            passed += p;
            dropped += d;
            errors += e;
        });

    // Each commit is a window of 1 to 30 ms (the median, by shape) in which the two threads
    // judge thousands of probes (~300,000 a second): enough to meet every moment of a commit's
    // writes many times. The policy turns every 2 commits and the shape every 3, so each
    // change of policy meets each change of shape every 12 commits: 120 make 10 rounds of
    // them (300, 25 rounds, took 2.5 times as long: 30 s of the suite's 60).
    constexpr int kCommits = 120;
    std::vector<uint64_t> commit_ns;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 1; i <= kCommits; i++) {
        shape(progs.maps(), i);
        if ((i / 2) % 2)
            commit(cb, pb);
        else
            commit(ca, pa);
        commit_ns.push_back(progs.maps().last_commit_times().total_ns);
    }
    stop = true;
    for (auto& t : senders)
        t.join();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::sort(commit_ns.begin(), commit_ns.end());
    std::printf("%d commits in %.1f s (median %.1f ms, max %.1f ms), %lu packets judged meanwhile\n", kCommits, secs,
                double(commit_ns[commit_ns.size() / 2]) / 1e6, double(commit_ns.back()) / 1e6,
                (unsigned long)(passed + dropped));

    EXPECT_EQ(errors.load(), 0u);
    EXPECT_EQ(dropped.load(), 0u) << "packets judged by a mix of two generations";
    EXPECT_GT(passed.load(), uint64_t(kCommits)) << "too few packets ran during the commits to mean anything";
    const std::vector<xdpctl_rule_ctr> after = read_rule_counters(progs.rule_counters_fd(), n_slots);
    uint64_t by_pass_rules = 0;
    for (uint32_t s = 0; s < n_slots; s++) {
        const uint64_t delta = after[s].packets - before[s].packets;
        const bool pass_rule = s == slots.at(pass_a) || s == slots.at(pass_b);
        if (pass_rule)
            by_pass_rules += delta;
        else
            EXPECT_EQ(delta, 0u) << "slot " << s << " counted packets: a mix decided by another rule";
    }
    EXPECT_EQ(by_pass_rules, passed.load() + dropped.load());
}

}  // namespace

TEST(AtomicCommit, NoPacketSeesAMixOfGenerations)
{
    XDPCTL_REQUIRE_ROOT();
    commits_under_load(parse_policy_text(kPolicyA, "A"), parse_policy_text(kPolicyB, "B"), kPassA, kPassB,
                       [](PolicyMaps& m, int i) {
                           // Both homes of the rows, and the moves between them: runs of 3
                           // commits each way.
                           m.set_use_small_rows((i / 3) % 2 == 0);
                       });
}

// Small policies (no --iif, at most XDPCTL_POL_SMALL_MAX rules) are decided by comparing
// their rules (xdpctl_psmall) or by the tables: commits switch between the two shapes in runs
// of 3, and between two policies, with no mix and the counters exact across the switches.
constexpr const char* kSmallA = R"(default drop
rule --id 31 --priority 1 --src 198.18.0.0/32 --action drop
rule --id 32 --priority 2 --proto tcp --dport 79 --action drop
rule --id 33 --priority 3 --vlan 9 --action drop
rule --id 34 --priority 4 --src 198.18.0.0/24 --proto udp --action count
rule --id 37 --priority 8 --src 198.18.0.1/32 --dst 198.19.0.1/32 --proto tcp --sport 1000 --dport 80 --vlan 10 --action pass
rule --id 39 --priority 9 --src 198.18.77.77/32 --proto udp --action drop
)";
constexpr const char* kSmallB = R"(default drop
rule --id 41 --priority 1 --src 198.18.9.9/32 --action drop
rule --id 42 --priority 2 --proto udp --dport 80 --action drop
rule --id 43 --priority 3 --dst 198.19.0.0/24 --proto tcp --tcp-flags ack --action drop
rule --id 47 --priority 8 --src 198.18.0.0/16 --dst 198.19.0.1/32 --proto tcp --dport 80 --vlan 10 --action pass
rule --id 48 --priority 9 --action drop
)";

// One-field policies (every rule on the source address alone, drop or pass, more rules than
// the small path takes): decided by the source's class (xdpctl_pdecide) or by the tables, in
// runs of 3 commits each way, between two policies whose passing ranks differ.
constexpr const char* kOneFieldA = R"(default drop
rule --id 50 --priority 1 --src 198.18.10.0/24 --action drop
rule --id 51 --priority 2 --src 198.18.11.0/24 --action drop
rule --id 52 --priority 3 --src 198.18.12.0/24 --action drop
rule --id 53 --priority 4 --src 198.18.13.0/24 --action drop
rule --id 54 --priority 5 --src 198.18.14.0/24 --action drop
rule --id 55 --priority 6 --src 198.18.15.0/24 --action drop
rule --id 56 --priority 7 --src 198.18.16.0/24 --action drop
rule --id 57 --priority 8 --src 198.18.17.0/24 --action drop
rule --id 58 --priority 9 --src 198.18.18.0/24 --action drop
rule --id 61 --priority 50 --src 198.18.0.1/32 --action pass
rule --id 62 --priority 60 --src 198.18.0.0/16 --action drop
)";
constexpr const char* kOneFieldB = R"(default drop
rule --id 70 --priority 1 --src 198.18.30.1/32 --action drop
rule --id 71 --priority 2 --src 198.18.31.1/32 --action drop
rule --id 72 --priority 3 --src 198.18.32.1/32 --action drop
rule --id 73 --priority 4 --src 198.18.33.1/32 --action drop
rule --id 74 --priority 5 --src 198.18.34.1/32 --action drop
rule --id 75 --priority 6 --src 198.18.35.1/32 --action drop
rule --id 76 --priority 7 --src 198.18.36.1/32 --action drop
rule --id 77 --priority 8 --src 198.18.37.1/32 --action drop
rule --id 78 --priority 9 --src 198.18.38.1/32 --action drop
rule --id 81 --priority 20 --src 198.18.0.0/24 --action pass
rule --id 82 --priority 30 --src 2001:2::/48 --action drop
rule --id 83 --priority 40 --src 198.18.0.1/32 --action drop
)";

// Drop and pass rules on several fields, more than the small path takes: decided by the rules
// on the anchor lists of the packet's classes (xdpctl_panc). Anchored at the source, the
// destination, the destination port, the VLAN and L4; the probe's rule (91) is anchored at the
// source and beaten by nothing.
constexpr const char* kAnchorsA = R"(default drop
rule --id 85 --priority 1 --src 198.18.0.1/32 --proto udp --action drop
rule --id 86 --priority 2 --dst 198.19.0.1/32 --proto tcp --dport 81-90 --action drop
rule --id 87 --priority 3 --proto tcp --dport 1-79 --action drop
rule --id 88 --priority 4 --vlan 11 --action drop
rule --id 89 --priority 5 --proto icmp --action drop
rule --id 90 --priority 6 --src 198.18.0.0/24 --proto tcp --tcp-flags ack --action drop
rule --id 91 --priority 7 --src 198.18.0.0/16 --proto tcp --dport 80 --action pass
rule --id 92 --priority 8 --proto tcp --dport 80 --action drop
rule --id 93 --priority 9 --src 198.18.0.1/32 --action drop
)";

// Policies A and B from their texts, the probe decided in each by the rule given (what
// commits_under_load() tells apart); false when it is not.
bool probed_pair(const char* text_a, const char* text_b, uint32_t pass_a, uint32_t pass_b, Policy& a, Policy& b)
{
    a = parse_policy_text(text_a, "A");
    b = parse_policy_text(text_b, "B");
    const uint32_t got_a = classify(a, probe_key()).rule_id, got_b = classify(b, probe_key()).rule_id;
    EXPECT_EQ(got_a, pass_a);
    EXPECT_EQ(got_b, pass_b);
    return got_a == pass_a && got_b == pass_b;
}

// Commits go between a policy of the anchor lists and a one-field one, each in runs of 3 by
// its own path and then by the tables: no packet sees a mix, and the counters stay exact.
TEST(AtomicCommit, NoPacketSeesAMixAcrossAnchorShapeChanges)
{
    XDPCTL_REQUIRE_ROOT();
    Policy a, b;
    ASSERT_TRUE(probed_pair(kAnchorsA, kOneFieldB, 91, 81, a, b));
    ASSERT_TRUE(anchor_lists(compile_policy(a, lo_only).dir[0]));  // the lists fit: that shape
    commits_under_load(a, b, 91, 81, [](PolicyMaps& m, int i) {
        m.set_decide_anchors((i / 3) % 2 == 0);
        m.set_decide_field((i / 3) % 2 == 0);
    });
}

TEST(AtomicCommit, NoPacketSeesAMixAcrossOneFieldShapeChanges)
{
    XDPCTL_REQUIRE_ROOT();
    Policy a, b;
    ASSERT_TRUE(probed_pair(kOneFieldA, kOneFieldB, 61, 81, a, b));
    ASSERT_EQ(compile_policy(a, lo_only).dir[0].decide_field, int(kFieldSrc));
    ASSERT_EQ(compile_policy(b, lo_only).dir[0].decide_field, int(kFieldSrc));
    commits_under_load(a, b, 61, 81, [](PolicyMaps& m, int i) { m.set_decide_field((i / 3) % 2 == 0); });
}

// A set's entries change with the rules that name it (sets in tables of their own): B's set
// does not hold the probe's source, so A's rules with B's set drop it, and B's rules with A's
// set drop it too.
constexpr const char* kSetA = R"(default drop
set s 198.18.0.0/24 198.19.77.0/24
rule --id 91 --priority 1 --src @s --action pass
rule --id 92 --priority 2 --src 198.18.0.0/15 --action drop
)";
constexpr const char* kSetB = R"(default drop
set s 198.19.250.0/24 !198.18.0.0/24 198.18.0.0/16
rule --id 95 --priority 1 --src @s --action drop
rule --id 96 --priority 2 --src 198.18.0.0/15 --action pass
)";

TEST(AtomicCommit, NoPacketSeesAMixOfSetsInTablesOfTheirOwn)
{
    XDPCTL_REQUIRE_ROOT();
    Policy a, b;
    ASSERT_TRUE(probed_pair(kSetA, kSetB, 91, 96, a, b));
    ASSERT_TRUE(compile_policy(a, lo_only, {.max_split_sets = kMaxSplitSets}).dir[0].src_v4.split());
    commits_under_load(a, b, 91, 96, [](PolicyMaps&, int) {}, true);
}

// Set rules beside the rules (abi: XDPCTL_POL_DECIDE_EDGE): A's probe is passed by its last
// rule (its set's own table looked up after the walk found no rule), B's by a ranked rule
// after B's first, on another set in the destination, which takes other packets before the
// walk; commits go between the two in runs of 3 by the anchor lists and by the tables.
constexpr const char* kEdgeLastA = R"(default drop
set s 198.18.0.0/24 !198.18.0.128/25
rule --id 111 --priority 1 --src 198.18.0.9/32 --action drop
rule --id 112 --priority 2 --dst 198.19.9.0/24 --proto tcp --action drop
rule --id 113 --priority 3 --proto udp --dport 53 --action drop
rule --id 119 --priority 100 --src @s --action pass
)";
constexpr const char* kEdgeFirstB = R"(default drop
set t 198.19.7.0/24
rule --id 121 --priority 1 --src 198.18.0.0/16 --proto tcp --dport 80 --action pass
rule --id 122 --priority 2 --proto udp --dport 53 --action drop
rule --id 129 --priority 0 --dst @t --action pass
)";

TEST(AtomicCommit, NoPacketSeesAMixAcrossEdgeChanges)
{
    XDPCTL_REQUIRE_ROOT();
    Policy a, b;
    ASSERT_TRUE(probed_pair(kEdgeLastA, kEdgeFirstB, 119, 121, a, b));
    const CompileOptions edges{.max_split_sets = kMaxSplitSets, .edge_sets = true, .edge_min_rules = 1};
    ASSERT_FALSE(compile_policy(a, lo_only, edges).dir[0].edge->first);
    ASSERT_TRUE(compile_policy(b, lo_only, edges).dir[0].edge->first);
    commits_under_load(a, b, 119, 121, [](PolicyMaps& m, int i) { m.set_decide_anchors((i / 3) % 2 == 0); }, true,
                       true);
}

TEST(AtomicCommit, NoPacketSeesAMixAcrossShapeChanges)
{
    XDPCTL_REQUIRE_ROOT();
    Policy a, b;
    ASSERT_TRUE(probed_pair(kSmallA, kSmallB, 37, 47, a, b));
    ASSERT_TRUE(compile_policy(a, lo_only).dir[0].small);
    ASSERT_TRUE(compile_policy(b, lo_only).dir[0].small);
    commits_under_load(a, b, 37, 47, [](PolicyMaps& m, int i) { m.set_decide_small((i / 3) % 2 == 0); });
}

// A commit frees the old generation's large address tables right after the flip (placeholders
// in their slots) and lets a packet that meets one start again under the new gen. Here gen is
// set by hand to a generation whose tables are gone: with gen steady, the packet gets that
// generation's default and counts nothing; with gen flipping between it and a whole
// generation as fast as the map takes updates, every packet gets either that default or the
// whole generation's verdict and rule, never anything between.
TEST(AtomicCommit, FreedTablesSendPacketsToTheNewGeneration)
{
    XDPCTL_REQUIRE_ROOT();
    const Policy p = parse_policy_text("default drop\n"
                                       "rule --id 1 --priority 1 --src 198.18.0.0/24 --proto tcp --action count\n"
                                       "rule --id 2 --priority 2 --src 198.18.0.1 --dst 198.19.0.1 --action pass\n",
                                       "P");
    const CompiledPolicy c = compile_policy(p, lo_only);
    const SlotOf slots{{1, 1}, {2, 2}};
    PolicyPrograms progs;
    progs.maps().set_keep_table_lines(0);  // free every table, as a large one is
    progs.maps().set_decide_small(false);  // the tables are what this is about
    progs.maps().commit(c, slots);  // into gen 1
    progs.maps().commit(c, slots);  // into gen 0; gen 1's address tables are freed
    ASSERT_EQ(progs.maps().active_gen(), 0u);
    const int ctl_fd = progs.map_fd("xdpctl_pctl");
    auto set_gen = [&](uint32_t gen) {
        const xdpctl_pol_ctl ctl{gen, 1, 0};
        const __u32 zero = 0;
        return bpf_map_update_elem(ctl_fd, &zero, &ctl, BPF_ANY);
    };
    const auto frame = probe_frame();
    const int cfd = progs.rule_counters_fd();

    ASSERT_EQ(set_gen(1), 0);
    auto before = read_rule_counters(cfd, 3);
    RunResult r = progs.run(XDPCTL_HOOK_XDP, frame);
    auto after = read_rule_counters(cfd, 3);
    ASSERT_EQ(r.err, 0);
    EXPECT_EQ(r.retval, uint32_t(XDP_DROP)) << "a generation without its tables gives its default";
    for (int s = 0; s < 3; s++)
        EXPECT_EQ(after[s].packets, before[s].packets) << "slot " << s;

    ASSERT_EQ(set_gen(0), 0);
    r = progs.run(XDPCTL_HOOK_XDP, frame);
    ASSERT_EQ(r.err, 0);
    EXPECT_EQ(r.retval, uint32_t(XDP_PASS));

    before = read_rule_counters(cfd, 3);
    std::atomic<bool> stop{false};
    std::thread flipper([&] {
        for (uint32_t i = 0; !stop.load(std::memory_order_relaxed); i++)
            set_gen(i & 1);
    });
    // Until both ends have been seen 50,000 times (~0.5 s), or 2 s.
    uint64_t passed = 0, dropped = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < until && (passed < 50000 || dropped < 50000)) {
        const RunResult rr = progs.run(XDPCTL_HOOK_XDP, frame);
        ASSERT_EQ(rr.err, 0);
        (rr.retval == XDP_PASS ? passed : dropped)++;
    }
    stop = true;
    flipper.join();
    after = read_rule_counters(cfd, 3);
    std::printf("%lu passed by the whole generation, %lu dropped by the other's default\n", (unsigned long)passed,
                (unsigned long)dropped);
    EXPECT_EQ(after[0].packets, before[0].packets) << "slot 0: a zeroed rule record was read";
    EXPECT_EQ(after[1].packets - before[1].packets, passed) << "the count rule runs with its pass rule";
    EXPECT_EQ(after[2].packets - before[2].packets, passed);
    EXPECT_GT(passed, 0u);
    EXPECT_GT(dropped, 0u);
}

// A alone in its field: the source names only the set (no rule prefix there), so the
// class comes from the set's table with no other lookup; rule 98 on the destination drops
// a probe that reads as no member.
constexpr const char* kSetAloneA = R"(default drop
set s 198.18.0.0/24 198.19.77.0/24
rule --id 97 --priority 1 --src @s --action pass
rule --id 98 --priority 2 --dst 198.19.0.0/16 --action drop
)";

// The same for a set's own table: after A's commit, B's changes the set, so the flip frees
// A's set table (a placeholder in its slot) while A's generation still names the slot. A
// packet of A's generation that meets it must not read it as an empty set (the probe is not
// a member: A's drop rule would count it); with gen set by hand to A's generation it gets
// A's default and counts nothing. For a set beside rule prefixes and a set alone, each by
// the one-field path and by the tables.
TEST(AtomicCommit, FreedSetTablesSendPacketsToTheNewGeneration)
{
    XDPCTL_REQUIRE_ROOT();
    const Policy b = parse_policy_text(kSetB, "set B");
    for (const char* text : {kSetA, kSetAloneA}) {
        const Policy a = parse_policy_text(text, "A");
        SCOPED_TRACE(text);
        ASSERT_EQ(classify(a, probe_key()).action, ActionKind::pass);
        const CompileOptions opts{.max_split_sets = kMaxSplitSets};
        const CompiledPolicy ca = compile_policy(a, lo_only, opts), cb = compile_policy(b, lo_only, opts);
        ASSERT_TRUE(ca.dir[0].src_v4.split());
        SlotOf slots = slots_by_id(a, 1);
        for (const auto& [id, slot] : slots_by_id(b, uint32_t(slots.size()) + 1))
            slots[id] = slot;
        const uint32_t n_slots = uint32_t(slots.size()) + 1;
        PolicyPrograms progs;
        const auto frame = probe_frame();
        const int cfd = progs.rule_counters_fd();
        const __u32 zero = 0;
        for (const bool by_field : {true, false}) {
            SCOPED_TRACE(by_field ? "one-field path" : "tables");
            progs.maps().set_decide_field(by_field);
            commit_placing_sets(progs, ca, a, slots);  // A, its set's table built anew
            commit_placing_sets(progs, cb, b, slots);  // B; A's set table freed
            const uint32_t gen_a = progs.maps().active_gen() ^ 1;
            const xdpctl_pol_ctl on_a{gen_a, 1, 1000u + by_field};  // a count no cached flow holds
            ASSERT_EQ(bpf_map_update_elem(progs.map_fd("xdpctl_pctl"), &zero, &on_a, BPF_ANY), 0);
            const auto before = read_rule_counters(cfd, n_slots);
            const RunResult r = progs.run(XDPCTL_HOOK_XDP, frame);
            const auto after = read_rule_counters(cfd, n_slots);
            ASSERT_EQ(r.err, 0);
            EXPECT_EQ(r.retval, uint32_t(XDP_DROP)) << "a generation without its set's table gives its default";
            for (uint32_t s = 0; s < n_slots; s++)
                EXPECT_EQ(after[s].packets, before[s].packets) << "slot " << s << ": the freed table was read as a set";
        }
    }
}

// ---- reloads: the attached program follows the policy's shape (lib/attach/datapath_paths.h) ------
//
// Three policies pass the probe by the same rule (id 100), each of another shape: small rules,
// one field (the source), the tables. xdpctl is loaded on the lab's interface; commits through
// PolicyStore go from shape to shape, so most of them reload the attached program (with the
// paths of both generations before the flip, with the new one's after), while two threads
// run the probe through whichever program the link holds. A run whose program was replaced
// while it ran is not judged (in the kernel a packet holds its program under RCU and a reload
// waits that out before the flip; a test run holds only an fd), but it still counts: rule 100
// must count exactly the probes that passed, no other rule any, and no judged run may drop.

namespace {

std::string shaped_policy(char shape)
{
    std::string p = "default drop\nrule --id 100 --priority 50 --src 198.18.0.0/24 --action pass\n";
    for (uint32_t i = 0; i < (shape == 's' ? 2 : XDPCTL_POL_SMALL_MAX + 1); i++)
        p += shape == 't' ? fmt::format("rule --id {} --priority {} --proto udp --dport {} --action drop\n", 101 + i,
                                        i + 1, 7000 + i)
                          : fmt::format("rule --id {} --priority {} --src 198.18.9.{}/32 --action drop\n", 101 + i,
                                        i + 1, i);
    return p;
}

// The program the pinned link runs, and its id (0: none).
std::pair<UniqueFd, uint32_t> linked_program(const std::string& link_pin)
{
    UniqueFd link = open_pinned(link_pin);
    bpf_link_info li{};
    __u32 len = sizeof(li);
    if (!link || bpf_link_get_info_by_fd(link.get(), &li, &len) != 0)
        return {UniqueFd{}, 0};
    return {UniqueFd{bpf_prog_get_fd_by_id(li.prog_id)}, li.prog_id};
}

}  // namespace

TEST(AtomicCommit, ReloadsOnShapeChangesUnderTraffic)
{
    XDPCTL_REQUIRE_ROOT();
    xdpctl_clear_policy();
    NetnsLab lab;
    lab.load();
    const std::string link_pin = IfacePins(lab.dut_pin_dir()).link_xdp;
    const std::string shapes = "stsfts fsft";  // ' ': the same shape again (no reload)
    std::vector<Policy> policies;
    for (char c : std::string("stf")) {
        policies.push_back(parse_policy_text(shaped_policy(c), std::string(1, c)));
        ASSERT_EQ(classify(policies.back(), probe_key()).rule_id, 100u) << c;
    }
    auto policy_of = [&](char c) { return policies[c == 's' ? 0 : c == 't' ? 1 : 2]; };
    {
        PolicyStore store;
        store.commit(policy_of('s'));
    }
    const uint64_t before = PolicyStore().counters()[100].packets;

    const auto frame = PacketBuilder()
                           .ipv4({.src = {198, 18, 0, 1}, .dst = {198, 19, 0, 1}})
                           .tcp({.sport = 1000, .dport = 80, .flags = tcp_flags::syn})
                           .build();
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> passed{0}, dropped{0}, unjudged_passed{0}, unjudged{0}, errors{0};
    std::vector<std::thread> senders;
    for (int t = 0; t < 2; t++)
        senders.emplace_back([&] {
            while (!stop.load(std::memory_order_relaxed)) {
                auto [fd, id] = linked_program(link_pin);
                if (!fd)
                    continue;  // replaced and freed between the link's answer and the open
                const RunResult r = prog_test_run(fd.get(), true, frame);
                const bool replaced = linked_program(link_pin).second != id;
                errors += r.err != 0;
                if (r.err)
                    continue;
                if (replaced) {
                    unjudged++;
                    unjudged_passed += r.retval == XDP_PASS;
                } else {
                    (r.retval == XDP_PASS ? passed : dropped)++;
                }
            }
        });

    int reloads = 0;
    char last = 's';
    for (char c : shapes) {
        const char shape = c == ' ' ? last : c;
        PolicyStore store;
        const uint32_t id_before = linked_program(link_pin).second;
        store.commit(policy_of(shape));
        const auto [fd, id] = linked_program(link_pin);
        reloads += id != id_before;
        EXPECT_EQ(id != id_before, shape != last) << "commit to shape " << shape << " after " << last;
        // The program holds exactly what the generation in force needs.
        const auto have = program_paths(fd.get());
        ASSERT_TRUE(have);
        EXPECT_EQ(*have, paths_in_force().xdp()) << "shape " << shape;
        EXPECT_EQ(*have, shape == 's' ? uint32_t(XDPCTL_PATH_SMALL)
                         : shape == 'f' ? uint32_t(XDPCTL_PATH_FIELD)
                                        : uint32_t(XDPCTL_PATH_TABLES | XDPCTL_PATH_RATE))
            << "shape " << shape;
        last = shape;
    }
    stop = true;
    for (auto& t : senders)
        t.join();
    const auto counters = PolicyStore().counters();
    std::printf("%d reloads; %lu probes passed, %lu dropped, %lu run across a reload\n", reloads,
                (unsigned long)passed.load(), (unsigned long)dropped.load(), (unsigned long)unjudged.load());
    EXPECT_EQ(errors.load(), 0u);
    EXPECT_EQ(dropped.load(), 0u) << "a program without the path of the generation in force";
    EXPECT_GT(passed.load(), 100u) << "too few packets ran during the commits to mean anything";
    EXPECT_EQ(counters.at(100).packets - before, passed + unjudged_passed) << "rule 100 counts across shapes";
    for (const auto& [id, c] : counters) {
        if (id != 100) {
            EXPECT_EQ(c.packets, 0u) << "rule " << id;
        }
    }
    xdpctl_clear_policy();
}

// ---- `set add` / `set del` in place (PolicyStore::change_set_in_place): no commit --------

// A set entry of one IPv4 address (host order).
SetEntry v4_host(uint32_t a)
{
    SetEntry e;
    e.prefix.len = 32;
    for (int b = 0; b < 4; b++)
        e.prefix.addr[size_t(b)] = uint8_t(a >> (24 - 8 * b));
    return e;
}

// The /32 the set changes in place toggle, a member and a non-member beside it: 198.18.7.{77,10,78}.
constexpr uint32_t kToggled = 0xc612074d, kMember = 0xc612070a, kOther = 0xc612074e;

// A TCP SYN from `a` (host order) to 198.19.0.1.
auto syn_from(uint32_t a)
{
    return PacketBuilder()
        .ipv4({.src = {uint8_t(a >> 24), uint8_t(a >> 16), uint8_t(a >> 8), uint8_t(a)}, .dst = {198, 19, 0, 1}})
        .tcp({.sport = 1000, .dport = 80, .flags = tcp_flags::syn})
        .build();
}

// The verdict of the XDP program linked at `link_pin` on syn_from(a).
uint32_t syn_verdict(const std::string& link_pin, uint32_t a)
{
    auto [fd, id] = linked_program(link_pin);
    const RunResult res = fd ? prog_test_run(fd.get(), true, syn_from(a)) : RunResult{.err = -1};
    EXPECT_EQ(res.err, 0);
    return res.retval;
}

// Rule 1 drops a source no test sends from; rule 2 drops set "blk": `count` random /32s of
// 198.18.0.0 | (random & mask) (seeded), none of `skip`, and `members`.
Policy policy_with_host_set(uint32_t seed, int count, uint32_t mask, std::initializer_list<uint32_t> skip,
                            std::initializer_list<uint32_t> members)
{
    Policy p = parse_policy_text("default pass\nrule --id 1 --src 198.19.255.255/32 --action drop\n", "p");
    PrefixSet& blk = p.sets["blk"];
    blk.name = "blk";
    std::mt19937 rng(seed);
    for (int i = 0; i < count; i++) {
        const uint32_t a = 0xc6120000 | (rng() & mask);
        if (std::find(skip.begin(), skip.end(), a) == skip.end())
            blk.entries.push_back(v4_host(a));
    }
    for (uint32_t a : members)
        blk.entries.push_back(v4_host(a));
    blk.normalize();
    Rule r;
    r.id = 2;
    r.src.kind = AddrMatch::Kind::set;
    r.src.set = "blk";
    r.action.kind = ActionKind::drop;
    p.rules.push_back(r);
    return p;
}
//
// A /32 of a set of 20,000 /32s in 198.18.0.0/15 (full chunks under every /24) is added and
// removed 40 times through PolicyStore while two threads run packets from it and from its
// neighbours in the same /24 and /16, members and not, which no change touches: each of those
// must be judged right every time (a packet reading half-written lines would not be), the /32
// itself dropped or passed. None of the changes commits (the generation stays; each moves the
// commit count by one, which the flow cache's entries carry), and the packet run right after
// each sees it. A rule commit after the last add keeps the /32 in the set.
TEST(AtomicCommit, SetChangesInPlaceUnderTraffic)
{
    XDPCTL_REQUIRE_ROOT();
    xdpctl_clear_policy();
    NetnsLab lab;
    lab.load();
    const std::string link_pin = IfacePins(lab.dut_pin_dir()).link_xdp;
    constexpr uint32_t kMember2 = 0xc6120901, kOther2 = 0xc6120902;                         // 198.18.9.{1,2}
    Policy p = policy_with_host_set(7, 20000, 0x1ffff, {kToggled, kOther, kOther2}, {kMember, kMember2});
    PrefixSet& blk = p.sets["blk"];
    PolicyStore().commit(p);
    auto ctl = [] {
        xdpctl_pol_ctl c{};
        UniqueFd fd = open_pinned(shared_maps_dir() + "/xdpctl_pctl");
        uint32_t key = 0;
        EXPECT_EQ(bpf_map_lookup_elem(fd.get(), &key, &c), 0);
        return c;
    };
    const xdpctl_pol_ctl before = ctl();

    const std::vector<std::pair<uint32_t, bool>> probes = {
        {kMember, true}, {kOther, false}, {kMember2, true}, {kOther2, false}};  // address, dropped
    auto run = [&](uint32_t a) {
        auto [fd, id] = linked_program(link_pin);
        return fd ? prog_test_run(fd.get(), true, syn_from(a)) : RunResult{.err = -1};
    };
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> judged{0}, wrong{0}, toggled{0}, errors{0};
    std::vector<std::thread> senders;
    for (int t = 0; t < 2; t++)
        senders.emplace_back([&, t] {
            for (size_t i = size_t(t); !stop.load(std::memory_order_relaxed); i++) {
                const bool probe = i % 5 < 4;
                const uint32_t a = probe ? probes[i % 5].first : kToggled;
                const RunResult res = run(a);
                errors += res.err != 0;
                if (res.err)
                    continue;
                if (!probe) {
                    toggled++;
                    continue;
                }
                judged++;
                wrong += (res.retval == XDP_DROP) != probes[i % 5].second;
            }
        });
    int in_place = 0;
    for (int i = 0; i < 40; i++) {
        const bool add = i % 2 == 0;
        PolicyStore store(Access::write, false);
        in_place += add ? store.change_set_in_place("blk", {v4_host(kToggled)}, {})
                        : store.change_set_in_place("blk", {}, {v4_host(kToggled)});
        const RunResult res = run(kToggled);
        EXPECT_EQ(res.err, 0);
        EXPECT_EQ(res.retval, add ? XDP_DROP : XDP_PASS) << "change " << i << ": not seen by the next packet";
    }
    stop = true;
    for (auto& t : senders)
        t.join();
    std::printf("40 changes in place; %lu neighbours judged, %lu runs of the changed /32\n",
                (unsigned long)judged.load(), (unsigned long)toggled.load());
    EXPECT_EQ(in_place, 40);
    EXPECT_EQ(ctl().gen, before.gen) << "a change in place committed";
    EXPECT_EQ(ctl().commits, before.commits + 40);
    EXPECT_EQ(errors.load(), 0u);
    EXPECT_EQ(wrong.load(), 0u) << "a neighbour of the changed /32 judged wrong";
    EXPECT_GT(judged.load(), 100u) << "too few packets ran during the changes to mean anything";
    {
        PolicyStore store(Access::write, false);
        ASSERT_TRUE(store.change_set_in_place("blk", {v4_host(kToggled)}, {}));
        Policy now = store.current();
        EXPECT_EQ(now.sets.at("blk").entries.size(), blk.entries.size() + 1);
        now.rules.push_back(now.rules.front());
        now.rules.back().id = 3;
        now.rules.back().src.prefix.addr[3] = 254;
        store.commit(now);
    }
    EXPECT_EQ(run(kToggled).retval, XDP_DROP) << "the commit after a change in place lost it";
    EXPECT_EQ(run(kOther).retval, XDP_PASS);
    xdpctl_clear_policy();
}

// A rule command's commit (commit_sets_as_read) takes each set's print from the set index the
// last commit stored, not from its entries; after a change in place, that print with the
// change's entries' prints summed in (the index's alone is of the entries before it), and the
// set's bytes with the change merged in. A set of /32s used by a rule is changed in place, then a rule
// is added the way `rule add` does: the set's table in force must carry the print of the
// entries with the change (the one a later change in place or commit looks for), and packets
// must see the change; then a change in place back and a rule deleted the same way.
TEST(AtomicCommit, RuleCommitTakesNoStaleSetPrint)
{
    XDPCTL_REQUIRE_ROOT();
    xdpctl_clear_policy();
    NetnsLab lab;
    lab.load();
    const std::string link_pin = IfacePins(lab.dut_pin_dir()).link_xdp;
    Policy p = policy_with_host_set(11, 2000, 0xffff, {kToggled, kOther}, {kMember});
    PrefixSet& blk = p.sets["blk"];
    PolicyStore().commit(p);
    auto run = [&](uint32_t a) { return syn_verdict(link_pin, a); };
    // Whether a set table in force carries the print of the set as stored now.
    auto table_is_current = [] {
        const Policy now = PolicyStore(Access::read).current();
        const uint64_t want = set_print(now.sets.at("blk"));
        UniqueFd pset = open_pinned(shared_maps_dir() + "/xdpctl_pset");
        const auto prints = set_slot_prints(pset.get());
        return std::find(prints.begin(), prints.end(), want) != prints.end();
    };
    // What `rule add` / `rule del` do. The set is read undecoded: as the image's bytes, or
    // with a change in place since, as those with the change merged in; either way its
    // entries must be `want`.
    PrefixSet with = blk;
    with.entries.push_back(v4_host(kToggled));
    with.normalize();
    auto rule_commit = [&](bool add, const PrefixSet& want) {
        PolicyStore store;
        Policy now = store.current_rules();
        EXPECT_TRUE(now.sets.at("blk").undecoded.has_value());
        std::vector<SetEntry> scratch;
        EXPECT_TRUE(set_entries(now.sets.at("blk"), scratch) == want.entries) << "the set as a rule command reads it";
        if (add) {
            Rule extra = now.rules.front();
            extra.id = 3;
            extra.src.prefix.addr[3] = 254;
            now.rules.push_back(extra);
        } else {
            std::erase_if(now.rules, [](const Rule& x) { return x.id == 3; });
        }
        store.commit_sets_as_read(std::move(now));
    };
    // The set as stored (its bytes copied from the image before by a rule commit).
    auto stored_set = [] { return PolicyStore(Access::read).current().sets.at("blk"); };
    rule_commit(true, blk);  // the set as the commit stored it: the index's print
    EXPECT_TRUE(table_is_current());
    EXPECT_EQ(stored_set(), blk);
    EXPECT_EQ(run(kMember), XDP_DROP);
    EXPECT_EQ(run(kToggled), XDP_PASS);
    rule_commit(false, blk);
    EXPECT_EQ(stored_set(), blk) << "a rule commit of the set's bytes as read changed them";
    ASSERT_TRUE(PolicyStore(Access::write, false).change_set_in_place("blk", {v4_host(kToggled)}, {}));
    EXPECT_EQ(run(kToggled), XDP_DROP);
    rule_commit(true, with);
    EXPECT_TRUE(table_is_current()) << "the rule commit after a change in place took the set's print before it";
    EXPECT_EQ(stored_set(), with);
    EXPECT_EQ(run(kToggled), XDP_DROP) << "the rule commit after a change in place lost it";
    EXPECT_EQ(run(kMember), XDP_DROP);
    EXPECT_EQ(run(kOther), XDP_PASS);
    // Back in place (the table is found by the print the rule commit gave it), then a rule
    // commit again.
    ASSERT_TRUE(PolicyStore(Access::write, false).change_set_in_place("blk", {}, {v4_host(kToggled)}));
    EXPECT_EQ(run(kToggled), XDP_PASS);
    rule_commit(false, blk);
    EXPECT_TRUE(table_is_current());
    EXPECT_EQ(run(kToggled), XDP_PASS) << "the rule commit after a change in place undid it";
    EXPECT_EQ(stored_set(), blk);
    EXPECT_EQ(run(kMember), XDP_DROP);
    EXPECT_EQ(run(kOther), XDP_PASS);
    xdpctl_clear_policy();
}

// A rule command leaves the sets it does not change undecoded (PolicyStore::current_rules):
// their bytes and prints as the last commit stored them. Where the compiler still needs a
// set's entries, they must be decoded there: here one field names more sets than are split
// into tables of their own (kMaxSplitSets), so all of them are merged into its classes. Rules
// added and deleted the way `rule add`/`del` do must keep every set's members dropped (an
// undecoded set taken as empty would pass them), and the stored sets whole.
TEST(AtomicCommit, RuleCommitDecodesTheSetsItsClassesMerge)
{
    XDPCTL_REQUIRE_ROOT();
    xdpctl_clear_policy();
    NetnsLab lab;
    lab.load();
    const std::string link_pin = IfacePins(lab.dut_pin_dir()).link_xdp;
    std::string text = "default pass\n";
    for (uint32_t i = 0; i <= kMaxSplitSets; i++)
        text += fmt::format("set s{} 198.18.{}.0/24 !198.18.{}.128/25 2001:2:{}::/48\n"
                            "rule --id {} --src @s{} --action drop\n", i, 20 + i, 20 + i, i, 10 + i, i);
    Policy p = parse_policy_text(text, "p");
    PolicyStore().commit(p);
    auto run = [&](uint32_t a) { return syn_verdict(link_pin, a); };
    auto verdicts_hold = [&](const char* when) {
        for (uint32_t i = 0; i <= kMaxSplitSets; i++) {
            const uint32_t net = 0xc6120000 | (20 + i) << 8;
            EXPECT_EQ(run(net | 5), XDP_DROP) << "a member of set s" << i << " " << when;
            EXPECT_EQ(run(net | 200), XDP_PASS) << "an exception of set s" << i << " " << when;
        }
        EXPECT_EQ(run(0xc6122a05), XDP_PASS) << when;  // 198.18.42.5: in no set
    };
    verdicts_hold("after the full commit");
    for (bool add : {true, false}) {
        PolicyStore store;
        Policy now = store.current_rules();
        for (const auto& [name, set] : now.sets)
            EXPECT_TRUE(set.undecoded) << name << ": a rule command decoded a set it does not change";
        if (add)
            now.rules.push_back(parse_rule({"--id", "99", "--src", "198.19.9.0/24", "--action", "drop"}));
        else
            std::erase_if(now.rules, [](const Rule& r) { return r.id == 99; });
        store.commit_sets_as_read(std::move(now));
        verdicts_hold(add ? "after a rule add" : "after a rule del");
        const Policy stored = PolicyStore(Access::read).current();
        EXPECT_EQ(stored.sets, p.sets);
    }
    EXPECT_EQ(run(0xc6130905), XDP_PASS);  // 198.19.9.5: rule 99 deleted
    xdpctl_clear_policy();
}

// ---- commits that patch the compile the last one kept (compile_delta.h) -----------------

// 1,500 rules, each dropping TCP to port 80 from one /32 of 198.18.0.0/16 (every seventh
// passing it): large enough that each commit keeps its compile. Rules are added and deleted
// one at a time, each commit by a store of its own as `rule add` and `rule del` make them;
// each is patched, not compiled whole, and the program judges every rule's source as the
// policy says: the rule added and the one deleted, and a sample of those that stayed.
TEST(AtomicCommit, PatchedCommitsJudgeAsThePolicySays)
{
    XDPCTL_REQUIRE_ROOT();
    xdpctl_clear_policy();
    NetnsLab lab;
    lab.load();
    const std::string link_pin = IfacePins(lab.dut_pin_dir()).link_xdp;
    auto source = [](uint32_t i) { return 0xc6120000u | (1 + i * 37 % 65000); };
    auto rule_from = [](uint32_t id, uint32_t a, ActionKind action) {
        Rule r;
        r.id = id;
        r.priority = id % 100;
        r.src.kind = AddrMatch::Kind::prefix;
        r.src.prefix = v4_host(a).prefix;
        r.proto = 6;
        r.dport = {80, 80};
        r.action.kind = action;
        return r;
    };
    Policy p;
    p.default_action = ActionKind::pass;
    for (uint32_t i = 0; i < 1500; i++)
        p.rules.push_back(rule_from(i + 1, source(i), i % 7 ? ActionKind::drop : ActionKind::pass));
    {
        PolicyStore store;
        store.commit(p);
    }
    std::mt19937 rng(7);
    std::vector<std::pair<uint32_t, uint32_t>> gone;  // (source, id) of deleted rules
    for (uint32_t round = 0; round < 8; round++) {
        if (round % 2 == 0) {
            p.rules.push_back(rule_from(100000 + round, 0xc612fa00u | round, ActionKind::drop));
        } else {
            const size_t at = rng() % 1000;
            gone.emplace_back(p.rules[at].src.prefix.addr[2] << 8 | p.rules[at].src.prefix.addr[3], p.rules[at].id);
            p.rules.erase(p.rules.begin() + ptrdiff_t(at));
        }
        PolicyStore store;
        (void)store.current();  // as a rule command reads the policy first
        store.commit(p);
        EXPECT_TRUE(store.last_commit_patched()) << "round " << round;
    }
    // Every rule added is in force, every rule deleted is not, a sample of the others as they
    // were: the deciding rule's action, or the default.
    std::vector<const Rule*> sample;
    for (const Rule& r : p.rules)
        if (r.id > 100000 || rng() % 30 == 0)
            sample.push_back(&r);
    for (const Rule* r : sample) {
        const uint32_t a = uint32_t(r->src.prefix.addr[0]) << 24 | r->src.prefix.addr[1] << 16 |
                           r->src.prefix.addr[2] << 8 | r->src.prefix.addr[3];
        EXPECT_EQ(syn_verdict(link_pin, a), r->action.kind == ActionKind::drop ? XDP_DROP : XDP_PASS)
            << "rule " << r->id;
    }
    for (const auto& [low, id] : gone)
        EXPECT_EQ(syn_verdict(link_pin, 0xc6120000u | low), XDP_PASS) << "deleted rule " << id;
    EXPECT_GE(sample.size(), 30u);
    xdpctl_clear_policy();
}

namespace {

// The same with a set: the commit whose rule first names it, rules added and deleted beside
// it, and the commit whose rule names it no more are each patched; after each, the XDP
// program drops the set's members as its rule says, and judges the other rules as before.
// The rule on the set has priority `priority`: among the others (the field split by the set
// from then on; compile_delta.h: a split field's classes are its rules' alone), or first or
// last (an edge rule, decided beside the walk: abi XDPCTL_POL_DECIDE_EDGE; the attached
// program reloaded with that path). `edge`: whether the commits made it the edge rule.
void patched_commits_with_a_set(uint32_t priority, bool edge)
{
    xdpctl_clear_policy();
    NetnsLab lab;
    lab.load();
    const std::string link_pin = IfacePins(lab.dut_pin_dir()).link_xdp;
    Policy p;
    p.default_action = ActionKind::pass;
    for (uint32_t i = 0; i < 1200; i++) {
        Rule r;
        r.id = i + 1;
        r.priority = 10 + i % 50;
        r.src.kind = AddrMatch::Kind::prefix;
        r.src.prefix = v4_host(0xc6120000u | (1 + i * 37 % 65000)).prefix;
        r.proto = 6;
        r.dport = {80, 80};
        r.action.kind = ActionKind::drop;
        p.rules.push_back(r);
    }
    PrefixSet& blk = p.sets["blk"];
    blk.name = "blk";
    blk.entries = {{parse_prefix("198.19.1.0/24"), false}, {parse_prefix("198.19.1.128/25"), true},
                   {parse_prefix("198.19.7.7/32"), false}};
    blk.normalize();
    {
        PolicyStore store;
        store.commit(p);
    }
    Rule on_set;
    on_set.id = 200000;
    on_set.priority = priority;
    on_set.src.kind = AddrMatch::Kind::set;
    on_set.src.set = "blk";
    on_set.action.kind = ActionKind::drop;
    const uint32_t member = 0xc6130105u, excepted = 0xc6130181u, lone = 0xc6130707u, rule_src = 0xc6120000u | 38;
    const UniqueFd hdr_fd = open_pinned(shared_maps_dir() + "/xdpctl_phdr"),
                   ctl_fd = open_pinned(shared_maps_dir() + "/xdpctl_pctl");
    ASSERT_TRUE(hdr_fd && ctl_fd);
    auto commit = [&](const char* what) {
        PolicyStore store;
        (void)store.current();  // as a rule command reads the policy first
        store.commit(p);
        EXPECT_TRUE(store.last_commit_patched()) << what;
        const bool named = std::any_of(p.rules.begin(), p.rules.end(), [](const Rule& r) { return r.id == 200000; });
        xdpctl_pol_ctl ctl{};
        xdpctl_pol_hdr h{};
        const uint32_t zero = 0;
        ASSERT_EQ(bpf_map_lookup_elem(ctl_fd.get(), &zero, &ctl), 0);
        const uint32_t gen = ctl.gen & 1;
        ASSERT_EQ(bpf_map_lookup_elem(hdr_fd.get(), &gen, &h), 0);
        EXPECT_EQ(bool(h.dir[0].decide & XDPCTL_POL_DECIDE_EDGE), edge && named) << what;
    };
    auto judged = [&](bool set_in_force, const char* what) {
        const uint32_t want = set_in_force ? XDP_DROP : XDP_PASS;
        EXPECT_EQ(syn_verdict(link_pin, member), want) << what;
        EXPECT_EQ(syn_verdict(link_pin, lone), want) << what;
        EXPECT_EQ(syn_verdict(link_pin, excepted), XDP_PASS) << what;
        EXPECT_EQ(syn_verdict(link_pin, rule_src), XDP_DROP) << what;  // rule 2's source
    };
    judged(false, "before");
    p.rules.push_back(on_set);
    commit("the rule that names the set");
    judged(true, "the set in use");
    Rule beside = p.rules[5];
    beside.id = 300000;
    beside.src.prefix = v4_host(0xc612fe01u).prefix;
    p.rules.push_back(beside);
    commit("a rule added beside it");
    judged(true, "a rule added beside it");
    EXPECT_EQ(syn_verdict(link_pin, 0xc612fe01u), XDP_DROP);
    p.rules.erase(p.rules.begin() + 10);
    commit("a rule deleted beside it");
    judged(true, "a rule deleted beside it");
    std::erase_if(p.rules, [](const Rule& r) { return r.id == 200000; });
    commit("the rule on the set deleted");
    judged(false, "the set named no more");
    EXPECT_EQ(syn_verdict(link_pin, 0xc612fe01u), XDP_DROP);
    xdpctl_clear_policy();
}

}  // namespace

TEST(AtomicCommit, PatchedCommitsWithASetJudgeAsThePolicySays)
{
    XDPCTL_REQUIRE_ROOT();
    patched_commits_with_a_set(30, false);  // among the others' priorities (10-59)
}

TEST(AtomicCommit, PatchedCommitsWithAFirstSetJudgeAsThePolicySays)
{
    XDPCTL_REQUIRE_ROOT();
    patched_commits_with_a_set(1, true);
}

TEST(AtomicCommit, PatchedCommitsWithALastSetJudgeAsThePolicySays)
{
    XDPCTL_REQUIRE_ROOT();
    patched_commits_with_a_set(kDefaultPriority, true);
}
