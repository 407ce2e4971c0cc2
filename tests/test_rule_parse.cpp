// The policy model's text side: rule options, rule files, export round trips, and the
// reference classifier's matching rules. No kernel needed.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <tuple>

#include <arpa/inet.h>

#include "util/error.h"
#include "policy/reference_classifier.h"
#include "policy/rule_parse.h"

using namespace xdpctl;
using namespace xdpctl::policy;

namespace {

std::vector<std::string> words(const std::string& s)
{
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string w; in >> w;)
        out.push_back(w);
    return out;
}

// The usage error's message for a rule, or "" when it parses.
std::string rule_error(const std::string& s)
{
    try {
        parse_rule(words(s));
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ExitCode::usage);
        return e.what();
    }
    return "";
}

PacketKey v4_packet(const char* src, const char* dst, uint8_t proto, uint16_t sport, uint16_t dport)
{
    PacketKey k;
    k.family = Family::v4;
    inet_pton(AF_INET, src, k.src.data());
    inet_pton(AF_INET, dst, k.dst.data());
    k.proto = proto;
    k.has_ports = proto == 6 || proto == 17;
    k.sport = sport;
    k.dport = dport;
    if (proto == 6)
        k.tcp_flags = 0x02;
    return k;
}

}  // namespace

TEST(RuleParse, FullRuleRoundTrips)
{
    Rule r = parse_rule(words("--id 7 --priority 10 --src 198.18.0.0/15 --dst 198.19.1.0/24 "
                              "--proto tcp --sport 1024-65535 --dport 80 --vlan 10 --iif veth0 "
                              "--tcp-flags syn,!ack --action drop"));
    EXPECT_EQ(r.id, 7u);
    EXPECT_EQ(r.priority, 10u);
    EXPECT_EQ(r.src.prefix.len, 15);
    EXPECT_EQ(*r.proto, 6);
    EXPECT_EQ(r.sport.lo, 1024);
    EXPECT_EQ(r.dport.hi, 80);
    EXPECT_EQ(r.tcp_flags.mask, 0x12);
    EXPECT_EQ(r.tcp_flags.value, 0x02);
    EXPECT_EQ(parse_rule(words(format_rule(r))), r);
}

TEST(RuleParse, IifNamespaceAndPendingRoundTrip)
{
    Rule r = parse_rule(words("--iif veth0 --iif-netns blue --iif-pending --action drop"));
    EXPECT_EQ(r.iif, "veth0");
    EXPECT_EQ(r.iif_netns, "blue");
    EXPECT_TRUE(r.iif_pending);
    EXPECT_EQ(format_rule(r), "--priority 1000 --iif veth0 --iif-netns blue --iif-pending --action drop");
    EXPECT_EQ(parse_rule(words(format_rule(r))), r);
    // Both go with --iif; a namespace name must survive a rule file's words.
    EXPECT_NE(rule_error("--iif-pending --action drop").find("--iif"), std::string::npos);
    EXPECT_NE(rule_error("--iif-netns blue --action drop").find("--iif"), std::string::npos);
    EXPECT_NE(rule_error("--iif veth0 --iif-netns a/b --action drop").find("a/b"), std::string::npos);
    EXPECT_NE(rule_error("--iif veth0 --iif-netns a#b --action drop").find("a#b"), std::string::npos);
}

TEST(RuleParse, RateLimitTakesRateAndBurst)
{
    Rule r = parse_rule(words("--proto udp --action rate-limit 1000 --burst 50"));
    EXPECT_EQ(r.action.kind, ActionKind::rate_limit);
    EXPECT_EQ(r.action.rate_pps, 1000u);
    EXPECT_EQ(r.action.burst, 50u);
    EXPECT_EQ(parse_rule(words("--action rate-limit 300")).action.burst, 300u);
    EXPECT_EQ(parse_rule(words(format_rule(r))), r);
}

TEST(RuleParse, ErrorsNameTheToken)
{
    EXPECT_NE(rule_error("--src 198.18.0.300/24 --action drop").find("198.18.0.300/24"),
              std::string::npos);
    EXPECT_NE(rule_error("--src 198.18.0.1/24 --action drop").find("host bits"), std::string::npos);
    EXPECT_NE(rule_error("--src 198.18.0.0/33 --action drop").find("0-32"), std::string::npos);
    EXPECT_NE(rule_error("--proto tcp --dport 90-80 --action drop").find("reversed"),
              std::string::npos);
    EXPECT_NE(rule_error("--dport 80 --action drop").find("--proto tcp"), std::string::npos);
    EXPECT_NE(rule_error("--proto icmp --dport 80 --action drop").find("--proto tcp"),
              std::string::npos);
    EXPECT_NE(rule_error("--proto udp --tcp-flags syn --action drop").find("--tcp-flags"),
              std::string::npos);
    EXPECT_NE(rule_error("--proto tcp --tcp-flags syn,bogus --action drop").find("bogus"),
              std::string::npos);
    EXPECT_NE(rule_error("--src 198.18.0.0/15 --dst 2001:2::/48 --action drop").find("famil"),
              std::string::npos);
    EXPECT_NE(rule_error("--proto tcp --dport 80 --fragment --action drop").find("--fragment"),
              std::string::npos);
    EXPECT_NE(rule_error("--src 198.18.0.0/15").find("--action"), std::string::npos);
    EXPECT_NE(rule_error("--action explode").find("explode"), std::string::npos);
    EXPECT_NE(rule_error("--sprt 80 --action drop").find("--sprt"), std::string::npos);
    EXPECT_NE(rule_error("--vlan 4096 --action drop").find("4096"), std::string::npos);
    EXPECT_NE(rule_error("--action drop --action pass").find("twice"), std::string::npos);
    EXPECT_NE(rule_error("--action drop --burst 5").find("--burst"), std::string::npos);
    EXPECT_EQ(rule_error("--src 2001:2::/48 --proto icmpv6 --action pass"), "");
}

TEST(PolicyFile, BadLineAmongTenThousandNamesItsLine)
{
    std::string text = "default drop\nset blocked 198.18.0.0/16 !198.18.5.0/24\n";
    for (int i = 0; i < 10000; i++) {
        if (i == 6543)
            text += "rule --proto tcp --dport 80-70 --action drop\n";
        else
            text += fmt::format("rule --src 198.19.{}.{}/32 --proto udp --dport {} --action drop\n",
                                i / 256, i % 256, 1000 + i % 100);
    }
    try {
        parse_policy_text(text, "big.rules");
        FAIL() << "a reversed range was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ExitCode::usage);
        // line 1 is default, line 2 the set, so rule i is on line i + 3
        EXPECT_NE(std::string(e.what()).find("big.rules:6546:"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("80-70"), std::string::npos) << e.what();
    }
}

TEST(PolicyFile, ExportThenParseIsIdentity)
{
    Policy p = parse_policy_text("default drop\n"
                                 "set web 198.18.0.0/16 !198.18.5.0/24 2001:2::/48\n"
                                 "rule --id 3 --src @web --proto tcp --dport 443 --action pass\n"
                                 "rule --id 1 --priority 5 --proto icmp --action rate-limit 10\n"
                                 "rule --id 2 --dir egress --dst 198.19.0.0/16 --action count\n",
                                 "t");
    Policy q = parse_policy_text(format_policy(p), "export");
    EXPECT_EQ(p.sets, q.sets);
    EXPECT_EQ(p.default_action, q.default_action);
    ASSERT_EQ(p.rules.size(), q.rules.size());
    EXPECT_EQ(format_policy(p), format_policy(q));
}

TEST(PolicyFile, PolicyLevelErrors)
{
    auto err = [](const std::string& text) -> std::string {
        try {
            parse_policy_text(text, "f");
        } catch (const Error& e) {
            return e.what();
        }
        return "";
    };
    EXPECT_NE(err("rule --src @nosuch --action drop\n").find("nosuch"), std::string::npos);
    EXPECT_NE(err("rule --id 4 --action drop\nrule --id 4 --action pass\n").find("duplicate"),
              std::string::npos);
    EXPECT_NE(err("set s 198.18.0.0/16 !198.18.0.0/16\n").find("both"), std::string::npos);
    EXPECT_NE(err("frobnicate\n").find("f:1:"), std::string::npos);
    std::string many;
    for (int i = 0; i < 17; i++)
        many += fmt::format("set s{} 198.18.{}.0/24\n", i, i);
    EXPECT_NE(err(many).find("at most 16"), std::string::npos);
}

TEST(ReferenceClassifier, PriorityCountAndDefault)
{
    Policy p = parse_policy_text("default drop\n"
                                 "rule --id 1 --priority 1 --proto tcp --action count\n"
                                 "rule --id 2 --priority 2 --src 198.18.0.0/15 --proto tcp "
                                 "--dport 80 --action pass\n"
                                 "rule --id 3 --priority 2 --src 198.18.0.0/16 --action drop\n",
                                 "t");
    Verdict v = classify(p, v4_packet("198.18.1.1", "198.19.0.1", 6, 1234, 80));
    EXPECT_EQ(v.rule_id, 2u);  // same priority: lower id first
    EXPECT_EQ(v.action, ActionKind::pass);
    EXPECT_EQ(v.counted, std::vector<uint32_t>{1});
    v = classify(p, v4_packet("198.18.1.1", "198.19.0.1", 17, 1234, 80));
    EXPECT_EQ(v.rule_id, 3u);
    v = classify(p, v4_packet("198.19.1.1", "198.19.0.1", 17, 1234, 80));
    EXPECT_EQ(v.rule_id, 0u);
    EXPECT_EQ(v.action, ActionKind::drop);
}

TEST(ReferenceClassifier, SetExceptionsAndFragments)
{
    Policy p = parse_policy_text("set bad 198.18.0.0/16 !198.18.5.0/24 198.18.5.7/32\n"
                                 "rule --id 1 --src @bad --action drop\n"
                                 "rule --id 2 --proto udp --fragment --action drop\n"
                                 "rule --id 3 --proto udp --dport 53 --action drop\n",
                                 "t");
    EXPECT_EQ(classify(p, v4_packet("198.18.4.1", "198.19.0.1", 6, 1, 2)).rule_id, 1u);
    EXPECT_EQ(classify(p, v4_packet("198.18.5.1", "198.19.0.1", 6, 1, 2)).rule_id, 0u);
    EXPECT_EQ(classify(p, v4_packet("198.18.5.7", "198.19.0.1", 6, 1, 2)).rule_id, 1u);
    PacketKey frag = v4_packet("198.19.0.2", "198.19.0.1", 17, 0, 0);
    frag.has_ports = false;
    frag.later_fragment = true;
    EXPECT_EQ(classify(p, frag).rule_id, 2u);  // ports never match a later fragment
    EXPECT_EQ(classify(p, v4_packet("198.19.0.2", "198.19.0.1", 17, 9, 53)).rule_id, 3u);
}

namespace xdpctl::policy {
namespace {

// normalize() of a sorted set with entries appended (what `set add` makes), of an unsorted
// one, and of a sorted one: sorted by (prefix, except), duplicates gone, as a full sort does.
TEST(PrefixSetNormalize, MergesAppendedEntriesAsAFullSortDoes)
{
    std::mt19937_64 rng(3);
    auto entry = [&] {
        Prefix p;
        p.len = uint8_t(8 + rng() % 25);
        const uint32_t a = uint32_t(rng() % 64) << 24 & (~0u << (32 - p.len));
        p.addr = {uint8_t(a >> 24), uint8_t(a >> 16), uint8_t(a >> 8), uint8_t(a)};
        return SetEntry{p, rng() % 5 == 0};
    };
    for (size_t appended : {size_t(0), size_t(1), size_t(7), size_t(300)}) {
        PrefixSet s;
        for (int i = 0; i < 500; i++)
            s.entries.push_back(entry());
        s.normalize();
        for (size_t i = 0; i < appended; i++)
            s.entries.push_back(i % 3 ? entry() : s.entries[rng() % s.entries.size()]);  // some again
        std::vector<SetEntry> want = s.entries;
        std::sort(want.begin(), want.end(), [](const SetEntry& a, const SetEntry& b) {
            return std::tie(a.prefix, a.except) < std::tie(b.prefix, b.except);
        });
        want.erase(std::unique(want.begin(), want.end()), want.end());
        s.normalize();
        EXPECT_EQ(s.entries, want) << appended << " appended";
    }
}

}  // namespace
}  // namespace xdpctl::policy

// evaluation_order (a radix sort of the bytes that differ) against a stable sort by
// (priority, id): priorities and ids of every width, some pairs equal (kept in file order),
// rules in order already, and none.
TEST(EvaluationOrder, IsAStableSortByPriorityThenId)
{
    std::mt19937_64 rng(12);
    for (int round = 0; round < 300; round++) {
        Policy p;
        const size_t n = round % 50 == 0 ? 0 : rng() % 400 + 1;
        const uint32_t prio_span = uint32_t(1) << (rng() % 33 == 32 ? 31 : rng() % 32);
        const uint32_t id_span = uint32_t(1) << (rng() % 32);
        for (size_t i = 0; i < n; i++) {
            Rule r;
            r.priority = uint32_t(rng() % prio_span);
            r.id = uint32_t(rng() % id_span) + 1;
            if (i && rng() % 8 == 0) {  // the same (priority, id) as an earlier rule
                const Rule& e = p.rules[rng() % i];
                r.priority = e.priority;
                r.id = e.id;
            }
            r.log_rate = uint32_t(i);  // which rule it is
            p.rules.push_back(r);
        }
        if (round % 7 == 0)
            std::stable_sort(p.rules.begin(), p.rules.end(), [](const Rule& a, const Rule& b) {
                return std::tie(a.priority, a.id) < std::tie(b.priority, b.id);
            });
        std::vector<const Rule*> want;
        for (const Rule& r : p.rules)
            want.push_back(&r);
        std::stable_sort(want.begin(), want.end(), [](const Rule* a, const Rule* b) {
            return std::tie(a->priority, a->id) < std::tie(b->priority, b->id);
        });
        ASSERT_EQ(evaluation_order(p), want) << "round " << round;
    }
}
