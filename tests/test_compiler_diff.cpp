// The policy compiler against the reference classifier: random policies (overlapping
// prefixes, set exceptions, port ranges, both families, VLANs, fragments, TCP flags,
// count rules) and random packets drawn to hit them; the compiled tables, walked the way
// the BPF classifier walks them, must give the same verdict, deciding rule and counted
// rules for every packet.
#include <algorithm>
#include <map>

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "policy/compiled_policy.h"
#include "policy/reference_classifier.h"
#include "policy/rule_parse.h"
#include "policy_gen.h"

using namespace xdpctl::policy;
using xdpctl::test::diff_seeds;
using xdpctl::test::Gen;
using xdpctl::test::gen_ifindex;

TEST(CompilerDifferential, RandomPoliciesAgreeWithReference)
{
    size_t packets = 0;
    for (uint64_t seed = 1; seed <= diff_seeds(40); seed++) {
        Gen g(seed);
        g.make_pools();
        Policy p = g.policy(int(5 + g.u(seed % 4 == 0 ? 300 : 60)), int(g.u(5)));
        CompiledPolicy c = compile_policy(p, gen_ifindex);
        for (int i = 0; i < 2500; i++, packets++) {
            uint32_t ifindex = 0;
            PacketKey k = g.packet(&ifindex);
            Verdict want = classify(p, k);
            Verdict got = classify_compiled(c, k, ifindex);
            ASSERT_EQ(got.rule_id, want.rule_id) << "seed " << seed << " packet " << i << "\n"
                                                 << format_policy(p);
            ASSERT_EQ(got.action, want.action) << "seed " << seed << " packet " << i;
            ASSERT_EQ(got.counted, want.counted) << "seed " << seed << " packet " << i;
        }
    }
    EXPECT_GE(packets, diff_seeds(40) * 2500);
}

// `packets` random packets of `g`: the compiled tables decide as the reference does.
// `sets`: the tables may be split by the policy's sets.
static void agree_with_reference(const Policy& p, const CompiledPolicy& c, Gen& g, uint64_t seed, int packets,
                                 bool sets = false)
{
    for (int i = 0; i < packets; i++) {
        uint32_t ifindex = 0;
        PacketKey k = g.packet(&ifindex);
        Verdict want = classify(p, k);
        Verdict got = classify_compiled(c, k, ifindex, sets ? &p.sets : nullptr);
        ASSERT_EQ(got.rule_id, want.rule_id) << "seed " << seed << " packet " << i;
        ASSERT_EQ(got.action, want.action) << "seed " << seed << " packet " << i;
        ASSERT_EQ(got.counted, want.counted) << "seed " << seed << " packet " << i;
    }
}

TEST(CompilerDifferential, LargePoliciesAgreeWithReference)
{
    // From 512 rules a direction the address fields compile in a thread of their own and
    // their rows are joined with the others': the same checks on policies that big.
    for (uint64_t seed = 100; seed < 100 + diff_seeds(3); seed++) {
        Gen g(seed);
        g.make_pools();
        Policy p = g.policy(int(1200 + g.u(800)), int(1 + g.u(4)));
        CompiledPolicy c = compile_policy(p, gen_ifindex);
        agree_with_reference(p, c, g, seed, 3000);
        if (HasFatalFailure())
            return;
    }
}

// The layout of `c`'s direction d as a generation holding it records it.
static ClassLayout layout_of(const CompiledPolicy& c, int d)
{
    return xdpctl::test::layout_of(c.dir[d]);
}

// `n` rules of the benchmark's kinds: a /32 and a port, a /16 with no port, a port range;
// priorities 0-999, so rules of one priority lie in id order.
static Policy benchmark_kinds(uint32_t n)
{
    Policy mix;
    for (uint32_t i = 0; i < n; i++) {
        Rule r;
        r.id = i + 1;
        r.priority = i % 1000;
        r.action.kind = i % 4 ? ActionKind::drop : ActionKind::pass;
        r.src.kind = AddrMatch::Kind::prefix;
        r.src.prefix = parse_prefix(fmt::format("10.{}.{}.{}/32", i % 251, i / 7 % 256, i % 256));
        r.proto = 6;
        r.dport = {uint16_t(1 + i * 13 % 65000), uint16_t(1 + i * 13 % 65000 + (i % 10 == 9 ? 500 : 0))};
        if (i % 10 == 8)
            r.src.prefix = parse_prefix(fmt::format("172.{}.0.0/16", 16 + i % 16)), r.dport = {};
        mix.rules.push_back(r);
    }
    return mix;
}

// align_classes() renumbers a policy's classes after those of the policy before a few
// changes (rules added and deleted, a set grown): it classifies as the reference does, and
// the classes whose row the earlier policy had keep that row's id, so most rows stay where
// they were.
TEST(CompilerDifferential, AlignedClassesAgreeWithReferenceAndKeepTheirIds)
{
    for (uint64_t seed = 500; seed < 500 + diff_seeds(30); seed++) {
        Gen g(seed);
        g.make_pools();
        Policy p = g.policy(int(60 + g.u(600)), int(g.u(3)));
        const CompiledPolicy before = compile_policy(p, gen_ifindex);
        const Policy more = g.policy(8, 0);
        for (int change = 0; change < 3; change++) {
            const uint64_t op = g.u(3);
            if (op == 0 && p.rules.size() > 1) {
                // The last in evaluation order, or (every third policy) any rule: the ranks
                // after it move, and so do the rows that hold them.
                const Rule* last = evaluation_order(p).back();
                const size_t at = seed % 3 ? size_t(last - p.rules.data()) : size_t(g.u(p.rules.size()));
                p.rules.erase(p.rules.begin() + ptrdiff_t(at));
            } else if (op == 1 && !p.sets.empty()) {
                PrefixSet& set = p.sets.begin()->second;
                const Prefix add = g.pick(Family::v4);
                if (std::none_of(set.entries.begin(), set.entries.end(), [&](const SetEntry& e) { return e.prefix == add; })) {
                    set.entries.push_back({add, false});
                    set.normalize();
                }
            } else {
                Rule r = more.rules[g.u(more.rules.size())];
                r.id = 100000 + uint32_t(change);
                r.priority = seed % 3 ? 100000 : uint32_t(g.u(2000));  // last, as `rule add` mostly adds
                p.rules.push_back(r);
            }
        }
        CompiledPolicy c = compile_policy(p, gen_ifindex);
        for (int d = 0; d < 2; d++) {
            const ClassLayout held = layout_of(before, d);
            align_classes(c.dir[d], held);
        }
        agree_with_reference(p, c, g, seed, 2000);
        if (HasFatalFailure())
            return;
    }
    // Rules of the benchmark's kinds (a /32 and a port, a prefix, a port range), with rules
    // added last as `rule add` adds them: aligned, nearly every row stays where it was
    // (unaligned, each new source prefix or port moved every row after its class).
    Policy mix = benchmark_kinds(3000);
    auto add = [&](uint32_t i) {
        Rule r;
        r.id = 10000 + i;
        r.src.kind = AddrMatch::Kind::prefix;
        r.src.prefix = parse_prefix(fmt::format("198.19.{}.0/24", i));
        r.proto = 17;
        r.dport = {uint16_t(53 + i), uint16_t(53 + i)};
        r.action.kind = ActionKind::drop;
        mix.rules.push_back(r);
    };
    const CompiledPolicy first = compile_policy(mix, gen_ifindex);
    add(0);
    // The first alignment after a field grows gives it room (every later field moves once).
    CompiledPolicy before = compile_policy(mix, gen_ifindex);
    const CompiledPolicy unaligned_before = before;
    align_classes(before.dir[0], layout_of(first, 0));
    add(1);
    add(2);
    for (const bool align : {true, false}) {
        CompiledPolicy c = compile_policy(mix, gen_ifindex);
        if (align)
            align_classes(c.dir[0], layout_of(before, 0));
        const std::vector<RowPrint> was = (align ? before : unaligned_before).dir[0].rows.prints();
        const std::vector<RowPrint> now = c.dir[0].rows.prints();
        size_t same = 0;
        for (size_t r = 0; r < std::min(was.size(), now.size()); r++)
            same += was[r] == now[r];
        if (align)
            EXPECT_GT(same, was.size() * 9 / 10) << same << " of " << was.size() << " rows in place";
        else
            EXPECT_LT(same, was.size() / 2) << same << " of " << was.size() << " rows in place unaligned";
    }
}

// A rule inserted among others (a priority in the middle) moves every later rank. Classes
// named by the ranks their rules had in the held policy, found by rule id, keep their ids:
// the source prefixes' classes, and so the address table, stay as they were. Named by ranks
// alone (no ids held), most are renamed.
TEST(CompilerDifferential, ARuleInsertedAmongOthersRenamesNoClass)
{
    Policy p = benchmark_kinds(3000);
    const CompiledPolicy before = compile_policy(p, gen_ifindex);
    Rule r;
    r.id = 5000;
    r.priority = 400;  // before ~60% of the rules
    r.src.kind = AddrMatch::Kind::prefix;
    r.src.prefix = parse_prefix("198.19.10.1/32");
    r.proto = 6;
    r.dport = {2000, 2000};
    r.action.kind = ActionKind::drop;
    p.rules.push_back(r);
    std::map<Prefix, uint32_t> was;
    for (const AddrClassTable::Entry& e : before.dir[0].src_v4.entries)
        was[e.prefix] = e.cls;
    for (const bool by_id : {true, false}) {
        CompiledPolicy c = compile_policy(p, gen_ifindex);
        ClassLayout held = layout_of(before, 0);
        if (!by_id)
            held.ids.clear();
        align_classes(c.dir[0], held);
        size_t same = 0, both = 0;
        for (const AddrClassTable::Entry& e : c.dir[0].src_v4.entries)
            if (auto it = was.find(e.prefix); it != was.end()) {
                both++;
                same += it->second == e.cls;
            }
        ASSERT_GT(both, 2600u);
        if (by_id)
            EXPECT_EQ(same, both) << "classes renamed by a rule inserted among others";
        else
            EXPECT_LT(same, both / 2) << same << " of " << both << " kept by ranks alone";
    }
    Gen g(77);
    g.make_pools();
    CompiledPolicy c = compile_policy(p, gen_ifindex);
    align_classes(c.dir[0], layout_of(before, 0));
    agree_with_reference(p, c, g, 77, 2000);
}

// A rule of the benchmark's commonest kind: a source /32, TCP and a destination port; drops.
static Rule host_port_rule(uint32_t id, uint32_t priority, const std::string& src, uint16_t port)
{
    Rule r;
    r.id = id;
    r.priority = priority;
    r.src.kind = AddrMatch::Kind::prefix;
    r.src.prefix = parse_prefix(src);
    r.proto = 6;
    r.dport = {port, port};
    r.action.kind = ActionKind::drop;
    return r;
}

// The ranks a compiled policy gives its rules, as PolicyMaps::active_ranks reads them back.
static void hints_of(const CompiledPolicy& c, RankHint (&out)[2])
{
    for (int d = 0; d < 2; d++) {
        out[d] = {};
        if (!c.dir[d].n_rules)
            continue;
        out[d].words = c.dir[d].words;
        for (const RuleRecord& r : c.dir[d].ranked)
            out[d].ids.push_back(r.id);
    }
}

// Commits one after another, each compiled with the ranks of the one before (rank_gaps.h):
// rules inserted at random priorities, deleted, appended. Each policy classifies as the
// reference does, and the rules the one before had keep their ranks but for a few moved to
// make room.
TEST(CompilerDifferential, RanksKeptFromTheCommitBeforeAgreeWithReference)
{
    size_t moved_total = 0, kept_total = 0;
    for (uint64_t seed = 700; seed < 700 + diff_seeds(20); seed++) {
        Gen g(seed);
        g.make_pools();
        Policy p = g.policy(int(30 + g.u(400)), int(g.u(3)));
        CompiledPolicy c = compile_policy(p, gen_ifindex);
        const Policy more = g.policy(40, 0);
        for (int step = 0; step < 6; step++) {
            RankHint hints[2];
            hints_of(c, hints);
            for (int change = 0; change < 1 + int(g.u(3)); change++) {
                if (g.u(3) == 0 && p.rules.size() > 1) {
                    p.rules.erase(p.rules.begin() + ptrdiff_t(g.u(p.rules.size())));
                } else {
                    Rule r = more.rules[g.u(more.rules.size())];
                    r.id = 200000 + uint32_t(step * 10 + change);
                    r.priority = uint32_t(g.u(2000));
                    p.rules.push_back(r);
                }
            }
            const CompiledPolicy was = c;
            c = compile_policy(p, gen_ifindex, {.rank_hints = hints});
            for (int d = 0; d < 2; d++) {
                const CompiledDirection& cd = c.dir[d];
                ASSERT_EQ(cd.ranked.size(), cd.n_rules);
                ASSERT_LE(cd.n_rules, uint64_t(cd.words) * 64);
                // Each rule at its rank; a free rank has no rule. (The order between rules
                // that may match one packet is the reference's agreement below.)
                std::vector<uint32_t> in_order;
                for (const Rule* r : evaluation_order(p))
                    if (r->dir == (d ? Direction::egress : Direction::ingress))
                        in_order.push_back(r->id);
                ASSERT_EQ(cd.rank_of.size(), in_order.size());
                uint32_t rules = 0;
                for (size_t i = 0; i < cd.rank_of.size(); i++)
                    ASSERT_EQ(cd.ranked.at(cd.rank_of[i]).id, in_order[i]) << "seed " << seed;
                for (const RuleRecord& r : cd.ranked)
                    rules += r.id != 0;
                ASSERT_EQ(rules, cd.rank_of.size());
                std::map<uint32_t, uint32_t> before;
                for (uint32_t r = 0; r < was.dir[d].ranked.size(); r++)
                    if (was.dir[d].ranked[r].id)
                        before[was.dir[d].ranked[r].id] = r;
                if (cd.words != was.dir[d].words)
                    continue;  // ranks given afresh (the room ran out)
                for (uint32_t r = 0; r < cd.ranked.size(); r++)
                    if (auto it = before.find(cd.ranked[r].id); cd.ranked[r].id && it != before.end()) {
                        kept_total += it->second == r;
                        moved_total += it->second != r;
                    }
            }
            agree_with_reference(p, c, g, seed, 600);
            if (HasFatalFailure())
                return;
        }
    }
    EXPECT_GT(kept_total, 20 * moved_total) << moved_total << " rules moved, " << kept_total << " kept";
}

// A rule inserted among 3,000 of the benchmark's kinds: compiled with the ranks in force, it
// takes a free rank (or moves a few rules), so aligned, nearly every row stays as it was;
// with ranks given afresh, every rank after it moves and so nearly every row changes.
TEST(CompilerDifferential, ARuleInsertedAmongOthersChangesFewRows)
{
    Policy p = benchmark_kinds(3000);
    CompiledPolicy before = compile_policy(p, gen_ifindex);
    align_classes(before.dir[0], ClassLayout{});  // as the first commit into a generation: room
    RankHint hints[2];
    hints_of(before, hints);
    const std::vector<RowPrint> was = before.dir[0].rows.prints();
    Gen g(78);
    g.make_pools();
    for (uint32_t i = 0; i < 12; i++) {
        Policy q = p;
        // Among the others, each time elsewhere.
        q.rules.push_back(host_port_rule(5000 + i, 37 + i * 83, fmt::format("198.19.10.{}/32", i + 1), 2000 + i));
        for (const bool kept : {true, false}) {
            CompiledPolicy c = compile_policy(q, gen_ifindex, {.rank_hints = kept ? hints : nullptr});
            align_classes(c.dir[0], layout_of(before, 0));
            const std::vector<RowPrint> now = c.dir[0].rows.prints();
            size_t same = 0;
            for (size_t row = 0; row < std::min(was.size(), now.size()); row++)
                same += was[row] == now[row];
            if (kept)
                EXPECT_GT(same, was.size() * 95 / 100) << "rule " << i << ": " << same << " of " << was.size()
                                                       << " rows as they were";
            else
                EXPECT_LT(same, was.size() / 2) << "rule " << i << ": " << same << " of " << was.size()
                                                << " rows as they were with ranks given afresh";
            if (kept && i % 4 == 0)
                agree_with_reference(q, c, g, 78 + i, 1500);
        }
    }
}

// With nothing to align to (the first commit into a generation), a large policy's fields
// get room for more classes, so that the next commit's new prefix and port fit and no later
// field's rows move; a small policy's classes stay as compiled.
TEST(CompilerDifferential, FieldsOfALargePolicyGetRoomWithNothingToAlignTo)
{
    Policy p = benchmark_kinds(3000);
    CompiledPolicy first = compile_policy(p, gen_ifindex);
    const uint32_t classes = first.dir[0].n_classes[kFieldSrc];
    align_classes(first.dir[0], ClassLayout{});
    EXPECT_GE(first.dir[0].n_classes[kFieldSrc], classes + classes / 64 + 16);
    RankHint hints[2];
    hints_of(first, hints);
    p.rules.push_back(host_port_rule(9000, 700, "198.19.20.1/32", 2500));
    CompiledPolicy next = compile_policy(p, gen_ifindex, {.rank_hints = hints});
    align_classes(next.dir[0], layout_of(first, 0));
    const std::vector<RowPrint> was = first.dir[0].rows.prints(), now = next.dir[0].rows.prints();
    ASSERT_EQ(was.size(), now.size()) << "the new classes took room, moving no field";
    size_t same = 0;
    for (size_t row = 0; row < was.size(); row++)
        same += was[row] == now[row];
    EXPECT_GT(same, was.size() * 99 / 100) << same << " of " << was.size();
    Gen g(79);
    g.make_pools();
    agree_with_reference(p, next, g, 79, 1500);

    Policy small = benchmark_kinds(300);
    CompiledPolicy c = compile_policy(small, gen_ifindex);
    const uint32_t before = c.dir[0].n_classes[kFieldSrc];
    align_classes(c.dir[0], ClassLayout{});
    EXPECT_EQ(c.dir[0].n_classes[kFieldSrc], before);
}

// A class made of new rules alone (a new /32 that no other rule prefix covers) has the key
// of the class with no rule of its own (the addresses no rule names): it is matched after
// the held classes, so it takes a free id and the addresses no rule names keep theirs. Before,
// the new /32 came first in the sweep and took that id, and the source table's every entry
// for those addresses changed: ~6.7-9.9 MiB of a 10 MiB table rewritten for one rule.
TEST(CompilerDifferential, AClassOfNewRulesAloneLeavesTheOthersTheirIds)
{
    Policy p = benchmark_kinds(3000);
    CompiledPolicy before = compile_policy(p, gen_ifindex);
    align_classes(before.dir[0], ClassLayout{});
    Gen g(80);
    g.make_pools();
    // Steps 0-2 add such a rule; 3 deletes a rule, whose class is gone (its id then holds
    // the field's base, as room does: a row the held layout marks unused, which the class of
    // no rule of its own must not take either); 4 adds one again.
    for (uint32_t step = 0; step < 5; step++) {
        RankHint hints[2];
        hints_of(before, hints);
        Policy q = p;
        if (step == 3)
            q.rules.erase(q.rules.begin() + 4);
        else
            q.rules.push_back(host_port_rule(9100 + step, 300 + 211 * step, fmt::format("198.19.{}.1/32", 30 + step), 2600));
        CompiledPolicy next = compile_policy(q, gen_ifindex, {.rank_hints = hints});
        align_classes(next.dir[0], layout_of(before, 0));
        const AddrClassTable& was = before.dir[0].src_v4;
        const AddrClassTable& now = next.dir[0].src_v4;
        EXPECT_EQ(now.default_class, was.default_class) << "step " << step;
        std::map<std::string, uint32_t> cls_was;
        for (const AddrClassTable::Entry& e : was.entries)
            cls_was[format_prefix(e.prefix)] = e.cls;
        size_t moved = 0;
        for (const AddrClassTable::Entry& e : now.entries)
            if (auto it = cls_was.find(format_prefix(e.prefix)); it != cls_was.end())
                moved += it->second != e.cls;
        EXPECT_EQ(moved, 0u) << "step " << step;
        if (step % 2 == 0)
            agree_with_reference(q, next, g, 80 + step, 1500);
        p = std::move(q);
        before = std::move(next);
    }
}

TEST(CompilerDifferential, ClassesStaySmallForManyHostRules)
{
    // 10,000 /32 rules with one port each: classes grow with the distinct rule sets a
    // field selects, here ~one per address, never with the product of fields.
    Policy p;
    for (uint32_t i = 0; i < 10000; i++) {
        Rule r;
        r.id = i + 1;
        r.src.kind = AddrMatch::Kind::prefix;
        r.src.prefix = parse_prefix(fmt::format("198.18.{}.{}/32", i / 256, i % 256));
        r.proto = 6;
        r.dport = {uint16_t(1000 + i % 100), uint16_t(1000 + i % 100)};
        r.action.kind = ActionKind::drop;
        p.rules.push_back(r);
    }
    CompiledPolicy c = compile_policy(p, gen_ifindex);
    const auto& d = c.dir[0];
    // 10,000 ranks and the free ones between them (rank_gaps.h), and room at the end.
    EXPECT_GE(d.words, 157u);
    EXPECT_LE(d.words, uint32_t(XDPCTL_POL_MAX_WORDS));
    EXPECT_EQ(d.agg_words, 3u);
    EXPECT_LE(d.n_classes[kFieldSrc], 10002u);
    EXPECT_LE(d.n_classes[kFieldDport], 102u);
    PacketKey k;
    k.family = Family::v4;
    k.src = parse_prefix("198.18.3.7/32").addr;
    k.proto = 6;
    k.has_ports = true;
    k.dport = uint16_t(1000 + (3 * 256 + 7) % 100);
    k.tcp_flags = 0x02;
    EXPECT_EQ(classify_compiled(c, k, 1).rule_id, 3u * 256 + 7 + 1);
}

// Address fields split by the sets they name (CompileOptions::max_split_sets): the rules'
// prefixes in the field's table, each set looked up on its own, the class from
// AddrClassTable::node_class. Random policies with 1-4 sets (a field decided by a set alone,
// a set beside rule prefixes, two or more sets in one field, sets in source and destination),
// sets changed between commits whose classes are aligned to the commit before: the same
// verdicts as the reference, and no set entry in any split table.
TEST(CompilerDifferential, FieldsSplitBySetsAgreeWithReference)
{
    // Shapes seen: [0] a field of sets only, [1] a set and rule prefixes, [2] two or more sets
    // in a field, [3] split source and destination in one direction.
    int shapes[4] = {};
    for (uint64_t seed = 700; seed < 700 + diff_seeds(60); seed++) {
        Gen g(seed);
        g.make_pools();
        Policy p = g.policy(int(4 + g.u(seed % 5 == 0 ? 300 : 40)), int(1 + g.u(4)));
        CompiledPolicy before = compile_policy(p, gen_ifindex, {.max_split_sets = kMaxSplitSets});
        agree_with_reference(p, before, g, seed, 1500, true);
        if (HasFatalFailure())
            return;
        for (int change = 0; change < 3; change++) {
            // A set add or del (member or exception) between commits, now and then a rule.
            PrefixSet& set = std::next(p.sets.begin(), ptrdiff_t(g.u(p.sets.size())))->second;
            if (g.coin(50) && set.entries.size() > 1) {
                set.entries.erase(set.entries.begin() + ptrdiff_t(g.u(set.entries.size())));
            } else {
                const Prefix add = g.pick(g.coin(60) ? Family::v4 : Family::v6);
                if (std::none_of(set.entries.begin(), set.entries.end(), [&](const SetEntry& e) { return e.prefix == add; })) {
                    set.entries.push_back({add, g.coin(25)});
                    set.normalize();
                }
            }
            if (g.coin(30)) {
                Rule r = g.policy(1, int(p.sets.size())).rules[0];
                r.id = 100000 + uint32_t(change);
                p.rules.push_back(r);
            }
            CompiledPolicy c = compile_policy(p, gen_ifindex, {.max_split_sets = kMaxSplitSets});
            for (int d = 0; d < 2; d++)
                align_classes(c.dir[d], layout_of(before, d));
            agree_with_reference(p, c, g, seed, 800, true);
            if (HasFatalFailure())
                return;
            before = std::move(c);
        }
        for (const CompiledDirection& d : before.dir) {
            for (auto [t, t6] : {std::pair{&d.src_v4, &d.src_v6}, std::pair{&d.dst_v4, &d.dst_v6}}) {
                if (!t->split())
                    continue;
                // Only the rules' own prefixes: a node each, IPv6's after IPv4's, and every
                // (node, mask) a class, in one array for both families.
                ASSERT_TRUE(t6->split());
                ASSERT_EQ(t->node_class, t6->node_class);
                const size_t n4 = t->entries.size(), n = n4 + t6->entries.size();
                ASSERT_EQ(t->node_class.size(), (n + 1) << t->sets.size());
                for (size_t i = 0; i < n4; i++)
                    ASSERT_EQ(t->entries[i].cls, i + 1);
                for (size_t i = 0; i < t6->entries.size(); i++)
                    ASSERT_EQ(t6->entries[i].cls, n4 + i + 1);
                shapes[0] += n == 0;
                shapes[1] += n > 0;
                shapes[2] += t->sets.size() >= 2;
            }
            shapes[3] += d.src_v4.split() && d.dst_v4.split();
        }
    }
    for (int s = 0; s < 4; s++)
        EXPECT_GT(shapes[s], 0) << "shape " << s << " never generated";
}

// A split field's table does not grow with its set: a rule naming a 100,000-prefix set and
// a rule prefix beside it compile into a table of one entry (the rule's prefix).
TEST(CompilerDifferential, SplitFieldTableHoldsTheRulesPrefixesOnly)
{
    Policy p;
    PrefixSet big;
    big.name = "big";
    for (uint32_t i = 0; i < 100000; i++)
        big.entries.push_back({parse_prefix(fmt::format("{}.{}.{}.0/24", 11 + i / 65536, i / 256 % 256, i % 256)), false});
    big.normalize();
    p.sets["big"] = big;
    Rule a;
    a.id = 1;
    a.src.kind = AddrMatch::Kind::set;
    a.src.set = "big";
    a.action.kind = ActionKind::drop;
    Rule b;
    b.id = 2;
    b.src.kind = AddrMatch::Kind::prefix;
    b.src.prefix = parse_prefix("11.0.0.0/8");
    b.action.kind = ActionKind::pass;
    p.rules = {a, b};
    const CompiledPolicy merged = compile_policy(p, gen_ifindex);
    const CompiledPolicy split = compile_policy(p, gen_ifindex, {.max_split_sets = 1});
    EXPECT_GE(merged.dir[0].src_v4.entries.size(), 100000u);
    ASSERT_TRUE(split.dir[0].src_v4.split());
    EXPECT_EQ(split.dir[0].src_v4.entries.size(), 1u);
    EXPECT_EQ(split.dir[0].src_v4.node_class.size(), 4u);
    for (const char* addr : {"11.0.5.1", "11.1.0.9", "12.0.0.1", "11.255.0.0"}) {
        PacketKey k;
        k.family = Family::v4;
        k.src = parse_prefix(fmt::format("{}/32", addr)).addr;
        const Verdict want = classify(p, k);
        EXPECT_EQ(classify_compiled(split, k, 1, &p.sets).rule_id, want.rule_id) << addr;
        EXPECT_EQ(classify_compiled(merged, k, 1).rule_id, want.rule_id) << addr;
    }
}
