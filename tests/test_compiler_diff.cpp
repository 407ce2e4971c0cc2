// The policy compiler against the reference classifier: random policies (overlapping
// prefixes, set exceptions, port ranges, both families, VLANs, fragments, TCP flags,
// count rules) and random packets drawn to hit them; the compiled tables, walked the way
// the BPF classifier walks them, must give the same verdict, deciding rule and counted
// rules for every packet.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "policy/compiled_policy.h"
#include "policy/reference_classifier.h"
#include "policy/rule_parse.h"
#include "policy_gen.h"

using namespace xdpctl::policy;
using xdpctl::test::Gen;
using xdpctl::test::gen_ifindex;

TEST(CompilerDifferential, RandomPoliciesAgreeWithReference)
{
    size_t packets = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
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
    EXPECT_GE(packets, 100000u);
}

TEST(CompilerDifferential, LargePoliciesAgreeWithReference)
{
    // From 512 rules a direction the address fields compile in a thread of their own and
    // their rows are joined with the others': the same checks on policies that big.
    for (uint64_t seed = 100; seed < 103; seed++) {
        Gen g(seed);
        g.make_pools();
        Policy p = g.policy(int(1200 + g.u(800)), int(1 + g.u(4)));
        CompiledPolicy c = compile_policy(p, gen_ifindex);
        for (int i = 0; i < 3000; i++) {
            uint32_t ifindex = 0;
            PacketKey k = g.packet(&ifindex);
            Verdict want = classify(p, k);
            Verdict got = classify_compiled(c, k, ifindex);
            ASSERT_EQ(got.rule_id, want.rule_id) << "seed " << seed << " packet " << i;
            ASSERT_EQ(got.action, want.action) << "seed " << seed << " packet " << i;
            ASSERT_EQ(got.counted, want.counted) << "seed " << seed << " packet " << i;
        }
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
    EXPECT_EQ(d.words, 157u);
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
