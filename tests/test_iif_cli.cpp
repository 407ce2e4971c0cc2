// --iif end to end: a name that does not exist is refused unless --iif-pending says it
// will appear; a pending name matches real packets once the interface exists and a commit
// (or a load) resolved it; a rule keeps the namespace it was added for (-n), through
// unrelated commits without -n and through export -> apply.
#include <net/if.h>

#include <memory>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "netns_lab.h"

namespace xdpctl::test {
namespace {

class IifCli : public NoPolicyTest {
protected:
    static nlohmann::json rule(uint32_t id)
    {
        const nlohmann::json all = xdpctl_json({"rule", "list", "--json"});
        for (const auto& r : all["rules"])
            if (r["id"] == id)
                return r;
        ADD_FAILURE() << "no rule " << id << " in " << all.dump();
        return {};
    }
};

// Renames the DUT's interface (down, rename, up: the kernel renames only a down device). The
// XDP program stays attached; the IPv4 address stays, so the DUT still receives.
void rename_dut(const NetnsLab& lab, const std::string& from, const std::string& to)
{
    run_ok({"ip", "-n", lab.dut().ns, "link", "set", "dev", from, "down"});
    run_ok({"ip", "-n", lab.dut().ns, "link", "set", "dev", from, "name", to});
    run_ok({"ip", "-n", lab.dut().ns, "link", "set", "dev", to, "up"});
}

TEST_F(IifCli, MissingInterfaceIsRefusedAndChangesNothing)
{
    NetnsLab lab;
    ASSERT_EQ(xdpctl({"rule", "add", "--id", "1", "--proto", "udp", "--action", "count"}).exit_code, 0);
    const std::string before = exported();
    const std::string missing_file = write_temp_file("rule --iif xdpctl-nosuch0 --action drop\n", "iif");
    struct Case {
        std::vector<std::string> args;
        std::string token;
    } cases[] = {
        {{"rule", "add", "--iif", "xdpctl-nosuch0", "--action", "drop"}, "'xdpctl-nosuch0'"},
        // The peer's interface exists, but not in the DUT's namespace the rule is for.
        {{"-n", lab.dut().ns, "rule", "add", "--iif", lab.peer().ifname, "--action", "drop"},
         fmt::format("'{}'", lab.peer().ifname)},
        {{"rule", "add", "--iif", "lo", "--iif-netns", "xdpctl-nosuchns", "--action", "drop"},
         "'xdpctl-nosuchns' not found"},
        {{"rule", "add", "--iif-pending", "--action", "drop"}, "--iif-pending"},
        {{"rule", "add", "--iif-netns", lab.dut().ns, "--action", "drop"}, "--iif-netns"},
        {{"apply", missing_file}, "'xdpctl-nosuch0'"},
        {{"apply", "--dry-run", missing_file}, "'xdpctl-nosuch0'"},
    };
    for (const auto& c : cases) {
        CmdResult r = xdpctl(c.args);
        EXPECT_EQ(r.exit_code, 2) << r;
        EXPECT_NE(r.err.find(c.token), std::string::npos) << r;
        EXPECT_EQ(exported(), before) << r;
    }
    // In the namespace it is for, the same name is fine.
    CmdResult ok = xdpctl({"-n", lab.peer().ns, "rule", "add", "--iif", lab.peer().ifname, "--action", "drop"});
    EXPECT_EQ(ok.exit_code, 0) << ok;
}

TEST_F(IifCli, PendingNameMatchesOnceTheInterfaceExists)
{
    NetnsLab lab;
    lab.load();
    const std::string dev = lab.dut().ifname, away = "xdpctl-away0";
    rename_dut(lab, dev, away);
    CmdResult add = xdpctl({"-n", lab.dut().ns, "rule", "add", "--id", "1", "--iif", dev, "--iif-pending",
                            "--proto", "udp", "--dport", "9", "--action", "drop"});
    ASSERT_EQ(add.exit_code, 0) << add;
    nlohmann::json r = rule(1);
    EXPECT_EQ(r["iif_state"], "pending") << r;
    EXPECT_EQ(r["match"]["iif_pending"], true) << r;
    CmdResult text = xdpctl({"rule", "list"});
    EXPECT_NE(text.out.find(fmt::format("iif {} netns {} (pending)", dev, lab.dut().ns)), std::string::npos)
        << text;
    EXPECT_NE(exported().find("--iif-pending"), std::string::npos);
    EXPECT_EQ(udp_through(lab, 9, 5), 5);  // nothing of that name yet: no match

    // The interface appears; the next commit (an unrelated one, without -n) resolves it.
    rename_dut(lab, away, dev);
    ASSERT_EQ(xdpctl({"policy", "default", "pass"}).exit_code, 0);
    r = rule(1);
    EXPECT_EQ(r["iif_state"], "resolved") << r;
    EXPECT_EQ(udp_through(lab, 9, 5), 0);
    EXPECT_EQ(rule(1)["packets"], 5u);

    // It goes again: a commit leaves it pending (no match, no error); loading xdpctl on the
    // interface that comes back resolves it without any other commit.
    rename_dut(lab, dev, away);
    ASSERT_EQ(xdpctl({"policy", "default", "pass"}).exit_code, 0);
    EXPECT_EQ(rule(1)["iif_state"], "pending");
    rename_dut(lab, away, dev);
    lab.load({"--force"});
    EXPECT_EQ(rule(1)["iif_state"], "resolved");
    EXPECT_EQ(udp_through(lab, 9, 3), 0);
    EXPECT_EQ(rule(1)["packets"], 8u);
}

TEST_F(IifCli, RuleKeepsItsNamespaceThroughOtherCommitsAndExport)
{
    NetnsLab lab;
    lab.load();
    // The DUT's interface name does not exist in the namespace xdpctl runs in.
    CmdResult add = xdpctl({"-n", lab.dut().ns, "rule", "add", "--id", "1", "--iif", lab.dut().ifname,
                            "--proto", "udp", "--dport", "9", "--action", "drop"});
    ASSERT_EQ(add.exit_code, 0) << add;
    EXPECT_EQ(udp_through(lab, 9, 5), 0);
    nlohmann::json r = rule(1);
    EXPECT_EQ(r["match"]["iif_netns"], lab.dut().ns) << r;
    EXPECT_EQ(r["iif_state"], "resolved") << r;

    // Unrelated commits without -n resolve the name in the rule's namespace, not theirs.
    ASSERT_EQ(xdpctl({"policy", "default", "pass"}).exit_code, 0);
    EXPECT_EQ(udp_through(lab, 9, 5), 0);
    ASSERT_EQ(xdpctl({"rule", "add", "--id", "2", "--proto", "udp", "--dport", "10", "--action", "count"}).exit_code, 0);
    EXPECT_EQ(udp_through(lab, 9, 5), 0);
    EXPECT_EQ(rule(1)["packets"], 15u);

    // export names the namespace; apply (without -n) reads it back, still matching.
    const std::string first = exported();
    EXPECT_NE(first.find(fmt::format("--iif {} --iif-netns {}", lab.dut().ifname, lab.dut().ns)), std::string::npos)
        << first;
    ASSERT_EQ(xdpctl({"policy", "default", "drop"}).exit_code, 0);
    CmdResult applied = xdpctl({"apply", write_temp_file(first, "iif")});
    ASSERT_EQ(applied.exit_code, 0) << applied;
    EXPECT_EQ(exported(), first);
    EXPECT_EQ(udp_through(lab, 9, 5), 0);
    EXPECT_EQ(udp_through(lab, 10, 2), 2);
    EXPECT_EQ(rule(1)["packets"], 20u);
}

// KNOWN LIMITATION (docs/filtering.md, "--iif and network namespaces"): the datapath matches
// --iif by ifindex alone, and one policy serves every namespace, so a rule for ifindex N in
// one namespace also matches an interface with index N in another. The peer's and the DUT's
// veth ends both have index 2 here: a rule for the peer's end also holds on the DUT's.
class IifIndexCollision : public IifCli {
protected:
    void SetUp() override
    {
        IifCli::SetUp();
        if (IsSkipped())
            return;
        lab_ = std::make_unique<NetnsLab>();
        auto index_in = [](const std::string& ns, const std::string& dev) {
            return in_netns(ns, [&] { return if_nametoindex(dev.c_str()); });
        };
        if (index_in(lab_->peer().ns, lab_->peer().ifname) != index_in(lab_->dut().ns, lab_->dut().ifname))
            GTEST_SKIP() << "the two veth ends have different interface indexes here";
        lab_->load();
    }
    void TearDown() override
    {
        lab_.reset();
        IifCli::TearDown();
    }
    // A drop rule for the peer's interface, in the peer's namespace.
    CmdResult add_rule_for_peer() const
    {
        return xdpctl({"-n", lab_->peer().ns, "rule", "add", "--iif", lab_->peer().ifname, "--proto", "udp",
                       "--dport", "9", "--action", "drop"});
    }
    std::unique_ptr<NetnsLab> lab_;
};

// Interface indexes repeat across namespaces (the lab's two veth ends both have index 2):
// --iif matches the key xdpctl gave the interface it is loaded on, not the index, so a rule
// for the peer's interface drops nothing on the DUT's, and one for the DUT's own does.
TEST_F(IifIndexCollision, RuleForAnotherNamespacesInterfaceDoesNotMatch)
{
    ASSERT_EQ(add_rule_for_peer().exit_code, 0);
    EXPECT_EQ(udp_through(*lab_, 9, 5), 5) << "a rule for " << lab_->peer().ns << "/" << lab_->peer().ifname
                                           << " dropped on the DUT's interface";
    // A reload keeps the interface's key, and the rule still does not match.
    CmdResult again = lab_->load_result({"--force"});
    ASSERT_EQ(again.exit_code, 0) << again;
    EXPECT_EQ(udp_through(*lab_, 9, 5), 5);
    CmdResult own = xdpctl({"-n", lab_->dut().ns, "rule", "add", "--iif", lab_->dut().ifname, "--proto", "udp",
                            "--dport", "9", "--action", "drop"});
    ASSERT_EQ(own.exit_code, 0) << own;
    EXPECT_EQ(udp_through(*lab_, 9, 5), 0) << "the DUT's own --iif rule";
}

// The rule follows its interface's key: after an unload, the peer's interface takes the
// lowest free key (the one the DUT's had) and the DUT's, loaded again, another; the rule
// still drops on the DUT's interface.
TEST_F(IifIndexCollision, KeysFollowLoadsAndUnloads)
{
    CmdResult own = xdpctl({"-n", lab_->dut().ns, "rule", "add", "--iif", lab_->dut().ifname, "--proto", "udp",
                            "--dport", "9", "--action", "drop"});
    ASSERT_EQ(own.exit_code, 0) << own;
    EXPECT_EQ(udp_through(*lab_, 9, 5), 0);
    ASSERT_EQ(lab_->xdpctl_dut({"unload", lab_->dut().ifname}).exit_code, 0);
    CmdResult peer = xdpctl({"-n", lab_->peer().ns, "load", lab_->peer().ifname});
    ASSERT_EQ(peer.exit_code, 0) << peer;
    lab_->load();
    EXPECT_EQ(udp_through(*lab_, 9, 5), 0) << "the rule matches on the DUT's interface again";
    xdpctl({"-n", lab_->peer().ns, "unload", lab_->peer().ifname});
}

}  // namespace
}  // namespace xdpctl::test
