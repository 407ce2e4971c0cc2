// The attached programs follow the policy's shape (lib/attach/datapath_paths.h): a policy of one rule
// runs a program with only the small rules' path (xdpctl_sml_only on XDP), far smaller than
// the program with every path; commits that change the shape (small -> tables -> small -> one field) reload the
// programs on both hooks, and real packets through the lab's veth get the right verdicts and
// count into the same rules, exactly, across the reloads.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "abi/xdpctl_abi.h"
#include "netns_lab.h"
#include "attach/skeleton.h"
#include "xdpctl_xdp.skel.h"

namespace xdpctl::test {
namespace {

class DatapathPaths : public NoPolicyTest {
protected:
    static uint64_t rule_packets(uint32_t id)
    {
        const nlohmann::json all = xdpctl_json({"rule", "list", "--json"});
        for (const auto& r : all["rules"])
            if (r["id"] == id)
                return r["packets"].get<uint64_t>();
        ADD_FAILURE() << "no rule " << id;
        return 0;
    }
    // hook -> the program's status entry (sizes and paths, read from the kernel).
    static std::map<std::string, nlohmann::json> programs()
    {
        std::map<std::string, nlohmann::json> out;
        const nlohmann::json st = xdpctl_json({"status", "--json"});
        for (const auto& i : st["interfaces"])
            for (const auto& p : i["programs"])
                out[p["hook"].get<std::string>()] = p;
        return out;
    }
    // The programs' paths are what the policy in force needs, and no more: XDP's for the
    // ingress rules, the TC programs' (one object) for both directions.
    static void expect_paths(const std::vector<std::string>& xdp, const std::vector<std::string>& tc,
                             const std::string& when)
    {
        const auto progs = programs();
        EXPECT_EQ(progs.size(), 3u) << when;
        for (const auto& [hook, p] : progs)
            EXPECT_EQ(p["paths"].get<std::vector<std::string>>(), hook == "xdp" ? xdp : tc)
                << hook << " " << when << ": " << p.dump();
    }
    static void expect_paths(const std::vector<std::string>& all, const std::string& when)
    {
        expect_paths(all, all, when);
    }
};

// The XDP program as loaded with every path (the default of cfg_paths): its JIT size.
uint32_t all_paths_jited_bytes()
{
    SkelPtr<xdpctl_xdp> s{xdpctl_xdp::open()};
    if (!s || xdpctl_xdp::load(s.get()) != 0)
        throw std::runtime_error("cannot load xdpctl_xdp");
    EXPECT_EQ(s->rodata->cfg_paths, uint32_t(XDPCTL_PATHS_ALL));
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (bpf_prog_get_info_by_fd(bpf_program__fd(s->progs.xdpctl_xdp), &info, &len) != 0)
        throw std::runtime_error("cannot read the program's info");
    return info.jited_prog_len;
}

TEST_F(DatapathPaths, OneRuleMakesASmallProgram)
{
    NetnsLab lab;
    lab.load();
    xdpctl_ok({"rule", "add", "--proto", "udp", "--dport", "9", "--action", "drop"});
    const nlohmann::json xdp = programs()["xdp"];
    ASSERT_EQ(xdp["paths"].get<std::vector<std::string>>(), std::vector<std::string>{"small"}) << xdp.dump();
    const uint32_t one_rule = xdp["jited_bytes"].get<uint32_t>(), all = all_paths_jited_bytes();
    std::printf("XDP program JIT bytes: %u with one rule, %u with every path\n", one_rule, all);
    ASSERT_GT(one_rule, 0u) << "the JIT is off";
    EXPECT_LT(2 * one_rule, all);
    EXPECT_EQ(udp_through(lab, 9, 3), 0);  // and it does drop
}

TEST_F(DatapathPaths, ShapeChangesReloadAndKeepCountersExact)
{
    NetnsLab lab;
    lab.load({"--hook", "both"});
    expect_paths({}, "no policy");

    // small: one rule, the port the test sends to.
    xdpctl_ok({"rule", "add", "--id", "1", "--proto", "udp", "--dport", "9", "--action", "drop"});
    expect_paths({"small"}, "one rule");
    EXPECT_EQ(programs()["xdp"]["name"], "xdpctl_sml_only") << "the small path's own program";
    EXPECT_EQ(udp_through(lab, 9, 5), 0);
    EXPECT_EQ(rule_packets(1), 5u);
    EXPECT_EQ(udp_through(lab, 10, 3), 3);

    // tables: more rules than the small path takes; and one egress rule (small there).
    for (uint32_t i = 0; i < XDPCTL_POL_SMALL_MAX; i++)
        xdpctl_ok({"rule", "add", "--id", std::to_string(10 + i), "--proto", "tcp", "--dport",
                   std::to_string(100 + i), "--action", "drop"});
    xdpctl_ok({"rule", "add", "--id", "30", "--dir", "egress", "--proto", "tcp", "--dport", "200", "--action",
               "drop"});
    expect_paths({"tables", "rate"}, {"small", "tables", "rate"}, "nine ingress rules, one egress");
    EXPECT_EQ(programs()["xdp"]["name"], "xdpctl_xdp");
    EXPECT_EQ(udp_through(lab, 9, 5), 0);
    EXPECT_EQ(rule_packets(1), 10u) << "the rule counts on across the reload";
    EXPECT_EQ(udp_through(lab, 10, 3), 3);

    // small again.
    std::vector<std::string> del = {"rule", "del", "30"};
    for (uint32_t i = 0; i < XDPCTL_POL_SMALL_MAX; i++)
        del.push_back(std::to_string(10 + i));
    xdpctl_ok(del);
    expect_paths({"small"}, "one rule again");
    EXPECT_EQ(programs()["xdp"]["name"], "xdpctl_sml_only");
    EXPECT_EQ(udp_through(lab, 9, 5), 0);
    EXPECT_EQ(rule_packets(1), 15u);
    EXPECT_EQ(udp_through(lab, 10, 3), 3);

    // one field: every rule on the source alone, more than the small path takes.
    std::vector<std::string> lines = {"default pass", fmt::format("rule --id 40 --src {}/32 --action drop",
                                                                  lab.peer().ipv4)};
    for (uint32_t i = 0; i < XDPCTL_POL_SMALL_MAX; i++)
        lines.push_back(fmt::format("rule --id {} --src 198.18.200.{}/32 --action drop", 41 + i, i));
    std::string text;
    for (const auto& l : lines)
        text += l + "\n";
    xdpctl_ok({"apply", write_temp_file(text, "one-field")});
    expect_paths({"field"}, "one field");
    // XDP: the one-field path's own program, its common frame decided and counted from
    // registers (lib/bpf/policy_fast.h)
    EXPECT_EQ(programs()["xdp"]["name"], "xdpctl_fld_only");
    StatsSnapshot before = lab.stats();
    EXPECT_EQ(udp_through(lab, 10, 4), 0);
    EXPECT_EQ(rule_packets(40), 4u);
    CounterMap d = lab.wait_delta(before, [](const CounterMap& m) {
        auto it = m.find("xdp/verdict/drop");
        return it != m.end() && it->second.packets >= 4;
    });
    EXPECT_EQ(d["xdp/verdict/drop"].packets, 4u);
    EXPECT_EQ(d["xdp/l4/udp"].packets, 4u);
    EXPECT_EQ(d["xdp/l3/ipv4"].packets, 4u);

    // no rule: no path.
    xdpctl_clear_policy();
    expect_paths({}, "no rule");
    EXPECT_EQ(udp_through(lab, 9, 3), 3);
}

// No policy read at all unless the default of a direction without rules drops: with no
// policy (or one that passes everything) XDP runs the parse-and-count program, a policy of
// only `default drop` takes the default's path alone; the interface's counters count on,
// exactly, across both reloads.
TEST_F(DatapathPaths, NoRuleDefaultDropAndParseCount)
{
    NetnsLab lab;
    lab.load({"--hook", "both"});
    expect_paths({}, "no policy");
    EXPECT_EQ(programs()["xdp"]["name"], "xdpctl_cnt") << "no policy: the parse-and-count program";
    StatsSnapshot before = lab.stats();
    EXPECT_EQ(udp_through(lab, 9, 3), 3);
    CounterMap d = before.delta_to(lab.stats());
    EXPECT_EQ(d["xdp/l4/udp"].packets, 3u);
    EXPECT_EQ(d["xdp/verdict/drop"].packets, 0u);

    xdpctl_ok({"apply", write_temp_file("default drop\n", "default-drop")});
    expect_paths({"default"}, "default drop, no rule");
    EXPECT_EQ(programs()["xdp"]["name"], "xdpctl_xdp");
    before = lab.stats();
    EXPECT_EQ(udp_through(lab, 9, 3), 0);
    d = lab.wait_delta(before, [](const CounterMap& m) {
        auto it = m.find("xdp/l4/udp");
        return it != m.end() && it->second.packets >= 3;
    });
    EXPECT_EQ(d["xdp/l4/udp"].packets, 3u) << "counted on across the reload";
    EXPECT_GE(d["xdp/verdict/drop"].packets, 3u);

    xdpctl_ok({"apply", write_temp_file("default pass\n", "default-pass")});
    expect_paths({}, "default pass, no rule");
    EXPECT_EQ(programs()["xdp"]["name"], "xdpctl_cnt");
    before = lab.stats();
    EXPECT_EQ(udp_through(lab, 9, 3), 3);
    d = before.delta_to(lab.stats());
    EXPECT_EQ(d["xdp/l4/udp"].packets, 3u);
    EXPECT_EQ(d["xdp/verdict/drop"].packets, 0u);
}

// A VIP and no policy: the balancer's own program (xdpctl_lb_only, no filter's code); a policy
// beside it takes the program with every path, and its removal (then the VIP's) the smaller
// ones again, the interface's counters counting on across the reloads.
TEST_F(DatapathPaths, VipWithoutPolicyTakesTheBalancersProgram)
{
    NetnsLab lab;
    lab.load({"--hook", "xdp"});
    EXPECT_EQ(programs()["xdp"]["name"], "xdpctl_cnt");
    xdpctl_ok({"lb", "vip", "add", "198.19.0.1:80/tcp"});
    EXPECT_EQ(programs()["xdp"]["name"], "xdpctl_lb_only") << "a VIP, no policy";
    StatsSnapshot before = lab.stats();
    EXPECT_EQ(udp_through(lab, 9, 3), 3) << "not to the VIP: passed";
    EXPECT_EQ(before.delta_to(lab.stats())["xdp/l4/udp"].packets, 3u);

    xdpctl_ok({"rule", "add", "--id", "7", "--proto", "udp", "--dport", "9", "--action", "drop"});
    EXPECT_EQ(programs()["xdp"]["name"], "xdpctl_xdp") << "a VIP and a rule";
    EXPECT_EQ(udp_through(lab, 9, 3), 0);
    EXPECT_EQ(rule_packets(7), 3u);

    xdpctl_ok({"rule", "del", "7"});
    EXPECT_EQ(programs()["xdp"]["name"], "xdpctl_lb_only") << "the rule gone";
    before = lab.stats();
    EXPECT_EQ(udp_through(lab, 9, 3), 3);
    EXPECT_EQ(before.delta_to(lab.stats())["xdp/l4/udp"].packets, 3u);

    xdpctl_ok({"lb", "vip", "del", "198.19.0.1:80/tcp"});
    EXPECT_EQ(programs()["xdp"]["name"], "xdpctl_cnt") << "no VIP, no policy";
}

}  // namespace
}  // namespace xdpctl::test
