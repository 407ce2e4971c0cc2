// The filtering classifier through the real programs (BPF_PROG_TEST_RUN on xdpctl_xdp and
// xdpctl_tc, policies written by PolicyMaps):
//  - a differential test: random policies against the reference classifier, every packet a
//    real frame, the verdict from the program's return value and the deciding and counted
//    rules from the rule counters, which must move by exactly those rules;
//  - a table of cases for every field, priorities, overlaps, count rules, the default,
//    VLANs, fragments, both families and all three hooks;
//  - the rate limiter against the token-bucket math, on one CPU and on two at once (through
//    the per-CPU purses: the bounds docs/filtering.md gives).
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <bpf/bpf.h>

#include "abi/xdpctl_abi.h"
#include "bpf_test_run.h"
#include "stats/counters.h"
#include "attach/datapath_paths.h"
#include "attach/netns.h"
#include "netns_lab.h"
#include "packet_builder.h"
#include "policy/compiled_policy.h"
#include "policy/policy_maps.h"
#include "policy/policy_paths.h"
#include "policy/prefix_table.h"
#include "policy/reference_classifier.h"
#include "policy/rule_parse.h"
#include "policy/set_tables.h"
#include "policy/shapes.h"
#include "policy_gen.h"
#include "policy_programs.h"

using namespace xdpctl;
using namespace xdpctl::test;
using namespace xdpctl::policy;

namespace {

// Interfaces the generator's packets come from, at the indexes it expects, in a namespace
// of the test's own: XDP and TC test runs take only an ifindex that exists.
class TestNetns {
public:
    TestNetns() : name_(fmt::format("xdpctl-cls-{}", ::getpid()))
    {
        run_ok({"ip", "netns", "add", name_});
        cleanup_slot_ =
            register_emergency_cleanup("exec >/dev/null 2>&1; PATH=$PATH:/usr/sbin:/sbin; ip netns del " + name_);
        for (auto [name, index] : {std::pair{"if1", kGenIf1Index}, std::pair{"if2", kGenIf2Index}})
            run_ok({"ip", "-n", name_, "link", "add", name, "index", std::to_string(index), "type", "veth", "peer",
                    "name", std::string(name) + "p", "index", std::to_string(index + 10)});
    }
    ~TestNetns()
    {
        run_cmd({"ip", "netns", "del", name_});
        release_emergency_cleanup(cleanup_slot_);
    }
    const std::string& name() const { return name_; }

private:
    std::string name_;
    int cleanup_slot_ = -1;
};

uint32_t table_ifindex(const std::string& name)
{
    return name == "lo" ? 1 : gen_ifindex(name);
}

uint64_t mono_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// The frame a PacketKey describes, with random details it does not fix (ARP or another
// EtherType for non-IP, first fragments, fragment offsets).
std::vector<uint8_t> frame_of(const PacketKey& k, std::mt19937_64& rng)
{
    PacketBuilder b;
    if (k.vlan)
        b.vlan(*k.vlan);
    if (!k.family) {
        if (rng() & 1)
            b.arp_request();
        else
            b.ethertype(0x88b5).payload(46);
        return b.build();
    }
    const uint8_t proto = *k.proto;
    const bool v4 = *k.family == Family::v4;
    bool v6_frag = false;
    if (v4) {
        Ipv4Opts o;
        std::copy_n(k.src.begin(), 4, o.src.begin());
        std::copy_n(k.dst.begin(), 4, o.dst.begin());
        if (k.later_fragment) {
            o.frag_offset = uint16_t(1 + rng() % 100);
            o.more_fragments = rng() & 1;
        } else {
            o.more_fragments = rng() % 8 == 0;  // a first fragment: it has the L4 header
        }
        if (proto != 6 && proto != 17 && proto != 1)
            o.protocol = proto;
        b.ipv4(o);
    } else {
        Ipv6Opts o;
        o.src = k.src;
        o.dst = k.dst;
        v6_frag = k.later_fragment || rng() % 8 == 0;
        if (!v6_frag && proto != 6 && proto != 17 && proto != 58)
            o.next_header = proto;
        b.ipv6(o);
        if (v6_frag)
            b.ext_fragment(k.later_fragment ? uint16_t(1 + rng() % 100) : 0, k.later_fragment ? (rng() & 1) : true);
    }
    bool patch = false;
    switch (proto) {
    case 6:
        b.tcp({.sport = k.sport, .dport = k.dport, .flags = k.tcp_flags.value_or(0)});
        break;
    case 17:
        b.udp(k.sport, k.dport);
        break;
    case 1:
        b.icmp_echo();
        break;
    case 58:
        b.icmpv6_echo();
        break;
    default:
        if (v6_frag) {
            b.udp();  // the builder names the fragment header's next header after a layer
            patch = true;
        } else {
            b.payload(8);
        }
    }
    Frame f = b.build_frame();
    if (patch)
        f.bytes[f.ext_offs.back()] = proto;
    return f.bytes;
}

std::string describe(const PacketKey& k, uint32_t ifindex)
{
    std::string s = fmt::format("dir {} iif {}({}) vlan {} ", k.dir == Direction::egress ? "egress" : "ingress", k.iif,
                                ifindex, k.vlan ? std::to_string(*k.vlan) : "-");
    if (!k.family)
        return s + "non-IP";
    Prefix a{*k.family, k.src, uint8_t(*k.family == Family::v4 ? 32 : 128)};
    Prefix d{*k.family, k.dst, a.len};
    return s + fmt::format("{} -> {} proto {} ports {} {}:{} flags {} later_fragment {}", format_prefix(a),
                           format_prefix(d), int(*k.proto), k.has_ports, k.sport, k.dport,
                           k.tcp_flags ? int(*k.tcp_flags) : -1, k.later_fragment);
}

class ClassifyBpf : public ::testing::Test {
protected:
    static void SetUpTestSuite()
    {
        if (::geteuid() != 0)
            return;
        netns_ = std::make_unique<TestNetns>();
        progs_ = std::make_unique<PolicyPrograms>();
    }
    static void TearDownTestSuite()
    {
        progs_.reset();
        netns_.reset();
    }
    void SetUp() override
    {
        if (::geteuid() == 0)
            in_ns_ = std::make_unique<NetnsScope>(netns_->name());
    }
    void TearDown() override { in_ns_.reset(); }

    static std::unique_ptr<TestNetns> netns_;
    static std::unique_ptr<PolicyPrograms> progs_;
    std::unique_ptr<NetnsScope> in_ns_;
};

std::unique_ptr<TestNetns> ClassifyBpf::netns_;
std::unique_ptr<PolicyPrograms> ClassifyBpf::progs_;

// ---- the differential test --------------------------------------------------------------

// `packets` random packets of `g` through the programs under policy `p` (committed by the
// caller), each verdict and every counter delta against the reference classifier.
// `tweak`, when given, changes each generated packet first (e.g. its source into a set).
// Each packet is run `repeat` times: after the first, a hit of the flow cache where the
// policy's shape uses it.
void agree_with_reference(PolicyPrograms& progs, const Policy& p, Gen& g, uint64_t seed, int packets,
                          uint64_t* run_ns, const std::function<void(PacketKey&)>& tweak = {}, int repeat = 1)
{
    const int counters = progs.rule_counters_fd();
    const auto slots = slots_by_id(p);  // ids 1..n -> slots 0..n-1
    const uint32_t n = uint32_t(slots.size());
    std::mt19937_64 frame_rng(seed);
    std::vector<xdpctl_rule_ctr> before = read_rule_counters(counters, n);
    for (int i = 0; i < packets; i++) {
        uint32_t ifindex = 0;
        PacketKey k = g.packet(&ifindex);
        if (tweak)
            tweak(k);
        const policy::Verdict want = classify(p, k);
        const std::vector<uint8_t> frame = frame_of(k, frame_rng);
        const int hook = k.dir == Direction::egress ? XDPCTL_HOOK_TC_EGRESS
                         : frame_rng() % 4 == 0      ? XDPCTL_HOOK_TC_INGRESS
                                                     : XDPCTL_HOOK_XDP;
        for (int rep = 0; rep < repeat; rep++) {
        const uint64_t t0 = mono_ns();
        const RunResult r = progs.run(hook, frame, ifindex);
        *run_ns += mono_ns() - t0;
        const std::vector<xdpctl_rule_ctr> after = read_rule_counters(counters, n);
        auto where = [&] {
            return fmt::format("seed {} packet {} hook {}: {}\n{}", seed, i, hook_name(hook), describe(k, ifindex),
                               format_policy(p));
        };
        ASSERT_EQ(r.err, 0) << where();
        ASSERT_EQ(r.retval,
                  verdict_retval(hook, want.action == ActionKind::drop ? test::Verdict::drop : test::Verdict::pass))
            << "rule " << want.rule_id << " should decide; " << where();
        std::vector<uint64_t> expect(n, 0);
        if (want.rule_id)
            expect[slots.at(want.rule_id)]++;
        for (uint32_t id : want.counted)
            expect[slots.at(id)]++;
        for (uint32_t s = 0; s < n; s++) {
            ASSERT_EQ(after[s].packets - before[s].packets, expect[s])
                << "counter of rule " << s + 1 << " (deciding rule " << want.rule_id << "); " << where();
            ASSERT_EQ(after[s].bytes - before[s].bytes, expect[s] * frame.size()) << where();
        }
        before = after;
        }
    }
}

TEST_F(ClassifyBpf, RandomPoliciesAgreeWithReference)
{
    XDPCTL_REQUIRE_ROOT();
    // Rate-limit rules with a bucket that never empties: the reference takes them as
    // conforming (count and go on).
    const GenOptions opts{.rate_pps = 1000000000, .burst = 1000000000};
    size_t packets = 0;
    uint64_t run_ns = 0, commit_ns = 0;
    const auto start = std::chrono::steady_clock::now();
    for (uint64_t seed = 1; seed <= diff_seeds(40); seed++) {
        Gen g(seed, opts);
        g.make_pools();
        Policy p = g.policy(int(5 + g.u(seed % 4 == 0 ? 300 : 60)), int(g.u(5)));
        const CompiledPolicy c = compile_policy(p, gen_ifindex);
        // Every policy here is small: every third one takes the large policies' rows map.
        progs_->maps().set_use_small_rows(seed % 3 != 0);
        progs_->maps().commit(c, slots_by_id(p));
        ASSERT_EQ(progs_->maps().last_commit_times().rows_small, seed % 3 != 0);
        commit_ns += progs_->maps().last_commit_times().total_ns;
        agree_with_reference(*progs_, p, g, seed, 2500, &run_ns);
        if (HasFatalFailure())
            return;
        packets += 2500;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_GE(packets, diff_seeds(40) * 2500);
    std::printf("%zu packets over %zu policies in %.1f s: %.1f us a test run (syscall included), "
                "%.1f ms a commit\n",
                packets, size_t(diff_seeds(40)), secs, double(run_ns) / double(packets) / 1e3,
                double(commit_ns) / double(diff_seeds(40)) / 1e6);
}

// A commit writes only what differs from what its generation holds (the policy of two
// commits ago: rows, class tables, address tables). A walk of rule adds and deletes, going
// back every third step to the policy of two commits ago, each step checked against the
// reference classifier: a line wrongly left as it was would show in the verdicts. Going back
// writes no row at all; any other step writes some.
TEST_F(ClassifyBpf, CommitsWriteOnlyWhatChangedAndAgreeWithReference)
{
    XDPCTL_REQUIRE_ROOT();
    const GenOptions opts{.rate_pps = 1000000000, .burst = 1000000000};
    uint64_t run_ns = 0;
    progs_->maps().set_use_small_rows(false);
    int unchanged = 0;
    for (uint64_t seed = 201; seed < 201 + diff_seeds(5); seed++) {
        Gen g(seed, opts);
        g.make_pools();
        Policy p = g.policy(int(80 + g.u(250)), int(g.u(3)));
        const Policy more = g.policy(12, 0);
        std::vector<Policy> seen;
        for (int step = 0; step < 10; step++) {
            const bool back = step % 3 == 2;
            if (back) {
                p = seen[seen.size() - 2];
            } else if (step > 0 && g.coin(40) && p.rules.size() > 1) {
                p.rules.erase(p.rules.begin() + ptrdiff_t(g.u(p.rules.size())));
            } else if (step > 0) {
                Rule r = more.rules[size_t(step) % more.rules.size()];
                r.id = 0;
                for (const Rule& o : p.rules)
                    r.id = std::max(r.id, o.id);
                r.id++;
                p.rules.push_back(r);
            }
            progs_->maps().commit(compile_policy(p, gen_ifindex), slots_by_id(p));
            const CommitTimes& t = progs_->maps().last_commit_times();
            ASSERT_FALSE(t.rows_small);
            if (back) {
                EXPECT_EQ(t.rows_written, 0u) << "seed " << seed << " step " << step;
                unchanged++;
            } else if (step > 0) {
                EXPECT_GT(t.rows_written, 0u) << "seed " << seed << " step " << step;
            }
            seen.push_back(p);
            agree_with_reference(*progs_, p, g, seed * 100 + uint64_t(step), 400, &run_ns);
            if (HasFatalFailure())
                return;
        }
    }
    progs_->maps().set_use_small_rows(true);
    EXPECT_EQ(unchanged, 3 * int(diff_seeds(5)));
}

// What the active generation's maps hold for the rows and address tables, byte for byte
// against a compile of `p` from scratch, its classes numbered after `aligned_to` as the
// commit's were (align_classes(), tested against the reference in test_compiler_diff): every
// row where the header puts it, every address table's lines and its IPv4 level 1.
void expect_maps_hold_a_full_compile(PolicyPrograms& progs, const Policy& p,
                                     const ClassLayout (&aligned_to)[XDPCTL_POL_DIRS], const std::string& where,
                                     const RankHint* ranks = nullptr)
{
    CompiledPolicy f = compile_policy(p, gen_ifindex, {.rank_hints = ranks});
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++)
        align_classes(f.dir[d], aligned_to[d]);
    const PreparedCommit want = prepare_commit(f, TableLayout::sparse16);
    const uint32_t gen = progs.maps().active_gen();
    xdpctl_pol_hdr h{};
    ASSERT_EQ(bpf_map_lookup_elem(progs.map_fd("xdpctl_phdr"), &gen, &h), 0);
    auto inner = [&](const char* outer, uint32_t slot) {
        uint32_t id = 0;
        EXPECT_EQ(bpf_map_lookup_elem(progs.map_fd(outer), &slot, &id), 0) << outer << " " << slot;
        return UniqueFd(bpf_map_get_fd_by_id(id));
    };
    UniqueFd rows_fd = inner("xdpctl_prows", gen);
    ASSERT_TRUE(rows_fd);
    const MappedMap rows_map(rows_fd.get());
    const MappedMap small_map(progs.map_fd("xdpctl_prows_small"));
    const MappedMap l1_map(progs.map_fd("xdpctl_pl1"));
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++) {
        const CompiledDirection& cd = f.dir[d];
        const xdpctl_pol_dir_hdr& dh = h.dir[d];
        ASSERT_EQ(dh.n_rules, cd.n_rules) << where;
        if (!cd.n_rules)
            continue;
        for (int fl = 0; fl < kFieldCount; fl++)
            ASSERT_EQ(dh.row_base[fl], cd.row_base[fl]) << where;
        for (size_t r = 0; r < cd.rows.count(); r++) {
            const xdpctl_pol_row_line* at =
                dh.rows_small
                    ? &small_map.as<xdpctl_pol_row_line>()[size_t(gen) * (XDPCTL_POL_SMALL_ROWS_BYTES / 64) +
                                                           dh.rows_line0 + r * dh.row_lines]
                    : &rows_map.as<xdpctl_pol_row_line>()[size_t(dh.rows_elem + r / dh.rows_per_elem) *
                                                              XDPCTL_POL_ROWS_ELEM_LINES +
                                                          (r % dh.rows_per_elem) * dh.row_lines];
            std::vector<uint64_t> row = cd.rows.row(r);
            row.resize(size_t(dh.row_lines) * XDPCTL_POL_ROW_LINE_WORDS);
            ASSERT_EQ(std::memcmp(at, row.data(), row.size() * sizeof(uint64_t)), 0)
                << "dir " << d << " row " << r << " of " << cd.rows.count() << "; " << where;
        }
        for (uint32_t dst = 0; dst < 2; dst++) {
            const uint32_t is_const = dst ? dh.dst_const : dh.src_const;
            if (!want.addr[d][dst]) {
                EXPECT_EQ(is_const, want.const_class[d][dst]) << where;
                continue;
            }
            ASSERT_EQ(is_const, 0u) << where;
            UniqueFd tab = inner("xdpctl_ptabs", XDPCTL_POL_TAB_ADDR(gen, d, dst));
            ASSERT_TRUE(tab);
            const MappedMap t(tab.get());
            const auto lines = want.addr[d][dst]->lines();
            ASSERT_GE(t.entries(), lines.size()) << where;
            ASSERT_EQ(std::memcmp(t.as<xdpctl_pfx_line>().data(), lines.data(), lines.size_bytes()), 0)
                << "address table dir " << d << " dst " << dst << "; " << where;
            const auto* l1 = reinterpret_cast<const uint32_t*>(lines.data()) + XDPCTL_PFX4_L1_WORD;
            ASSERT_EQ(std::memcmp(&l1_map.as<uint32_t>()[size_t(XDPCTL_POL_L1(gen, d, dst)) * XDPCTL_PFX_L1_ENTRIES], l1,
                                  XDPCTL_PFX_L1_ENTRIES * sizeof(uint32_t)),
                      0)
                << "level 1 dir " << d << " dst " << dst << "; " << where;
        }
    }
}

// Commits that leave in place what their generation holds (rows whose print is unchanged,
// address tables whose classes are: row_prints.h), as `xdpctl` commits, after random walks
// of rule adds, deletes, `set add`s and steps back to the policy of two commits ago
// (where most is left in place), now and then through the small policies' rows: each
// commit's maps must hold, byte for byte, what a compile from scratch makes, and classify
// as the reference does. A row or table wrongly left as it was fails here.
TEST_F(ClassifyBpf, IncrementalCommitsHoldWhatAFullCompileMakes)
{
    XDPCTL_REQUIRE_ROOT();
    const GenOptions opts{.rate_pps = 1000000000, .burst = 1000000000};
    uint64_t run_ns = 0;
    uint32_t kept_tables = 0, out_of_order = 0;
    uint64_t rows_left = 0;
    for (uint64_t seed = 401; seed < 401 + diff_seeds(4); seed++) {
        Gen g(seed, opts);
        g.make_pools();
        Policy p = g.policy(int(150 + g.u(250)), 1 + int(g.u(3)));
        const Policy more = g.policy(40, 0);
        std::vector<Policy> seen;
        for (int step = 0; step < 16; step++) {
            const uint64_t op = g.u(100);
            if (step >= 2 && op < 25) {
                p = seen[seen.size() - 2];
            } else if (step > 0 && op < 45 && p.rules.size() > 1) {
                p.rules.erase(p.rules.begin() + ptrdiff_t(g.u(p.rules.size())));
            } else if (step > 0 && op < 70 && !p.sets.empty()) {
                PrefixSet& set = std::next(p.sets.begin(), ptrdiff_t(g.u(p.sets.size())))->second;
                const Prefix add = g.pick(g.coin(70) ? Family::v4 : Family::v6);
                if (std::none_of(set.entries.begin(), set.entries.end(), [&](const SetEntry& e) { return e.prefix == add; })) {
                    set.entries.push_back({add, g.coin(10)});
                    set.normalize();
                }
            } else if (step > 0) {
                Rule r = more.rules[g.u(more.rules.size())];
                r.id = 0;
                for (const Rule& o : p.rules)
                    r.id = std::max(r.id, o.id);
                r.id++;
                r.priority = g.coin(50) ? kDefaultPriority : uint32_t(g.u(2000));
                p.rules.push_back(r);
            }
            progs_->maps().set_use_small_rows(step % 5 == 4);
            // With the ranks in force, as a commit compiles (rank_gaps.h): a rule added takes a
            // free rank, out of evaluation order beside rules it does not overlap.
            const RankHints ranks = progs_->maps().active_ranks();
            CompiledPolicy c = compile_policy(p, gen_ifindex, {.rank_hints = ranks.dir});
            for (const CompiledDirection& d : c.dir)
                out_of_order += !std::is_sorted(d.rank_of.begin(), d.rank_of.end());
            HeldTables held;
            ClassLayout classes[XDPCTL_POL_DIRS];
            progs_->maps().held(held, classes);
            for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++)
                align_classes(c.dir[d], classes[d]);
            PreparedCommit prepared = take_address_tables(c, TableLayout::sparse16, &held);
            uint64_t rows = 0;
            for (const CompiledDirection& d : c.dir)
                rows += d.n_rules ? d.rows.count() : 0;
            progs_->maps().commit(c, std::move(prepared), slots_by_id(p));
            const CommitTimes& t = progs_->maps().last_commit_times();
            kept_tables += t.addr_kept;
            if (!t.rows_small)
                rows_left += rows - t.rows_compared;
            seen.push_back(p);
            const std::string where = fmt::format("seed {} step {}", seed, step);
            expect_maps_hold_a_full_compile(*progs_, p, classes, where, ranks.dir);
            if (HasFatalFailure())
                return;
            agree_with_reference(*progs_, p, g, seed * 100 + uint64_t(step), 300, &run_ns);
            if (HasFatalFailure())
                return;
        }
    }
    progs_->maps().set_use_small_rows(true);
    // Or the walk never took the paths it is here for.
    EXPECT_GE(kept_tables, diff_seeds(4));
    EXPECT_GE(rows_left, 250 * diff_seeds(4));
    // (With every seed: the sanitizer's share of them may place none so.)
    if (diff_seeds(4) == 4) {
        EXPECT_GE(out_of_order, 4u) << "too few commits placed a rule out of evaluation order";
    }
}

// A set whose address table is too large to be kept after its generation (over
// kDefaultKeepTableLines) is built straight into the map that the commit installs
// (PreparedCommit::built), not in memory of its own first. Random policies beside a rule on
// 400,000 random /32s (~6 a /16: ~40,000 /16s in 1 KiB chunks, the others sparse /16 lines;
// ~50 MiB of table), committed twice (the second commit frees the first's table), each
// checked against the reference, half the packets from inside the set.
TEST_F(ClassifyBpf, LargeSetTableBuiltInItsMapAgreesWithReference)
{
    XDPCTL_REQUIRE_ROOT();
    const GenOptions opts{.rate_pps = 1000000000, .burst = 1000000000};
    uint64_t run_ns = 0;
    Gen g(301, opts);
    g.make_pools();
    Policy p = g.policy(60, 0);
    std::mt19937_64 rng(301);
    PrefixSet big;
    big.name = "big";
    std::vector<std::array<uint8_t, 16>> members;
    for (int i = 0; i < 400000; i++) {
        Prefix h;
        h.family = Family::v4;
        h.len = 32;
        const uint32_t a = uint32_t(rng());
        for (int b = 0; b < 4; b++)
            h.addr[size_t(b)] = uint8_t(a >> (24 - 8 * b));
        big.entries.push_back({h, false});
        members.push_back(h.addr);
    }
    big.normalize();
    p.sets["big"] = big;
    Rule r;
    r.id = uint32_t(p.rules.size()) + 1;  // ids 1..n, as slots_by_id wants them
    r.priority = uint32_t(g.u(2000));
    r.src.kind = AddrMatch::Kind::set;
    r.src.set = "big";
    r.action.kind = ActionKind::drop;
    p.rules.push_back(r);
    auto into_set = [&](PacketKey& k) {
        if (k.family == Family::v4 && rng() % 2)
            std::copy_n(members[rng() % members.size()].begin(), 4, k.src.begin());
    };
    for (int step = 0; step < 2; step++) {
        if (step == 1)  // a rule of the generator's goes: a new table, the first one freed
            p.rules.erase(p.rules.begin());
        CompiledPolicy c = compile_policy(p, gen_ifindex);
        PreparedCommit prepared = take_address_tables(c, TableLayout::sparse16);
        const uint32_t d = uint32_t(Direction::ingress);
        ASSERT_TRUE(prepared.built[d][0]) << "the source table was not built in its map";
        EXPECT_GT(prepared.built_bytes[d][0], kDefaultKeepTableLines * 64);
        EXPECT_FALSE(prepared.addr[d][0]);
        progs_->maps().commit(c, std::move(prepared), slots_by_id(p));
        EXPECT_GT(progs_->maps().last_commit_times().addr_bytes, kDefaultKeepTableLines * 64);
        agree_with_reference(*progs_, p, g, 3010 + uint64_t(step), 400, &run_ns, into_set);
        if (HasFatalFailure())
            return;
    }
}

// A policy of 1 to `max_rules` rules naming no set and no interface: the small path's, when
// a direction has at most XDPCTL_POL_SMALL_MAX of them.
Policy small_policy(Gen& g, uint32_t max_rules)
{
    Policy p = g.policy(int(1 + g.u(max_rules)), 0);
    for (auto& r : p.rules)
        r.iif.clear();
    return p;
}

// Policies of 1 to 12 rules with no set and no --iif: the directions of at most
// XDPCTL_POL_SMALL_MAX rules are decided by comparing their rules (xdpctl_psmall), the
// others by the tables. Each policy is checked in the shape the commit chooses and again with
// the tables only, so every step also changes the shape (small <-> tables) of a generation.
TEST_F(ClassifyBpf, RandomSmallPoliciesAgreeWithReferenceInEveryShape)
{
    XDPCTL_REQUIRE_ROOT();
    const GenOptions opts{.rate_pps = 1000000000, .burst = 1000000000};
    uint64_t run_ns = 0;
    int small_dirs = 0;
    for (uint64_t seed = 101; seed < 101 + diff_seeds(40); seed++) {
        Gen g(seed, opts);
        g.make_pools();
        const Policy p = small_policy(g, 12);
        const CompiledPolicy c = compile_policy(p, gen_ifindex);
        for (const bool decide_small : {true, false}) {
            progs_->maps().set_decide_small(decide_small);
            progs_->maps().set_decide_field(decide_small);
            progs_->maps().commit(c, slots_by_id(p));
            if (decide_small)
                for (const auto& d : c.dir)
                    small_dirs += d.small && d.n_rules;
            agree_with_reference(*progs_, p, g, seed, 600, &run_ns);
            if (HasFatalFailure())
                return;
        }
    }
    progs_->maps().set_decide_small(true);
    progs_->maps().set_decide_field(true);
    EXPECT_GE(small_dirs, int(diff_seeds(40))) << "too few directions took the small path to mean anything";
}

// A policy of 9 to 400 rules each naming one address field only (the source when `on_src`),
// prefixes of both families or sets with exceptions, each dropping or passing.
Policy one_field_policy(Gen& g, bool on_src)
{
    Policy p = g.policy(int(9 + g.u(400)), int(g.u(4)));
    for (auto& r : p.rules) {
        Rule one;
        one.id = r.id;
        one.priority = r.priority;
        one.dir = r.dir;
        AddrMatch a = r.src.kind != AddrMatch::Kind::any ? r.src : r.dst;
        if (a.kind == AddrMatch::Kind::any) {
            a.kind = AddrMatch::Kind::prefix;
            a.prefix = g.pick(g.coin(60) ? Family::v4 : Family::v6);
        }
        (on_src ? one.src : one.dst) = a;
        one.action.kind = g.coin(50) ? ActionKind::drop : ActionKind::pass;
        r = one;
    }
    return p;
}

// Policies whose every rule names one address field only (prefixes of both families, sets
// with exceptions) and drops or passes, 9 to 400 rules: decided by the address's class
// (xdpctl_pdecide), then again by the tables, against the reference each time.
TEST_F(ClassifyBpf, RandomOneFieldPoliciesAgreeWithReferenceInEveryShape)
{
    XDPCTL_REQUIRE_ROOT();
    uint64_t run_ns = 0;
    int field_dirs = 0, skip_dirs = 0;
    const int hdr_fd = progs_->map_fd("xdpctl_phdr");
    for (uint64_t seed = 201; seed < 201 + diff_seeds(30); seed++) {
        Gen g(seed);
        g.make_pools();
        Policy p = one_field_policy(g, seed % 2);
        const CompiledPolicy c = compile_policy(p, gen_ifindex);
        for (const bool decide_field : {true, false}) {
            progs_->maps().set_decide_field(decide_field);
            progs_->maps().commit(c, slots_by_id(p));
            const uint32_t gen = progs_->maps().active_gen();
            xdpctl_pol_hdr h{};
            ASSERT_EQ(bpf_map_lookup_elem(hdr_fd, &gen, &h), 0);
            for (const auto& d : h.dir) {
                field_dirs += decide_field && (d.decide == XDPCTL_POL_DECIDE_SRC || d.decide == XDPCTL_POL_DECIDE_DST);
                // the tables then skip every field but the address and L4 (abi: XDPCTL_POL_DECIDE_SKIP_SHIFT)
                skip_dirs += !decide_field && d.n_rules && (d.decide >> XDPCTL_POL_DECIDE_SKIP_SHIFT) != 0;
            }
            agree_with_reference(*progs_, p, g, seed, 600, &run_ns);
            if (HasFatalFailure())
                return;
        }
    }
    progs_->maps().set_decide_field(true);
    EXPECT_GE(field_dirs, int(diff_seeds(30))) << "too few directions took the one-field path to mean anything";
    EXPECT_GE(skip_dirs, int(diff_seeds(30))) << "too few directions skipped the fields no rule names";
}

// Whether a frame is the common one that the one-field program decides from registers
// (lib/bpf/fast4.h): untagged IPv4, no options, no fragment, TCP or UDP, long enough.
bool common_frame(const std::vector<uint8_t>& f)
{
    return f.size() >= 14 + 20 + 20 && f[12] == 0x08 && f[13] == 0x00 && f[14] == 0x45 &&
           !(((f[20] & 0x3f) << 8) | f[21]) && (f[23] == 6 || f[23] == 17);
}

// A commit as `xdpctl` makes it with sets in tables of their own (set_tables.h): fields
// split by their sets, classes aligned to the generation's, the sets placed in their slots.
// Returns what place_sets built; *all: whether it placed every set of the policy.
// `edges`: a first or last rule on a set alone is the direction's edge rule
// (CompiledDirection::edge), however few rules are ranked.
uint32_t commit_split(PolicyPrograms& progs, const Policy& p, bool* all = nullptr, uint32_t* addr_kept = nullptr,
                      bool edges = false)
{
    CompiledPolicy c =
        compile_policy(p, gen_ifindex, {.max_split_sets = kMaxSplitSets, .edge_sets = edges, .edge_min_rules = 1});
    HeldTables held;
    ClassLayout classes[XDPCTL_POL_DIRS];
    progs.maps().held(held, classes);
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++)
        align_classes(c.dir[d], classes[d]);
    PreparedCommit placed;
    EXPECT_TRUE(progs.maps().place_sets(c, p.sets, placed, true));
    PreparedCommit prepared = take_address_tables(c, TableLayout::sparse16, &held);
    prepared.set_slot = placed.set_slot;
    progs.maps().commit(c, std::move(prepared), slots_by_id(p));
    if (all)
        *all = placed.set_slot.size() == p.sets.size();
    if (addr_kept)
        *addr_kept += progs.maps().last_commit_times().addr_kept;
    return placed.sets_built;
}

// What frames compare_programs() sent: common ones (the fast paths'), of them decided by a
// rule, and dropped.
struct FastCounts {
    int common = 0, by_rule = 0, dropped = 0;
    // Enough of each for a test to mean anything.
    void expect_enough() const
    {
        EXPECT_GE(common, 300) << "too few common frames to try the fast path";
        EXPECT_GE(by_rule, 30) << "too few common frames decided by a rule";
        EXPECT_GE(dropped, 30) << "too few common frames dropped";
    }
};

// 300 frames of `g`'s packets, on the XDP hook, through both programs, the policy committed in
// both: the same verdict (the reference's), the same rule counters and the same hook counters
// (L3, L4, verdict), exactly, frame by frame.
void compare_programs(PolicyPrograms* const (&both)[2], const Policy& p, Gen& g, uint64_t seed, FastCounts& n_seen)
{
    const auto slots = slots_by_id(p);
    const uint32_t n = uint32_t(slots.size());
    std::mt19937_64 frame_rng(seed);
    for (int i = 0; i < 300; i++) {
        uint32_t ifindex = 0;
        PacketKey k = g.packet(&ifindex);
        k.dir = Direction::ingress;  // on the XDP hook
        const std::vector<uint8_t> frame = frame_of(k, frame_rng);
        const policy::Verdict want = classify(p, k);
        struct Seen {
            RunResult run;
            HookCounters hook;
            std::vector<xdpctl_rule_ctr> rules;
        } seen[2];
        for (int j = 0; j < 2; j++) {
            const HookCounters before = read_hook_counters(both[j]->stats_fd(XDPCTL_HOOK_XDP), XDPCTL_HOOK_XDP);
            const auto rules_before = read_rule_counters(both[j]->rule_counters_fd(), n);
            seen[j].run = both[j]->run(XDPCTL_HOOK_XDP, frame, ifindex);
            seen[j].hook = read_hook_counters(both[j]->stats_fd(XDPCTL_HOOK_XDP), XDPCTL_HOOK_XDP);
            seen[j].rules = read_rule_counters(both[j]->rule_counters_fd(), n);
            for (size_t x = 0; x < seen[j].hook.size(); x++) {
                seen[j].hook[x].packets -= before[x].packets;
                seen[j].hook[x].bytes -= before[x].bytes;
            }
            for (uint32_t x = 0; x < n; x++) {
                seen[j].rules[x].packets -= rules_before[x].packets;
                seen[j].rules[x].bytes -= rules_before[x].bytes;
            }
        }
        const std::string where =
            fmt::format("seed {} packet {}: {}\n{}", seed, i, describe(k, ifindex), format_policy(p));
        ASSERT_EQ(seen[1].run.err, 0) << where;
        ASSERT_EQ(seen[1].run.retval, seen[0].run.retval) << where;
        ASSERT_EQ(seen[1].run.retval,
                  verdict_retval(XDPCTL_HOOK_XDP,
                                 want.action == ActionKind::drop ? test::Verdict::drop : test::Verdict::pass))
            << where;
        for (size_t x = 0; x < seen[0].hook.size(); x++) {
            ASSERT_EQ(seen[1].hook[x].packets, seen[0].hook[x].packets) << counter_name(int(x)) << "; " << where;
            ASSERT_EQ(seen[1].hook[x].bytes, seen[0].hook[x].bytes) << counter_name(int(x)) << "; " << where;
        }
        for (uint32_t x = 0; x < n; x++) {
            ASSERT_EQ(seen[1].rules[x].packets, seen[0].rules[x].packets) << "rule " << x + 1 << "; " << where;
            ASSERT_EQ(seen[1].rules[x].bytes, seen[0].rules[x].bytes) << "rule " << x + 1 << "; " << where;
        }
        n_seen.common += common_frame(frame);
        n_seen.by_rule += common_frame(frame) && want.rule_id != 0;
        n_seen.dropped += common_frame(frame) && want.action == ActionKind::drop;
    }
}

// Programs loaded as `load` loads them for `paths` alone; their XDP program must be `name`.
std::unique_ptr<PolicyPrograms> shape_program(uint32_t paths, const char* name)
{
    auto progs = std::make_unique<PolicyPrograms>(paths, paths);
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    EXPECT_EQ(bpf_prog_get_info_by_fd(progs->prog_fd(XDPCTL_HOOK_XDP), &info, &len), 0);
    EXPECT_STREQ(info.name, name);
    return progs;
}

// The program `load` attaches for a one-field policy (xdpctl_fld_only: its common frame parsed,
// decided and counted from registers, lib/bpf/policy_fast.h; every other frame its general
// body) beside xdpctl_xdp with every path, each with maps of its own and the same policy
// (compare_programs). The policies: random one-field ones (prefixes of both families, sets
// merged into the field's classes), and a set alone in a table of its own (`--src @set`, as
// `xdpctl` commits it), by rank or by class.
TEST_F(ClassifyBpf, OneFieldProgramDecidesAndCountsAsTheGeneralOne)
{
    XDPCTL_REQUIRE_ROOT();
    const auto own = shape_program(XDPCTL_PATH_FIELD, "xdpctl_fld_only");
    PolicyPrograms& field = *own;
    PolicyPrograms* const both[2] = {progs_.get(), &field};
    int field_policies = 0, set_alone = 0;
    FastCounts seen;
    auto dir0 = [&](PolicyPrograms& progs) {
        xdpctl_pol_hdr h{};
        const uint32_t gen = progs.maps().active_gen();
        EXPECT_EQ(bpf_map_lookup_elem(progs.map_fd("xdpctl_phdr"), &gen, &h), 0);
        return h.dir[0];
    };
    for (uint64_t seed = 501; seed < 501 + diff_seeds(12); seed++) {
        Gen g(seed);
        g.make_pools();
        Policy p = one_field_policy(g, seed % 2);
        for (Rule& r : p.rules)
            r.dir = Direction::ingress;  // XDP applies the ingress rules
        const CompiledPolicy c = compile_policy(p, gen_ifindex);
        for (PolicyPrograms* progs : both)
            progs->maps().commit(c, slots_by_id(p));
        // A policy the field's class cannot decide (too many classes) takes the tables, which
        // this program does not have: `load` would attach another.
        const uint32_t shape = dir0(field).decide & XDPCTL_POL_DECIDE_SHAPE_MASK;
        if (shape == XDPCTL_POL_DECIDE_SRC || shape == XDPCTL_POL_DECIDE_DST) {
            field_policies++;
            compare_programs(both, p, g, seed, seen);
            if (HasFatalFailure())
                return;
        }

        // A set alone: one rule on it (and a second, shadowed), its field split by it.
        Policy q = g.policy(4, 1);
        if (q.sets.empty())
            continue;
        const std::string set = q.sets.begin()->first;
        Policy alone;
        alone.default_action = g.coin(50) ? ActionKind::drop : ActionKind::pass;
        alone.sets[set] = q.sets.at(set);
        for (uint32_t id : {1u, 2u}) {
            Rule r;
            r.id = id;
            AddrMatch& a = seed % 2 ? r.src : r.dst;
            a.kind = AddrMatch::Kind::set;
            a.set = set;
            r.action.kind = (id == 1) == (seed % 4 < 2) ? ActionKind::drop : ActionKind::pass;
            alone.rules.push_back(r);
        }
        for (PolicyPrograms* progs : both)
            commit_split(*progs, alone, nullptr);
        const xdpctl_pol_dir_hdr d = dir0(field);
        const uint32_t split_one = (d.decide >> XDPCTL_POL_DECIDE_SPLIT_ONE_SHIFT) & 3;
        EXPECT_TRUE((d.decide & XDPCTL_POL_DECIDE_SHAPE_MASK) == XDPCTL_POL_DECIDE_SRC ||
                    (d.decide & XDPCTL_POL_DECIDE_SHAPE_MASK) == XDPCTL_POL_DECIDE_DST)
            << format_policy(alone);
        EXPECT_NE(split_one, 0u) << "the set's field must be split by it alone\n" << format_policy(alone);
        set_alone += split_one != 0;
        compare_programs(both, alone, g, seed * 7, seen);
        if (HasFatalFailure())
            return;
    }
    EXPECT_GE(field_policies, int(diff_seeds(12)) / 2) << "too few policies took the one-field path";
    EXPECT_GE(set_alone, int(diff_seeds(12)) / 2) << "too few sets alone";
    seen.expect_enough();
}

// The same for a small policy's own program (xdpctl_sml_only), on random small policies of
// drop, pass and count rules.
TEST_F(ClassifyBpf, SmallProgramDecidesAndCountsAsTheGeneralOne)
{
    XDPCTL_REQUIRE_ROOT();
    const auto own = shape_program(XDPCTL_PATH_SMALL, "xdpctl_sml_only");
    PolicyPrograms& small = *own;
    PolicyPrograms* const both[2] = {progs_.get(), &small};
    int small_policies = 0;
    FastCounts seen;
    for (uint64_t seed = 601; seed < 601 + diff_seeds(24); seed++) {
        Gen g(seed);
        g.make_pools();
        Policy p = small_policy(g, 1 + uint32_t(g.u(XDPCTL_POL_SMALL_MAX)));
        for (Rule& r : p.rules) {
            r.dir = Direction::ingress;  // XDP applies the ingress rules
            if (r.action.kind == ActionKind::rate_limit)  // the rate path is not this program's
                r.action.kind = ActionKind::count;
        }
        const CompiledPolicy c = compile_policy(p, gen_ifindex);
        for (PolicyPrograms* progs : both)
            progs->maps().commit(c, slots_by_id(p));
        xdpctl_pol_hdr h{};
        const uint32_t gen = small.maps().active_gen();
        ASSERT_EQ(bpf_map_lookup_elem(small.map_fd("xdpctl_phdr"), &gen, &h), 0);
        if (h.dir[0].decide != XDPCTL_POL_DECIDE_SMALL)  // `load` would attach another program
            continue;
        small_policies++;
        compare_programs(both, p, g, seed, seen);
        if (HasFatalFailure())
            return;
    }
    EXPECT_GE(small_policies, int(diff_seeds(24)) / 2) << "too few policies took the small path";
    seen.expect_enough();
}

// The map ids in xdpctl_pset's slots (0: empty).
std::vector<uint32_t> set_slot_ids(PolicyPrograms& progs)
{
    std::vector<uint32_t> out;
    for (uint32_t slot = 0; slot < XDPCTL_POL_SET_SLOTS; slot++) {
        uint32_t id = 0;
        out.push_back(bpf_map_lookup_elem(progs.map_fd("xdpctl_pset"), &slot, &id) == 0 ? id : 0);
    }
    return out;
}

// Sets in tables of their own: random policies with 1-4 sets (a field decided by a set
// alone, a set beside rule prefixes, two or more sets in one field, sets in source and
// destination, one-field policies of sets), with sets changed (members and exceptions added
// and removed) and rules added between commits, each commit against the reference through
// the real programs. A commit that changes only rules builds no set table and leaves every
// set's map where it was; one that changes a set builds that set's table alone.
TEST_F(ClassifyBpf, SetsInTablesOfTheirOwnAgreeWithReference)
{
    XDPCTL_REQUIRE_ROOT();
    const GenOptions opts{.rate_pps = 1000000000, .burst = 1000000000};
    uint64_t run_ns = 0;
    // [0] a split field of sets only, [1] a set beside rule prefixes, [2] two or more sets in
    // a field, [3] source and destination split in one direction, [4] one-field decided, [5]
    // one-field decided by a set alone (its ranks by membership: XDPCTL_POL_DECIDE_SET_RANKS).
    int shapes[6] = {};
    int rule_commits = 0;
    const int hdr_fd = progs_->map_fd("xdpctl_phdr");
    const int split_fd = progs_->map_fd("xdpctl_psplit");
    for (uint64_t seed = 801; seed < 801 + diff_seeds(30); seed++) {
        Gen g(seed, opts);
        g.make_pools();
        Policy p = seed % 4 == 0 ? one_field_policy(g, seed % 8 == 0) : g.policy(int(4 + g.u(seed % 3 ? 40 : 250)), 0);
        // 1-4 sets, named by a share of the rules' addresses
        const int n_sets = int(1 + g.u(4));
        const Policy with_sets = g.policy(0, n_sets);
        p.sets = with_sets.sets;
        for (Rule& r : p.rules)
            for (AddrMatch* a : {&r.src, &r.dst})
                if (a->kind == AddrMatch::Kind::set || (a->kind != AddrMatch::Kind::any && g.coin(35))) {
                    a->kind = AddrMatch::Kind::set;
                    a->set = fmt::format("s{}", g.u(uint64_t(n_sets)));
                }
        // Some one-field policies name one set alone (`--src @s0 --action drop`, the 1M-set
        // row's shape), in the source or the destination.
        if (seed % 4 == 0 && seed % 12 <= 4)
            for (Rule& r : p.rules)
                for (AddrMatch* a : {&r.src, &r.dst})
                    if (a->kind != AddrMatch::Kind::any) {
                        a->kind = AddrMatch::Kind::set;
                        a->set = "s0";
                    }
        bool placed_all = false;  // by the commit before
        for (int step = 0; step < 5; step++) {
            bool rules_only = false;
            if (step > 0 && g.coin(40)) {
                Rule r = g.policy(1, 0).rules[0];
                r.id = uint32_t(p.rules.size()) + 1;
                if (r.src.kind != AddrMatch::Kind::any && g.coin(50)) {
                    r.src.kind = AddrMatch::Kind::set;
                    r.src.set = fmt::format("s{}", g.u(uint64_t(n_sets)));
                }
                p.rules.push_back(r);
                rules_only = true;
            } else if (step > 0) {
                PrefixSet& set = std::next(p.sets.begin(), ptrdiff_t(g.u(p.sets.size())))->second;
                if (g.coin(40) && set.entries.size() > 1) {
                    set.entries.erase(set.entries.begin() + ptrdiff_t(g.u(set.entries.size())));
                } else {
                    const Prefix add = g.pick(g.coin(60) ? Family::v4 : Family::v6);
                    if (std::any_of(set.entries.begin(), set.entries.end(), [&](const SetEntry& e) { return e.prefix == add; }))
                        continue;
                    set.entries.push_back({add, g.coin(25)});
                    set.normalize();
                }
            }
            const std::vector<uint32_t> ids = set_slot_ids(*progs_);
            const bool all_before = placed_all;
            const uint32_t built = commit_split(*progs_, p, &placed_all);
            if (rules_only && all_before) {
                EXPECT_EQ(built, 0u) << "seed " << seed << " step " << step << ": a rule commit built a set table";
                EXPECT_EQ(set_slot_ids(*progs_), ids) << "seed " << seed << " step " << step;
                rule_commits++;
            } else if (step > 0) {
                EXPECT_EQ(built, 1u) << "seed " << seed << " step " << step;
            }
            const uint32_t gen = progs_->maps().active_gen();
            xdpctl_pol_hdr h{};
            ASSERT_EQ(bpf_map_lookup_elem(hdr_fd, &gen, &h), 0);
            for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++) {
                const uint32_t split = h.dir[d].n_rules ? h.dir[d].decide >> XDPCTL_POL_DECIDE_SPLIT_SHIFT & 3 : 0;
                for (uint32_t dst = 0; dst < 2; dst++) {
                    if (!(split >> dst & 1))
                        continue;
                    const uint32_t key = XDPCTL_POL_TAB_ADDR(gen, d, dst);
                    std::vector<uint8_t> buf(sizeof(xdpctl_pol_split));
                    ASSERT_EQ(bpf_map_lookup_elem(split_fd, &key, buf.data()), 0);
                    xdpctl_pol_split sp;
                    std::memcpy(&sp, buf.data(), sizeof(sp));
                    shapes[0] += !sp.rule_table;
                    shapes[1] += sp.rule_table;
                    shapes[2] += sp.n_sets >= 2;
                }
                shapes[3] += split == 3;
                const uint32_t shape = h.dir[d].decide & XDPCTL_POL_DECIDE_SHAPE_MASK;
                shapes[4] += split && (shape == XDPCTL_POL_DECIDE_SRC || shape == XDPCTL_POL_DECIDE_DST);
                shapes[5] += h.dir[d].n_rules && (h.dir[d].decide & XDPCTL_POL_DECIDE_SET_RANKS);
            }
            agree_with_reference(*progs_, p, g, seed * 100 + uint64_t(step), 300, &run_ns);
            if (HasFatalFailure())
                return;
        }
    }
    for (int s = 0; s < 6; s++)
        EXPECT_GT(shapes[s], 0) << "shape " << s << " never committed";
    EXPECT_GE(rule_commits, int(diff_seeds(10)));
}

// ---- a set changed in place (`set add` / `set del` without a commit: set_tables.h) --------

Prefix v4_prefix(uint32_t addr, uint8_t len)
{
    Prefix p;
    p.family = Family::v4;
    p.len = len;
    addr = len ? addr & ~0u << (32 - len) : 0;
    for (int b = 0; b < 4; b++)
        p.addr[size_t(b)] = uint8_t(addr >> (24 - 8 * b));
    return p;
}

// What PolicyStore::change_set_in_place does, given the whole set: finds the set's table by
// its print, patches it and publishes the print after. False where it does not apply (then
// nothing a packet reads changed).
bool change_set_in_place(PolicyPrograms& progs, PrefixSet& set, const std::vector<SetEntry>& add,
                         const std::vector<SetEntry>& del, const std::vector<std::pair<uint32_t, uint32_t>>& fields)
{
    PrefixSet after = set;
    for (const SetEntry& e : add)
        after.entries.push_back(e);
    after.normalize();
    std::vector<Prefix> changed;
    for (const SetEntry& e : del)
        after.entries.erase(std::find(after.entries.begin(), after.entries.end(), e));
    for (const auto* l : {&add, &del})
        for (const SetEntry& e : *l)
            changed.push_back(e.prefix);
    const std::optional<uint32_t> slot = progs.maps().set_patch_slot(set_print(set), fields);
    if (!slot)
        return false;
    const std::optional<SetPatch> patch =
        stage_set_patch(progs.maps().set_tables_fd(), *slot, changed, [&](uint32_t) { return after.entries; });
    if (!patch)
        return false;
    publish_set_patch(progs.maps().set_tables_fd(), progs.maps().set_l1_fd(), *patch, set_print(after));
    progs.maps().count_change_in_place();
    set = std::move(after);
    return true;
}

// Every byte of the maps a commit writes for a generation (headers, split fields, rule records,
// the decisions), and the generation in force, to show that a change in place writes none.
std::vector<uint8_t> generation_bytes(PolicyPrograms& progs)
{
    std::vector<uint8_t> out{uint8_t(progs.maps().active_gen())};
    for (const char* name : {"xdpctl_phdr", "xdpctl_psplit", "xdpctl_prule", "xdpctl_pdecide"}) {
        const int fd = progs.map_fd(name);
        bpf_map_info info{};
        uint32_t len = sizeof(info);
        EXPECT_EQ(bpf_obj_get_info_by_fd(fd, &info, &len), 0) << name;
        std::vector<uint8_t> v(info.value_size);
        for (uint32_t k = 0; k < info.max_entries; k++) {
            std::fill(v.begin(), v.end(), 0);
            if (bpf_map_lookup_elem(fd, &k, v.data()) == 0)
                out.insert(out.end(), v.begin(), v.end());
        }
    }
    return out;
}

// A set of 100,000 IPv4 prefixes (/32s, /24s, /20s and excepted /32s in 64 /16s) named alone in
// one direction's source and beside rule prefixes in the other's destination (decided by the
// tables, with the flow cache), changed in place a few prefixes at a time: a /32 into a /24's
// lines, an exception under a member, a /24, /20 and /16 added and removed, eight /32s in one
// /24 (past a sparse line), a /16 with no lines before, prefixes in several /16s at once.
// After each change no generation's map changed, no set table was built, and packets to and
// around the changed prefixes (source and destination) agree with the reference, the same
// packets as just before the change too (flows the cache holds). A /8 and an IPv6 prefix do
// not fit (nothing changes) and go through a commit, which agrees too; nor does a set merged
// into its fields' classes. After every other change in place a rule commit follows, as a
// `rule add` after a `set add`: it must believe what the generations hold (the egress
// destination's address table is kept: the change is in the set's own table) and agree too.
// With edges (the parameter), that rule is ranked before the set's ingress rule, which is then
// the direction's last edge rule (abi: XDPCTL_POL_DECIDE_EDGE), and the one-field shape
// without it.
class ClassifyBpfInPlace : public ClassifyBpf, public ::testing::WithParamInterface<bool> {};

TEST_P(ClassifyBpfInPlace, SetChangedInPlaceAgreesWithReference)
{
    XDPCTL_REQUIRE_ROOT();
    const bool edges = GetParam();
    int edge_commits = 0;
    const int hdr_fd = progs_->map_fd("xdpctl_phdr");
    Gen g(951, {.rate_pps = 1000000000, .burst = 1000000000});
    g.make_pools();
    std::mt19937_64 rng(951);
    auto in16 = [&](uint32_t x16) { return (0x0a00u + x16) << 16; };  // 10.0.0.0/8's /16s
    PrefixSet big;
    big.name = "big";
    for (int i = 0; i < 100000; i++) {
        const uint32_t a = in16(uint32_t(rng() % 64)) | uint32_t(rng() & 0xffff);
        const uint64_t kind = rng() % 10;
        big.entries.push_back({v4_prefix(a, kind < 6 ? 32 : kind < 8 ? 24 : kind < 9 ? 20 : 32), kind == 9});
    }
    big.normalize();
    for (size_t i = 1; i < big.entries.size();)  // a prefix is a member or an exception, not both
        if (big.entries[i].prefix == big.entries[i - 1].prefix)
            big.entries.erase(big.entries.begin() + ptrdiff_t(i));
        else
            i++;
    Policy p = g.policy(30, 0);
    p.sets["big"] = big;
    for (Rule& r : p.rules) {
        r.dir = Direction::egress;
        r.src = {};
    }
    Rule one;  // ingress: decided by the set alone
    one.id = uint32_t(p.rules.size()) + 1;
    one.src.kind = AddrMatch::Kind::set;
    one.src.set = "big";
    one.action.kind = ActionKind::drop;
    p.rules.push_back(one);
    for (size_t i = 0; i < 4; i++) {  // egress: the set beside the rules' own prefixes
        p.rules[i].dst.kind = AddrMatch::Kind::set;
        p.rules[i].dst.set = "big";
    }
    p.rules[4].dst.kind = AddrMatch::Kind::prefix;
    p.rules[4].dst.prefix = v4_prefix(in16(3), 16);
    const std::vector<std::pair<uint32_t, uint32_t>> fields = {{0, 0}, {1, 1}};
    // Rows in the rows map, as 10,000 rules' go: a generation's record of what it holds is
    // written there (the small rows hold none).
    progs_->maps().set_use_small_rows(false);
    commit_split(*progs_, p, nullptr, nullptr, edges);

    auto member_of = [&](size_t i) { return big.entries[i % big.entries.size()]; };
    auto a32 = [](const Prefix& x) {
        return uint32_t(x.addr[0]) << 24 | uint32_t(x.addr[1]) << 16 | uint32_t(x.addr[2]) << 8 | x.addr[3];
    };
    // A free /32 inside an existing /24 member (a split of the /24's lines) and so on.
    auto free32_near = [&](uint32_t a) {
        for (;;) {
            const Prefix x = v4_prefix(a ^ uint32_t(rng() & 0xff), 32);
            if (std::none_of(big.entries.begin(), big.entries.end(), [&](const SetEntry& e) { return e.prefix == x; }))
                return x;
        }
    };
    uint64_t run_ns = 0;
    uint32_t kept_after_change = 0;
    Rule extra;  // ingress, toggled by the rule commits after a change in place
    extra.id = 9000;
    extra.proto = 17;
    extra.dport = {53, 53};
    extra.action.kind = ActionKind::drop;
    if (edges)
        extra.priority = 1;  // before the set's rule, which is then the ingress edge rule
    for (int step = 0; step < 12; step++) {
        std::vector<SetEntry> add, del;
        const SetEntry m = member_of(size_t(rng()));
        switch (step) {
        case 0: add = {{free32_near(a32(m.prefix)), false}}; break;
        case 1: add = {{free32_near(a32(m.prefix)), true}}; break;
        case 2: del = {m}; break;
        case 3: add = {{v4_prefix(in16(7) | 0x1200, 20), false}}; break;
        case 4: add = {{v4_prefix(in16(9), 16), false}}; break;
        case 5: del = {{v4_prefix(in16(9), 16), false}}; break;
        case 6:
            for (uint32_t k = 0; k < 8; k++)
                add.push_back({v4_prefix(in16(11) | 0x3400 | (k * 29 + 3), 32), k % 3 == 2});
            break;
        case 7: add = {{v4_prefix(in16(200) | 0x0507, 32), false}}; break;
        case 8: add = {{free32_near(in16(1) | 0x1100), false}, {free32_near(in16(2) | 0x2200), true}, {v4_prefix(in16(5) | 0x7700, 24), false}}; break;
        case 9: add = {{free32_near(a32(m.prefix)), false}}, del = {m}; break;
        case 10: add = {{v4_prefix(0x0b000000, 8), false}}; break;
        case 11: {
            SetEntry e;
            e.prefix = g.pick(Family::v6);
            add = {e};
            break;
        }
        }
        // The flows of the packets below, before the change: in the flow cache.
        const Gen g_step = g;
        const uint64_t tweak_seed = rng();
        std::vector<uint32_t> near;
        for (const auto* l : {&add, &del})
            for (const SetEntry& e : *l)
                if (e.prefix.family == Family::v4)
                    near.push_back(a32(e.prefix));
        auto around = [&near](std::mt19937_64& r) {
            return [&near, &r](PacketKey& k) {
                if (k.family != Family::v4 || near.empty() || r() % 5 == 0)
                    return;
                uint32_t a = near[r() % near.size()];
                a ^= uint32_t(r() % 3 == 0 ? r() & 0xffff : r() % 2 ? 0 : r() & 0xff);
                for (auto* f : {&k.src, &k.dst})
                    if (f == &k.src ? k.dir == Direction::ingress || r() % 2 : k.dir == Direction::egress || r() % 2)
                        for (int b = 0; b < 4; b++)
                            (*f)[size_t(b)] = uint8_t(a >> (24 - 8 * b));
            };
        };
        {
            Gen g_before = g_step;
            std::mt19937_64 r(tweak_seed);
            agree_with_reference(*progs_, p, g_before, 95000 + uint64_t(step), 60, &run_ns, around(r));
        }
        const std::vector<uint8_t> gen_before = generation_bytes(*progs_);
        const std::vector<uint32_t> ids = set_slot_ids(*progs_);
        PrefixSet set = big;
        const bool in_place = change_set_in_place(*progs_, set, add, del, fields);
        EXPECT_EQ(in_place, step < 10) << "step " << step;
        EXPECT_EQ(generation_bytes(*progs_), gen_before) << "step " << step << ": a change in place wrote a generation";
        EXPECT_EQ(set_slot_ids(*progs_), ids) << "step " << step << ": a change in place built a table";
        if (!in_place) {  // what `set add` does then: a commit
            for (const SetEntry& e : add)
                set.entries.push_back(e);
            set.normalize();
        }
        big = set;
        p.sets["big"] = big;
        if (!in_place)
            commit_split(*progs_, p, nullptr, nullptr, edges);
        if (in_place && step % 2 == 1) {
            auto it = std::find_if(p.rules.begin(), p.rules.end(), [](const Rule& r) { return r.id == 9000; });
            const bool adding = it == p.rules.end();
            if (adding)
                p.rules.push_back(extra);
            else
                p.rules.erase(it);
            commit_split(*progs_, p, nullptr, &kept_after_change, edges);
            const uint32_t gen = progs_->maps().active_gen();
            xdpctl_pol_hdr h{};
            ASSERT_EQ(bpf_map_lookup_elem(hdr_fd, &gen, &h), 0);
            const bool edge = h.dir[0].decide & XDPCTL_POL_DECIDE_EDGE;
            EXPECT_EQ(edge, edges && adding) << "step " << step;
            edge_commits += edge;
        }
        // The same packets as before the change, then others to and from the changed prefixes
        // and their neighbours, and elsewhere.
        {
            Gen g_after = g_step;
            std::mt19937_64 r(tweak_seed);
            agree_with_reference(*progs_, p, g_after, 95000 + uint64_t(step), 60, &run_ns, around(r));
        }
        std::mt19937_64 r(tweak_seed + 1);
        agree_with_reference(*progs_, p, g, 95100 + uint64_t(step), 120, &run_ns, around(r));
        if (HasFatalFailure())
            return;
    }
    // Each of the 5 rule commits after a change in place kept the egress destination's table
    // but the first (its target generation had no record yet).
    EXPECT_GE(kept_after_change, 4u) << "a rule commit after a change in place rebuilt the address tables";
    EXPECT_EQ(edge_commits, edges ? 3 : 0);
    progs_->maps().set_use_small_rows(true);
    // Merged into the fields' classes (a commit that splits no field): not in place, though
    // the set's table is still in its slot.
    progs_->maps().commit(compile_policy(p, gen_ifindex), slots_by_id(p));
    PrefixSet set = big;
    EXPECT_FALSE(change_set_in_place(*progs_, set, {{free32_near(in16(4) | 0x100), false}}, {}, fields));
    EXPECT_EQ(set, big);
}

INSTANTIATE_TEST_SUITE_P(Edges, ClassifyBpfInPlace, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "Edge" : "Ranked"; });

// A policy of 9 to 9 + `more` rules that drop or pass and name no set and no interface:
// decided by its anchor lists (xdpctl_panc) when they fit.
Policy anchor_policy(Gen& g, uint32_t more)
{
    Policy p = g.policy(int(9 + g.u(more)), 0);
    for (auto& r : p.rules) {
        r.iif.clear();
        if (r.action.kind != ActionKind::drop && r.action.kind != ActionKind::pass)
            r.action.kind = g.coin(50) ? ActionKind::drop : ActionKind::pass;
    }
    return p;
}

// Policies of drop and pass rules naming no set and no interface, 9 to 800 rules: decided by
// comparing the rules on the anchor lists of the packet's classes (xdpctl_panc), then by the
// tables, then by the lists again (worked out before the commit, as `xdpctl` does), against
// the reference each time (verdicts and exact counters), so every step changes the shape of
// a generation (lists <-> tables, and small or one-field policies in between).
TEST_F(ClassifyBpf, RandomAnchorPoliciesAgreeWithReferenceInEveryShape)
{
    XDPCTL_REQUIRE_ROOT();
    uint64_t run_ns = 0;
    int anchor_dirs = 0, skip_dirs = 0;
    const int hdr_fd = progs_->map_fd("xdpctl_phdr");
    for (uint64_t seed = 401; seed < 401 + diff_seeds(30); seed++) {
        Gen g(seed);
        g.make_pools();
        const Policy p = seed % 5 == 0   ? small_policy(g, XDPCTL_POL_SMALL_MAX)
                         : seed % 5 == 1 ? one_field_policy(g, seed % 2)
                                         : anchor_policy(g, seed % 2 ? 800 : 60);
        const CompiledPolicy c = compile_policy(p, gen_ifindex);
        for (const int pass : {0, 1, 2}) {
            const bool lists = pass != 1;
            progs_->maps().set_decide_anchors(lists);
            if (pass == 2) {
                // As `xdpctl` commits: the lists worked out before the commit (beside the
                // grace period, PolicyStore::commit), over those the first pass wrote.
                PreparedCommit prepared = prepare_commit(c);
                prepared.anchors = progs_->maps().prepare_anchors(c);
                progs_->maps().commit(c, std::move(prepared), slots_by_id(p));
            } else {
                progs_->maps().commit(c, slots_by_id(p));
            }
            const uint32_t gen = progs_->maps().active_gen();
            xdpctl_pol_hdr h{};
            ASSERT_EQ(bpf_map_lookup_elem(hdr_fd, &gen, &h), 0);
            for (const auto& d : h.dir) {
                const bool anchors = (d.decide & XDPCTL_POL_DECIDE_SHAPE_MASK) == XDPCTL_POL_DECIDE_ANCHORS;
                EXPECT_FALSE(anchors && !lists) << "seed " << seed;
                anchor_dirs += anchors;
                skip_dirs += anchors && (d.decide >> XDPCTL_POL_DECIDE_SKIP_SHIFT) != 0;
            }
            agree_with_reference(*progs_, p, g, seed, 400, &run_ns);
            if (HasFatalFailure())
                return;
        }
    }
    progs_->maps().set_decide_anchors(true);
    EXPECT_GE(anchor_dirs, int(diff_seeds(40))) << "too few directions took the anchor lists to mean anything";
    EXPECT_GE(skip_dirs, int(diff_seeds(10))) << "too few directions left out a field no rule is anchored at";
}

// The flow cache: each packet run three times (a miss, then hits), under a policy and then
// under the same policy with every drop and pass swapped, with the same packets: a hit must
// never outlive its commit, count and rate-limit rules must be applied to every packet (their
// walks are not kept), and the deciding rule is counted on every hit. Policies of the anchor
// lists and of the tables. Half the seeds go through programs with every path, half through
// programs of the tables' path alone (what a policy of the lists or the tables loads), which
// look the cache up before the policy's header (classify.h: pol_flow_first()); the policies'
// defaults drop or pass, so hits of the default are among them.
TEST_F(ClassifyBpf, FlowCacheHitsDecideAsTheReferenceAndEndWithTheirCommit)
{
    XDPCTL_REQUIRE_ROOT();
    const GenOptions opts{.rate_pps = 1000000000, .burst = 1000000000};
    uint64_t run_ns = 0;
    PolicyPrograms tables_only(XDPCTL_PATH_TABLES | XDPCTL_PATH_RATE, XDPCTL_PATH_TABLES | XDPCTL_PATH_RATE);
    for (uint64_t seed = 501; seed < 501 + diff_seeds(16); seed++) {
        PolicyPrograms& progs = seed % 4 < 2 ? *progs_ : tables_only;
        for (const bool swapped : {false, true}) {
            Gen g(seed, opts);  // the same pools, policy and packets both times
            g.make_pools();
            Policy p = seed % 2 ? anchor_policy(g, 300) : g.policy(int(9 + g.u(300)), 0);
            for (auto& r : p.rules)
                if (swapped && (r.action.kind == ActionKind::drop || r.action.kind == ActionKind::pass))
                    r.action.kind = r.action.kind == ActionKind::drop ? ActionKind::pass : ActionKind::drop;
            progs.maps().commit(compile_policy(p, gen_ifindex), slots_by_id(p));
            agree_with_reference(progs, p, g, seed, 150, &run_ns, {}, 3);
            if (HasFatalFailure())
                return;
        }
    }
}

// A first or last rule on one set alone, decided beside the walk by the set's own table (abi:
// XDPCTL_POL_DECIDE_EDGE): random policies of the tables, the anchor lists and one field (some
// with other rules on sets, so split fields beside it), each with such a rule first or last,
// on its source or destination, dropping or passing, in either direction; then a rule ranked
// between, the set changed, the edge rule deleted, and put back at the other end on the other
// field with the other action. Each commit's header says the edge the compile made; every
// packet runs twice (a miss, then a flow-cache hit) against the reference, verdicts and exact
// counters; the compiled form walked in C++ agrees too.
TEST_F(ClassifyBpf, EdgeRulesOnASetAgreeWithReference)
{
    XDPCTL_REQUIRE_ROOT();
    const GenOptions opts{.rate_pps = 1000000000, .burst = 1000000000};
    uint64_t run_ns = 0, edge_hits[2] = {};
    int edge_commits[2] = {}, edge_shapes[3] = {};
    const int hdr_fd = progs_->map_fd("xdpctl_phdr");
    const int rec_fd = progs_->map_fd("xdpctl_prule");
    for (uint64_t seed = 1101; seed < 1101 + diff_seeds(24); seed++) {
        Gen g(seed, opts);
        g.make_pools();
        Policy p = seed % 3 == 0   ? anchor_policy(g, 200)
                   : seed % 3 == 1 ? one_field_policy(g, seed % 2)
                                   : g.policy(int(4 + g.u(120)), 0);
        if (!p.sets.count("s0"))
            p.sets = g.policy(0, 2).sets;
        if (seed % 3 == 2 && g.coin(50))  // other rules on sets: split fields beside the edge
            for (Rule& r : p.rules)
                if (r.src.kind != AddrMatch::Kind::any && g.coin(30)) {
                    r.src.kind = AddrMatch::Kind::set;
                    r.src.set = "s0";
                }
        // The other rules' priorities from 1 to `last`: the edge rule (of the highest id) is
        // first at 0, last at `last` or above (a tie is broken by the id).
        uint32_t last = 1;
        for (Rule& r : p.rules)
            last = std::max(last, ++r.priority);
        bool first = seed % 2;
        Rule edge;
        edge.id = uint32_t(p.rules.size()) + 1;
        edge.priority = first ? 0 : last + uint32_t(g.u(2));
        edge.dir = g.coin(70) ? Direction::ingress : Direction::egress;
        (g.coin(60) ? edge.src : edge.dst) = AddrMatch{AddrMatch::Kind::set, {}, "s0"};
        edge.action.kind = g.coin(50) ? ActionKind::drop : ActionKind::pass;
        p.rules.push_back(edge);
        for (int step = 0; step < 5; step++) {
            if (step == 1) {  // a rule ranked between the edges
                Rule r = g.policy(1, 0).rules[0];
                r.id = uint32_t(p.rules.size()) + 1;
                r.priority = 1 + r.priority % last;
                if (!first && r.priority >= edge.priority)
                    r.priority = edge.priority - 1;
                r.iif.clear();
                p.rules.push_back(r);
            } else if (step == 2) {  // the set changed
                PrefixSet& set = p.sets.at("s0");
                const Prefix add = g.pick(g.coin(60) ? Family::v4 : Family::v6);
                if (std::none_of(set.entries.begin(), set.entries.end(), [&](const SetEntry& e) { return e.prefix == add; }))
                    set.entries.push_back({add, false});
                set.normalize();
            } else if (step == 3) {  // the edge rule deleted: nothing decided beside the walk
                p.rules.erase(std::find_if(p.rules.begin(), p.rules.end(), [&](const Rule& r) { return r.id == edge.id; }));
                for (Rule& r : p.rules)  // ids stay 1..n (slots_by_id)
                    r.id -= r.id > edge.id;
            } else if (step == 4) {  // back, at the other end, on the other field, with the other action
                first = !first;
                edge.priority = first ? 0 : last;
                std::swap(edge.src, edge.dst);
                edge.action.kind = edge.action.kind == ActionKind::drop ? ActionKind::pass : ActionKind::drop;
                edge.id = uint32_t(p.rules.size()) + 1;
                p.rules.push_back(edge);
            }
            const CompiledPolicy c =
                compile_policy(p, gen_ifindex, {.max_split_sets = kMaxSplitSets, .edge_sets = true, .edge_min_rules = 1});
            commit_split(*progs_, p, nullptr, nullptr, true);
            const uint32_t gen = progs_->maps().active_gen(), d = edge.dir == Direction::egress;
            xdpctl_pol_hdr h{};
            ASSERT_EQ(bpf_map_lookup_elem(hdr_fd, &gen, &h), 0);
            // The edge the compile must make: the direction's last rule if it is on a set alone,
            // else its first (our rule, unless deleted, or the policy's own rule on s0 there).
            std::vector<const Rule*> in_d;
            for (const Rule* r : evaluation_order(p))
                if ((r->dir == Direction::egress) == bool(d))
                    in_d.push_back(r);
            const Rule* want = in_d.size() < 2                     ? nullptr
                               : edge_rule_field(*in_d.back()) >= 0  ? in_d.back()
                               : edge_rule_field(*in_d.front()) >= 0 ? in_d.front()
                                                                     : nullptr;
            const std::string where = fmt::format("seed {} step {}", seed, step);
            ASSERT_EQ(c.dir[d].edge ? c.dir[d].edge->rec.id : 0u, want ? want->id : 0u) << where << "\n" << format_policy(p);
            ASSERT_TRUE(step == 3 || (want && want->id == edge.id) || want == in_d.back()) << where;
            for (uint32_t x = 0; x < XDPCTL_POL_DIRS; x++) {
                ASSERT_EQ(bool(h.dir[x].decide & XDPCTL_POL_DECIDE_EDGE), bool(c.dir[x].edge)) << where;
                ASSERT_EQ(bool(h.dir[x].decide & XDPCTL_POL_DECIDE_EDGE_FIRST), c.dir[x].edge && c.dir[x].edge->first)
                    << where;
            }
            const Rule* const decides = want;  // the edge rule of direction d, if any
            if (decides) {
                const bool at_first = c.dir[d].edge->first;
                ASSERT_EQ(at_first, want == in_d.front() && want != in_d.back()) << where;
                // Not ranked: no rank's record names it; its own record does.
                for (const RuleRecord& r : c.dir[d].ranked)
                    ASSERT_NE(r.id, decides->id) << where;
                xdpctl_rule_rec rec{};
                const uint32_t key = XDPCTL_POL_GD(gen, d) * XDPCTL_POL_MAX_RANKS + XDPCTL_POL_EDGE_RANK;
                ASSERT_EQ(bpf_map_lookup_elem(rec_fd, &key, &rec), 0);
                ASSERT_EQ(rec.id, decides->id) << where;
                ASSERT_EQ(bool(h.dir[d].decide & XDPCTL_POL_DECIDE_EDGE_DST), decides->dst.kind != AddrMatch::Kind::any)
                    << where;
                edge_commits[at_first]++;
                const uint32_t shape = h.dir[d].decide & XDPCTL_POL_DECIDE_SHAPE_MASK;
                edge_shapes[shape == XDPCTL_POL_DECIDE_ANCHORS ? 0 : shape == XDPCTL_POL_DECIDE_TABLES ? 1 : 2]++;
            }
            const auto slots = slots_by_id(p);
            const auto before = read_rule_counters(progs_->rule_counters_fd(), uint32_t(slots.size()));
            agree_with_reference(*progs_, p, g, seed * 100 + uint64_t(step), 300, &run_ns, {}, 2);
            if (HasFatalFailure())
                return;
            if (decides) {
                const auto after = read_rule_counters(progs_->rule_counters_fd(), uint32_t(slots.size()));
                edge_hits[c.dir[d].edge->first] += after[slots.at(decides->id)].packets - before[slots.at(decides->id)].packets;
            }
            for (int i = 0; i < 300; i++) {
                uint32_t ifindex = 0;
                const PacketKey k = g.packet(&ifindex);
                const policy::Verdict want = classify(p, k), got = classify_compiled(c, k, ifindex, &p.sets);
                ASSERT_EQ(got.action, want.action) << where << ": " << describe(k, ifindex);
                ASSERT_EQ(got.rule_id, want.rule_id) << where << ": " << describe(k, ifindex);
            }
        }
    }
    for (const bool first : {false, true}) {
        EXPECT_GE(edge_commits[first], int(diff_seeds(24)) * 3 / 2) << (first ? "first" : "last");
        EXPECT_GE(edge_hits[first], uint64_t(diff_seeds(24)) * 5)
            << "too few packets decided by a " << (first ? "first" : "last") << " edge rule to mean anything";
    }
    for (int s = 0; s < 3; s++)
        EXPECT_GT(edge_shapes[s], 0) << "an edge beside shape " << s << " (anchors, tables, one field) never committed";
}

// Programs loaded with only the paths a policy needs (lib/attach/datapath_paths.h: what a load or a
// commit sets from the policy in force) decide as the reference does: random policies of each
// shape (small, one field, the tables), each through a pair of programs loaded for it. The
// paths predicted from the compiled policy are those the commit's header says, so a commit's
// reloads give every generation the path it is decided by. Policies that need the same paths
// share the pair (the programs are the same; a load is most of a seed's time), committed in
// turn as xdpctl commits one policy after another.
TEST_F(ClassifyBpf, ProgramsWithThePolicysPathsAgreeWithReference)
{
    XDPCTL_REQUIRE_ROOT();
    const GenOptions opts{.rate_pps = 1000000000, .burst = 1000000000};
    uint64_t run_ns = 0;
    uint32_t seen = 0;
    std::map<std::pair<uint32_t, uint32_t>, std::unique_ptr<PolicyPrograms>> loaded;  // by (XDP, TC) paths
    for (uint64_t seed = 301; seed < 301 + diff_seeds(12); seed++) {
        Gen g(seed, opts);
        g.make_pools();
        Policy p;
        if (seed % 3 == 0)
            p = small_policy(g, XDPCTL_POL_SMALL_MAX);
        else if (seed % 3 == 1)
            p = one_field_policy(g, seed % 2);
        else
            p = g.policy(int(9 + g.u(60)), int(g.u(5)));
        const CompiledPolicy c = compile_policy(p, gen_ifindex);
        DatapathPaths want;
        want.dir = compiled_paths(c);
        std::unique_ptr<PolicyPrograms>& pair = loaded[{want.xdp(), want.tc()}];
        if (!pair)
            pair = std::make_unique<PolicyPrograms>(want.xdp(), want.tc());
        PolicyPrograms& progs = *pair;
        progs.maps().commit(c, slots_by_id(p));
        const uint32_t gen = progs.maps().active_gen();
        xdpctl_pol_hdr h{};
        ASSERT_EQ(bpf_map_lookup_elem(progs.map_fd("xdpctl_phdr"), &gen, &h), 0);
        for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++) {
            xdpctl_pol_small small{};
            const uint32_t gd = XDPCTL_POL_GD(gen, d);
            ASSERT_EQ(bpf_map_lookup_elem(progs.map_fd("xdpctl_psmall"), &gd, &small), 0);
            EXPECT_EQ(written_paths(h.dir[d], small, false, h.default_action == XDPCTL_ACT_DROP), want.dir[d]) << "seed " << seed << " dir " << d;
            seen |= want.dir[d];
        }
        agree_with_reference(progs, p, g, seed, 400, &run_ns);
        if (HasFatalFailure())
            return;
    }
    std::printf("%zu pairs of programs loaded for %zu policies\n", loaded.size(), size_t(diff_seeds(12)));
    EXPECT_EQ(seen & (XDPCTL_PATH_SMALL | XDPCTL_PATH_FIELD | XDPCTL_PATH_TABLES),
              uint32_t(XDPCTL_PATH_SMALL | XDPCTL_PATH_FIELD | XDPCTL_PATH_TABLES))
        << "every shape must be among the policies";
}

// ---- the table --------------------------------------------------------------------------

struct Case {
    std::string name;
    std::string policy;  // rule file text
    std::vector<uint8_t> frame;
    int hook = XDPCTL_HOOK_XDP;
    uint32_t ifindex = 1;
    bool drop = false;
    uint32_t rule_id = 0;  // 0: the default
    std::vector<uint32_t> counted;
};

void PrintTo(const Case& c, std::ostream* os)
{
    *os << c.name;
}

PacketBuilder B()
{
    return PacketBuilder();
}

const Ipv4Addr kS4{198, 18, 0, 1}, kD4{198, 19, 0, 2};
const Ipv6Addr kS6 = kSrcIpv6, kD6 = kDstIpv6;

std::vector<uint8_t> tcp4(uint16_t dport = 80, uint8_t flags = tcp_flags::syn, Ipv4Addr src = kS4)
{
    return B().ipv4({.src = src, .dst = kD4}).tcp({.sport = 40000, .dport = dport, .flags = flags}).build();
}

std::vector<uint8_t> udp4(uint16_t sport, uint16_t dport)
{
    return B().ipv4({.src = kS4, .dst = kD4}).udp(sport, dport).build();
}

std::vector<Case> cases()
{
    std::vector<Case> v;
    auto add = [&](std::string name, std::string policy, std::vector<uint8_t> frame, int hook, uint32_t ifindex,
                   bool drop, uint32_t rule_id, std::vector<uint32_t> counted = {}) {
        v.push_back({std::move(name), std::move(policy), std::move(frame), hook, ifindex, drop, rule_id,
                     std::move(counted)});
    };
    // priorities and overlaps
    add("priority_lower_first",
         "rule --id 1 --priority 20 --src 198.18.0.0/15 --action drop\n"
         "rule --id 2 --priority 10 --src 198.18.0.1/32 --action pass\n",
         tcp4(), XDPCTL_HOOK_XDP, 1, false, 2);
    add("priority_tie_by_id",
         "rule --id 5 --priority 10 --src 198.18.0.0/15 --action pass\n"
         "rule --id 3 --priority 10 --dst 198.19.0.0/16 --action drop\n",
         tcp4(), XDPCTL_HOOK_XDP, 1, true, 3);
    add("first_match_not_longest_prefix",
         "rule --id 1 --priority 1 --src 198.18.0.0/16 --action drop\n"
         "rule --id 2 --priority 2 --src 198.18.0.0/24 --action pass\n",
         tcp4(), XDPCTL_HOOK_XDP, 1, true, 1);
    add("overlap_later_rule_when_first_misses",
         "rule --id 1 --priority 1 --src 198.18.0.0/24 --proto udp --action drop\n"
         "rule --id 2 --priority 2 --src 198.18.0.0/16 --action pass\n"
         "default drop\n",
         tcp4(), XDPCTL_HOOK_XDP, 1, false, 2);
    // count rules
    add("count_then_drop",
         "rule --id 1 --priority 1 --proto tcp --action count\n"
         "rule --id 2 --priority 2 --proto tcp --dport 80 --action drop\n",
         tcp4(), XDPCTL_HOOK_XDP, 1, true, 2, {1});
    add("two_counts_then_pass",
         "default drop\n"
         "rule --id 7 --priority 1 --action count\n"
         "rule --id 8 --priority 2 --src 198.18.0.0/15 --action count\n"
         "rule --id 9 --priority 3 --dst 198.19.0.2 --action pass\n",
         tcp4(), XDPCTL_HOOK_XDP, 1, false, 9, {7, 8});
    add("count_then_default",
         "default drop\n"
         "rule --id 1 --action count\n"
         "rule --id 2 --proto udp --action pass\n",
         tcp4(), XDPCTL_HOOK_XDP, 1, true, 0, {1});
    add("rate_limit_within_rate_counts_and_goes_on",
         "rule --id 1 --priority 1 --action rate-limit 1000 --burst 1000\n"
         "rule --id 2 --priority 2 --action drop\n",
         tcp4(), XDPCTL_HOOK_XDP, 1, true, 2, {1});
    // the default
    add("default_drop", "default drop\nrule --id 1 --src 10.0.0.0/8 --action pass\n", tcp4(), XDPCTL_HOOK_XDP, 1,
         true, 0);
    add("default_pass", "rule --id 1 --src 10.0.0.0/8 --action drop\n", tcp4(), XDPCTL_HOOK_XDP, 1, false, 0);
    add("default_drop_no_rules", "default drop\n", tcp4(), XDPCTL_HOOK_XDP, 1, true, 0);
    // ports, protocols, flags
    add("dport_range_inside", "rule --id 1 --proto udp --dport 1000-2000 --action drop\n", udp4(5, 1500),
         XDPCTL_HOOK_XDP, 1, true, 1);
    add("dport_range_edge", "rule --id 1 --proto udp --dport 1000-2000 --action drop\n", udp4(5, 2000),
         XDPCTL_HOOK_XDP, 1, true, 1);
    add("dport_range_outside", "rule --id 1 --proto udp --dport 1000-2000 --action drop\n", udp4(5, 2001),
         XDPCTL_HOOK_XDP, 1, false, 0);
    add("sport", "rule --id 1 --proto udp --sport 53 --action drop\n", udp4(53, 999), XDPCTL_HOOK_XDP, 1, true, 1);
    add("proto_mismatch", "rule --id 1 --proto udp --action drop\n", tcp4(), XDPCTL_HOOK_XDP, 1, false, 0);
    add("tcp_flags_syn_not_ack", "rule --id 1 --proto tcp --tcp-flags syn,!ack --action drop\n", tcp4(80),
         XDPCTL_HOOK_XDP, 1, true, 1);
    add("tcp_flags_synack", "rule --id 1 --proto tcp --tcp-flags syn,!ack --action drop\n",
         tcp4(80, tcp_flags::syn | tcp_flags::ack), XDPCTL_HOOK_XDP, 1, false, 0);
    add("icmp", "rule --id 1 --proto icmp --action drop\n", B().ipv4().icmp_echo().build(), XDPCTL_HOOK_XDP, 1,
         true, 1);
    add("icmpv6", "rule --id 1 --proto icmpv6 --action drop\n", B().ipv6().icmpv6_echo().build(), XDPCTL_HOOK_XDP,
         1, true, 1);
    add("icmp_has_no_ports", "rule --id 1 --proto udp --dport 0-65534 --action drop\n"
                              "rule --id 2 --proto icmp --action count\n",
         B().ipv4().icmp_echo().build(), XDPCTL_HOOK_XDP, 1, false, 0, {2});
    add("other_protocol_number", "rule --id 1 --proto 47 --action drop\n",
         B().ipv4({.protocol = uint8_t(47)}).payload(20).build(), XDPCTL_HOOK_XDP, 1, true, 1);
    // addresses and sets
    add("dst_prefix", "rule --id 1 --dst 198.19.0.0/24 --action drop\n", tcp4(), XDPCTL_HOOK_XDP, 1, true, 1);
    add("src_and_dst_both_needed", "rule --id 1 --src 198.18.0.0/24 --dst 198.19.1.0/24 --action drop\n", tcp4(),
         XDPCTL_HOOK_XDP, 1, false, 0);
    add("set_member", "set s1 198.18.0.0/15 !198.18.5.0/24\nrule --id 1 --src @s1 --action drop\n",
         tcp4(80, tcp_flags::syn, {198, 18, 6, 1}), XDPCTL_HOOK_XDP, 1, true, 1);
    add("set_exception", "set s1 198.18.0.0/15 !198.18.5.0/24\nrule --id 1 --src @s1 --action drop\n",
         tcp4(80, tcp_flags::syn, {198, 18, 5, 1}), XDPCTL_HOOK_XDP, 1, false, 0);
    add("set_inside_exception", "set s1 198.18.0.0/15 !198.18.5.0/24 198.18.5.128/25\n"
                                 "rule --id 1 --src @s1 --action drop\n",
         tcp4(80, tcp_flags::syn, {198, 18, 5, 200}), XDPCTL_HOOK_XDP, 1, true, 1);
    add("ipv6_prefix_and_port", "rule --id 1 --src 2001:2::/48 --proto tcp --dport 443 --action drop\n",
         B().ipv6({.src = kS6, .dst = kD6}).tcp({.dport = 443}).build(), XDPCTL_HOOK_XDP, 1, true, 1);
    add("ipv6_other_port", "rule --id 1 --src 2001:2::/48 --proto tcp --dport 443 --action drop\n",
         B().ipv6({.src = kS6, .dst = kD6}).tcp({.dport = 80}).build(), XDPCTL_HOOK_XDP, 1, false, 0);
    add("ipv6_host_route", "rule --id 1 --priority 1 --dst 2001:2::2/128 --action drop\n"
                            "rule --id 2 --priority 2 --dst 2001:2::/48 --action pass\n",
         B().ipv6({.src = kS6, .dst = kD6}).udp().build(), XDPCTL_HOOK_XDP, 1, true, 1);
    add("family_mismatch", "rule --id 1 --src 198.18.0.0/15 --action drop\n", B().ipv6().udp().build(),
         XDPCTL_HOOK_XDP, 1, false, 0);
    add("zero_prefix_is_ipv4_only", "rule --id 1 --src 0.0.0.0/0 --action drop\n", B().ipv6().udp().build(),
         XDPCTL_HOOK_XDP, 1, false, 0);
    // non-IP
    add("arp_matches_a_rule_without_fields", "rule --id 1 --action drop\n", B().arp_request().build(),
         XDPCTL_HOOK_XDP, 1, true, 1);
    add("arp_misses_an_address_rule", "rule --id 1 --src 0.0.0.0/0 --action drop\n", B().arp_request().build(),
         XDPCTL_HOOK_XDP, 1, false, 0);
    add("arp_misses_a_proto_rule", "rule --id 1 --proto tcp --action drop\n", B().arp_request().build(),
         XDPCTL_HOOK_XDP, 1, false, 0);
    // VLANs
    add("vlan_match", "rule --id 1 --vlan 10 --action drop\n", B().vlan(10).ipv4().udp().build(), XDPCTL_HOOK_XDP,
         1, true, 1);
    add("vlan_other", "rule --id 1 --vlan 10 --action drop\n", B().vlan(11).ipv4().udp().build(), XDPCTL_HOOK_XDP,
         1, false, 0);
    add("vlan_untagged", "rule --id 1 --vlan 10 --action drop\n", B().ipv4().udp().build(), XDPCTL_HOOK_XDP, 1,
         false, 0);
    add("vlan_outer_tag_of_qinq", "rule --id 1 --vlan 10 --action drop\n", B().qinq(10, 20).ipv4().udp().build(),
         XDPCTL_HOOK_XDP, 1, true, 1);
    add("vlan_inner_tag_is_not_matched", "rule --id 1 --vlan 20 --action drop\n",
         B().qinq(10, 20).ipv4().udp().build(), XDPCTL_HOOK_XDP, 1, false, 0);
    add("vlan_on_tc", "rule --id 1 --vlan 10 --action drop\n", B().vlan(10).ipv6().udp().build(),
         XDPCTL_HOOK_TC_INGRESS, 1, true, 1);
    // fragments
    add("fragment_rule_later_fragment", "rule --id 1 --fragment --action drop\n",
         B().ipv4({.frag_offset = 10}).udp().build(), XDPCTL_HOOK_XDP, 1, true, 1);
    add("fragment_rule_first_fragment", "rule --id 1 --fragment --action drop\n",
         B().ipv4({.more_fragments = true}).udp().build(), XDPCTL_HOOK_XDP, 1, false, 0);
    add("port_rule_misses_later_fragment", "rule --id 1 --proto udp --dport 53 --action drop\n",
         B().ipv4({.frag_offset = 10}).udp(40000, 53).build(), XDPCTL_HOOK_XDP, 1, false, 0);
    add("port_rule_matches_first_fragment", "rule --id 1 --proto udp --dport 53 --action drop\n",
         B().ipv4({.more_fragments = true}).udp(40000, 53).build(), XDPCTL_HOOK_XDP, 1, true, 1);
    add("proto_rule_matches_later_fragment", "rule --id 1 --proto udp --action drop\n",
         B().ipv4({.frag_offset = 10}).udp().build(), XDPCTL_HOOK_XDP, 1, true, 1);
    add("flags_rule_misses_later_fragment", "rule --id 1 --proto tcp --tcp-flags !syn --action drop\n",
         B().ipv4({.frag_offset = 10}).tcp({.flags = tcp_flags::ack}).build(), XDPCTL_HOOK_XDP, 1, false, 0);
    add("ipv6_later_fragment", "rule --id 1 --src 2001:2::/48 --fragment --action drop\n",
         B().ipv6().ext_fragment(20, false).udp().build(), XDPCTL_HOOK_XDP, 1, true, 1);
    add("ipv6_first_fragment_has_ports", "rule --id 1 --proto udp --dport 53 --action drop\n",
         B().ipv6().ext_fragment(0, true).udp(40000, 53).build(), XDPCTL_HOOK_XDP, 1, true, 1);
    // interfaces and hooks
    add("iif_match", "rule --id 1 --iif lo --action drop\n", tcp4(), XDPCTL_HOOK_XDP, 1, true, 1);
    add("iif_other", "rule --id 1 --iif lo --action drop\n", tcp4(), XDPCTL_HOOK_XDP, kGenIf1Index, false, 0);
    add("iif_on_tc_ingress", "rule --id 1 --iif if2 --action drop\n", tcp4(), XDPCTL_HOOK_TC_INGRESS, kGenIf2Index,
         true, 1);
    add("iif_on_egress_is_the_egress_device", "rule --id 1 --dir egress --iif if1 --action drop\n", tcp4(),
         XDPCTL_HOOK_TC_EGRESS, kGenIf1Index, true, 1);
    add("iif_unknown_matches_nothing", "rule --id 1 --iif ifgone --action drop\n", tcp4(), XDPCTL_HOOK_XDP, 1,
         false, 0);
    add("egress_rule_on_egress", "rule --id 1 --dir egress --action drop\n", tcp4(), XDPCTL_HOOK_TC_EGRESS, 1, true,
         1);
    add("egress_rule_not_on_xdp", "rule --id 1 --dir egress --action drop\n", tcp4(), XDPCTL_HOOK_XDP, 1, false,
         0);
    add("egress_rule_not_on_tc_ingress", "rule --id 1 --dir egress --action drop\n", tcp4(),
         XDPCTL_HOOK_TC_INGRESS, 1, false, 0);
    add("ingress_rule_not_on_egress", "rule --id 1 --action drop\n", tcp4(), XDPCTL_HOOK_TC_EGRESS, 1, false, 0);
    add("directions_apart",
         "rule --id 1 --priority 1 --dir egress --proto tcp --action pass\n"
         "rule --id 2 --priority 2 --dir ingress --proto tcp --action drop\n"
         "rule --id 3 --priority 3 --dir egress --action drop\n",
         tcp4(), XDPCTL_HOOK_TC_EGRESS, 1, false, 1);
    add("egress_default_applies", "default drop\nrule --id 1 --action pass\n", tcp4(), XDPCTL_HOOK_TC_EGRESS, 1,
         true, 0);
    // malformed frames are not classified
    add("malformed_not_classified", "default drop\nrule --id 1 --action drop\n",
         B().ipv4().udp().ihl(4).build(), XDPCTL_HOOK_XDP, 1, false, 0);
    return v;
}

class ClassifyTable : public ClassifyBpf, public ::testing::WithParamInterface<Case> {};

TEST_P(ClassifyTable, VerdictAndCounters)
{
    XDPCTL_REQUIRE_ROOT();
    const Case& c = GetParam();
    const Policy p = parse_policy_text(c.policy, c.name);
    const auto slots = slots_by_id(p, 1);  // slot 0 stays unused: a zeroed record counts there
    const uint32_t n = uint32_t(slots.size()) + 1;
    for (uint32_t s = 0; s < n; s++)
        progs_->maps().reset_rule_counters(s);
    progs_->maps().commit(compile_policy(p, table_ifindex), slots);

    const HookCounters before = read_hook_counters(progs_->stats_fd(c.hook), c.hook);
    const RunResult r = progs_->run(c.hook, c.frame, c.ifindex);
    const HookCounters after = read_hook_counters(progs_->stats_fd(c.hook), c.hook);
    ASSERT_EQ(r.err, 0);
    EXPECT_EQ(r.retval, verdict_retval(c.hook, c.drop ? test::Verdict::drop : test::Verdict::pass));
    const int verdict = c.drop ? XDPCTL_CNT_VERDICT_DROP : XDPCTL_CNT_VERDICT_PASS;
    EXPECT_EQ(after[verdict].packets - before[verdict].packets, 1u) << "the hook's verdict counter";

    const std::vector<xdpctl_rule_ctr> ctr = read_rule_counters(progs_->rule_counters_fd(), n);
    std::vector<uint64_t> expect(n, 0);
    if (c.rule_id)
        expect[slots.at(c.rule_id)] = 1;
    for (uint32_t id : c.counted)
        expect[slots.at(id)] = 1;
    for (const auto& [id, slot] : slots) {
        EXPECT_EQ(ctr[slot].packets, expect[slot]) << "rule " << id;
        EXPECT_EQ(ctr[slot].bytes, expect[slot] * c.frame.size()) << "rule " << id;
        if (expect[slot]) {
            EXPECT_NE(ctr[slot].last_hit_ns, 0u) << "rule " << id;
        }
    }
    EXPECT_EQ(ctr[0].packets, 0u) << "a rank without a rule record was visited";
}

INSTANTIATE_TEST_SUITE_P(Cases, ClassifyTable, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

// ---- no policy ----------------------------------------------------------------------------

TEST(ClassifyNoPolicy, PassesWithoutTouchingRuleCounters)
{
    XDPCTL_REQUIRE_ROOT();
    PolicyPrograms fresh;  // maps of its own: nothing ever committed
    EXPECT_FALSE(fresh.maps().installed());
    for (int hook : {XDPCTL_HOOK_XDP, XDPCTL_HOOK_TC_INGRESS, XDPCTL_HOOK_TC_EGRESS}) {
        const RunResult r = fresh.run(hook, tcp4());
        ASSERT_EQ(r.err, 0);
        EXPECT_EQ(r.retval, verdict_retval(hook, test::Verdict::pass));
    }
    for (const auto& c : read_rule_counters(fresh.rule_counters_fd(), 64))
        EXPECT_EQ(c.packets, 0u);
}

// ---- the walk's bound ----------------------------------------------------------------------

// XDPCTL_POL_MAX_COUNTED: a packet is classified exactly while at most 64 count (or
// conforming rate-limit) rules match it before its deciding rule; past the walk's steps the
// default applies. 64 count rules then a drop: exact. 400 count rules then a drop: the
// default (pass), with the first count rules counted in order and the drop rule not at all.
TEST_F(ClassifyBpf, CountRulesWithinAndPastTheWalkBound)
{
    XDPCTL_REQUIRE_ROOT();
    for (uint32_t counts : {64u, 400u}) {
        std::string text;
        for (uint32_t i = 1; i <= counts; i++)
            text += fmt::format("rule --id {} --priority {} --proto tcp --action count\n", i, i);
        text += fmt::format("rule --id {} --priority {} --action drop\n", counts + 1, counts + 1);
        const Policy p = parse_policy_text(text, "counts");
        const auto slots = slots_by_id(p);  // id i -> slot i - 1
        for (uint32_t s = 0; s <= counts; s++)
            progs_->maps().reset_rule_counters(s);
        progs_->maps().commit(compile_policy(p, table_ifindex), slots);
        const RunResult r = progs_->run(XDPCTL_HOOK_XDP, tcp4());
        ASSERT_EQ(r.err, 0);
        const auto ctr = read_rule_counters(progs_->rule_counters_fd(), counts + 1);
        uint32_t counted = 0;
        while (counted < counts && ctr[counted].packets == 1)
            counted++;
        for (uint32_t s = counted; s < counts; s++)
            EXPECT_EQ(ctr[s].packets, 0u) << "count rules are visited in order; rule " << s + 1;
        if (counts <= XDPCTL_POL_MAX_COUNTED) {
            EXPECT_EQ(counted, counts);
            EXPECT_EQ(r.retval, uint32_t(XDP_DROP));
            EXPECT_EQ(ctr[counts].packets, 1u);
        } else {
            EXPECT_GE(counted, uint32_t(XDPCTL_POL_MAX_COUNTED));
            EXPECT_LT(counted, counts);
            EXPECT_EQ(r.retval, uint32_t(XDP_PASS)) << "past the bound the default applies";
            EXPECT_EQ(ctr[counts].packets, 0u);
            std::printf("%u of %u matching count rules counted before the walk stopped\n", counted, counts);
        }
    }
}

// ---- rate limits ----------------------------------------------------------------------------

// Commits a policy of one rate-limit rule (id 1, `match` its fields) after an empty one, so
// the rule is new to the active generation: a full bucket, empty purses, counters at zero.
// Returns the rule's counter slot.
uint32_t commit_fresh_rate_rule(PolicyPrograms& progs, const std::string& match, uint64_t rate, uint64_t burst)
{
    const Policy p = parse_policy_text(
        fmt::format("rule --id 1 {} --action rate-limit {} --burst {}\n", match, rate, burst), "rate");
    const auto slots = slots_by_id(p);
    progs.maps().commit(compile_policy(Policy{}, table_ifindex), {});
    progs.maps().reset_rule_counters(slots.at(1));
    progs.maps().commit(compile_policy(p, table_ifindex), slots);
    return slots.at(1);
}

// Runs `body(cpu)` in a thread pinned to CPU 0 and one pinned to CPU 1, at once. Returns the
// seconds from the first start to the last end (the window tokens could be taken in), or -1
// when a thread could not be pinned.
double run_on_two_cpus(const std::function<void(int)>& body)
{
    uint64_t start[2] = {}, end[2] = {};
    std::atomic<int> unpinned{0};
    std::vector<std::thread> threads;
    for (int cpu = 0; cpu < 2; cpu++)
        threads.emplace_back([&, cpu] {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            if (sched_setaffinity(0, sizeof(set), &set) != 0)
                unpinned++;
            start[cpu] = mono_ns();
            body(cpu);
            end[cpu] = mono_ns();
        });
    for (auto& t : threads)
        t.join();
    return unpinned ? -1 : double(std::max(end[0], end[1]) - std::min(start[0], start[1])) / 1e9;
}

// A token bucket of depth B refilled at R per second, full when the run starts, under an
// offered load far above R: it passes B + R * t packets in t seconds. The bounds allow a
// token or two for the refill quantum and for CPUs that take the last token together.
TEST_F(ClassifyBpf, RateLimitOneCpu)
{
    XDPCTL_REQUIRE_ROOT();
    constexpr uint64_t kRate = 1000, kBurst = 200;  // B/R = 200 ms: a stall shorter loses nothing
    const uint32_t slot = commit_fresh_rate_rule(*progs_, "--src 198.18.0.0/15", kRate, kBurst);
    const auto frame = tcp4();
    constexpr int kPackets = 200000;
    int passed = 0;
    const uint64_t t0 = mono_ns();
    for (int i = 0; i < kPackets; i++) {
        const RunResult r = progs_->run(XDPCTL_HOOK_XDP, frame);
        ASSERT_EQ(r.err, 0);
        passed += r.retval == XDP_PASS;
    }
    const double secs = double(mono_ns() - t0) / 1e9;
    const double expect = double(kBurst) + double(kRate) * secs;
    std::printf("%d of %d packets passed in %.3f s (%.0f pps offered); the bucket allows %.1f\n", passed, kPackets,
                secs, kPackets / secs, expect);
    EXPECT_LE(passed, expect + 2);
    EXPECT_GE(passed, expect * 0.98 - 2);
    // Every packet hit the rule: as a counted conforming packet or as its drop.
    EXPECT_EQ(read_rule_counters(progs_->rule_counters_fd(), slot + 1)[slot].packets, uint64_t(kPackets));
}

// Two CPUs share one bucket: the pass counts of both together obey the same math.
TEST_F(ClassifyBpf, RateLimitSharedByCpus)
{
    XDPCTL_REQUIRE_ROOT();
    if (possible_cpus() < 2)
        GTEST_SKIP() << "needs two CPUs";
    constexpr uint64_t kRate = 20000, kBurst = 4000;
    commit_fresh_rate_rule(*progs_, "", kRate, kBurst);
    const auto frame = tcp4();
    // TC, not XDP: an XDP test run with repeat > 1 switches the XDP dispatcher before and
    // after the loop, two grace periods in which no packet runs and tokens go unused.
    const int hook = XDPCTL_HOOK_TC_INGRESS;
    const HookCounters before = read_hook_counters(progs_->stats_fd(hook), hook);
    constexpr int kRepeat = 400000;
    std::atomic<int> errors{0};
    const double secs = run_on_two_cpus([&](int) {
        if (progs_->run(hook, frame, 1, kRepeat).err)
            errors++;
    });
    ASSERT_GT(secs, 0) << "cannot pin a thread to CPU 0 or 1";
    const HookCounters after = read_hook_counters(progs_->stats_fd(hook), hook);
    ASSERT_EQ(errors.load(), 0);
    const uint64_t passed = after[XDPCTL_CNT_VERDICT_PASS].packets - before[XDPCTL_CNT_VERDICT_PASS].packets;
    const uint64_t dropped = after[XDPCTL_CNT_VERDICT_DROP].packets - before[XDPCTL_CNT_VERDICT_DROP].packets;
    const double expect = double(kBurst) + double(kRate) * secs;
    std::printf("%lu passed, %lu dropped in %.3f s on 2 CPUs (%.1f Mpps offered); the bucket allows %.0f\n",
                (unsigned long)passed, (unsigned long)dropped, secs, double(passed + dropped) / secs / 1e6, expect);
    EXPECT_EQ(passed + dropped, 2u * kRepeat);
    EXPECT_LE(double(passed), expect + 2 * possible_cpus() + 2);
    // Stalls shorter than B/R (200 ms) lose no token: the bucket holds them until a CPU
    // runs again. The margin is for the instants between a syscall and the clock reads.
    EXPECT_GE(double(passed), expect * 0.95 - 2);
}

// Each CPU takes tokens from the shared bucket into a purse of its own, a batch at a time
// (burst / XDPCTL_RATE_PURSE_DIV), and spends them without touching the bucket. XDP test
// runs from a thread pinned to each of two CPUs, the purses empty at the start: every pass
// is a token that left the bucket (at most B + R * t), every token that left is passed or
// still in a purse (less than a batch each), and a CPU that finds the bucket dry waits at
// most a batch's time: so at least B + R * t less a batch per CPU and one in the bucket.
// Purses that made tokens, or did not go back to the bucket, fail one bound or the other.
TEST_F(ClassifyBpf, RateLimitPursesKeepTheRateOnTwoCpus)
{
    XDPCTL_REQUIRE_ROOT();
    if (possible_cpus() < 2)
        GTEST_SKIP() << "needs two CPUs";
    constexpr uint64_t kRate = 20000, kBurst = 6400;  // B/R = 320 ms: a stall shorter loses nothing
    constexpr uint64_t kBatch = kBurst / XDPCTL_RATE_PURSE_DIV;
    const uint32_t slot = commit_fresh_rate_rule(*progs_, "", kRate, kBurst);
    const auto frame = tcp4();
    constexpr int kPackets = 60000;  // from each CPU, one test run each
    std::atomic<int> errors{0};
    uint64_t passed[2] = {};
    const double secs = run_on_two_cpus([&](int cpu) {
        for (int i = 0; i < kPackets; i++) {
            const RunResult r = progs_->run(XDPCTL_HOOK_XDP, frame);
            errors += r.err != 0;
            passed[cpu] += r.retval == XDP_PASS;
        }
    });
    ASSERT_GT(secs, 0) << "cannot pin a thread to CPU 0 or 1";
    ASSERT_EQ(errors.load(), 0);
    const double expect = double(kBurst) + double(kRate) * secs;
    const uint64_t total = passed[0] + passed[1];
    std::vector<xdpctl_rate_purse> purse(possible_cpus());
    ASSERT_EQ(bpf_map_lookup_elem(progs_->map_fd("xdpctl_rpurse"), &slot, purse.data()), 0);
    std::printf("%lu + %lu passed in %.3f s from 2 CPUs (%.2f Mpps offered); the bucket allows %.0f; "
                "purses hold %lu and %lu\n",
                (unsigned long)passed[0], (unsigned long)passed[1], secs, 2 * kPackets / secs / 1e6, expect,
                (unsigned long)purse[0].tokens, (unsigned long)purse[1].tokens);
    EXPECT_LE(double(total), expect + 2 * possible_cpus() + 2);
    EXPECT_GE(double(total), expect * 0.95 - 3.0 * kBatch);
    // Both CPUs got tokens: neither kept the bucket to itself.
    EXPECT_GT(passed[0], 0u);
    EXPECT_GT(passed[1], 0u);
    // What a CPU keeps between packets: less than a batch (the bound docs/filtering.md gives).
    for (int cpu = 0; cpu < 2; cpu++)
        EXPECT_LT(purse[cpu].tokens, kBatch) << "CPU " << cpu;
    // Every packet met the rule: counted when it passed, the decider when it dropped.
    EXPECT_EQ(read_rule_counters(progs_->rule_counters_fd(), slot + 1)[slot].packets, uint64_t(2 * kPackets));
}

}  // namespace
