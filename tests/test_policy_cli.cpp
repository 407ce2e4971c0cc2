// The policy commands end to end: rules and sets set with the CLI, stored in the pinned
// maps, applied by the programs to real packets through a veth, kept across reloads, and
// every bad input leaving the policy exactly as it was.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fcntl.h>

#include <filesystem>
#include <future>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <bpf/bpf.h>

#include "attach/iface_pins.h"
#include "attach/iface_ref.h"
#include "netns_lab.h"
#include "policy/grace_keeper.h"
#include "policy/prefix_table.h"
#include "util/unique_fd.h"
#include "util/writer_lock.h"

namespace xdpctl::test {
namespace {

// The policy is shared by every interface on the host: each test starts and ends with none.
class PolicyCli : public NoPolicyTest {
protected:

    static std::string write_file(const std::string& text) { return write_temp_file(text, "policy"); }

    static nlohmann::json rules_json() { return xdpctl_json({"rule", "list", "--json"}); }

    static uint64_t rule_packets(uint32_t id)
    {
        const nlohmann::json all = rules_json();  // the loop below must not outlive it
        for (const auto& r : all["rules"])
            if (r["id"] == id)
                return r["packets"].get<uint64_t>();
        ADD_FAILURE() << "no rule " << id << " in " << all.dump();
        return 0;
    }
};

TEST_F(PolicyCli, RuleAddListDelete)
{
    CmdResult add = xdpctl({"rule", "add", "--src", "198.18.0.0/15", "--proto", "tcp", "--dport",
                            "80", "--action", "drop"});
    ASSERT_EQ(add.exit_code, 0) << add;
    uint32_t id = uint32_t(std::stoul(add.out));
    auto j = rules_json();
    ASSERT_EQ(j["rules"].size(), 1u);
    EXPECT_EQ(j["rules"][0]["id"], id);
    EXPECT_EQ(j["rules"][0]["match"]["dport"], "80");
    EXPECT_EQ(j["default"], "pass");

    CmdResult again = xdpctl({"rule", "add", "--id", std::to_string(id), "--action", "pass"});
    EXPECT_EQ(again.exit_code, 2) << again;
    EXPECT_NE(again.err.find("exists"), std::string::npos) << again;

    CmdResult del = xdpctl({"rule", "del", std::to_string(id)});
    ASSERT_EQ(del.exit_code, 0) << del;
    EXPECT_TRUE(rules_json()["rules"].empty());
    CmdResult gone = xdpctl({"rule", "del", std::to_string(id)});
    EXPECT_EQ(gone.exit_code, 2) << gone;
}

TEST_F(PolicyCli, BadInputChangesNothing)
{
    ASSERT_EQ(xdpctl({"rule", "add", "--id", "1", "--proto", "udp", "--dport", "53", "--action", "drop"}).exit_code, 0);
    ASSERT_EQ(xdpctl({"set", "create", "bad"}).exit_code, 0);
    for (int i = 2; i <= 16; i++)  // the set table: full at 16
        ASSERT_EQ(xdpctl({"set", "create", fmt::format("s{}", i)}).exit_code, 0);
    const std::string before = exported();

    struct Case {
        std::vector<std::string> args;
        std::string token;
    } cases[] = {
        {{"rule", "add", "--src", "198.18.0.300/24", "--action", "drop"}, "198.18.0.300/24"},
        {{"rule", "add", "--src", "198.18.0.1/24", "--action", "drop"}, "host bits"},
        {{"rule", "add", "--proto", "tcp", "--dport", "90-80", "--action", "drop"}, "reversed"},
        {{"rule", "add", "--dport", "80", "--action", "drop"}, "--proto"},
        {{"rule", "add", "--src", "@nosuch", "--action", "drop"}, "nosuch"},
        {{"set", "add", "nosuch", "198.18.0.0/16"}, "nosuch"},
        {{"set", "add", "bad", "198.18.0.1/16"}, "host bits"},
        {{"set", "del", "bad", "198.18.0.0/16"}, "not in set"},
        {{"policy", "default", "maybe"}, "maybe"},
        {{"rule", "add", "--id", "1", "--action", "pass"}, "--id 1: a rule with this id exists"},
        {{"set", "create", "s17"}, "at most 16"},
    };
    for (const auto& c : cases) {
        CmdResult r = xdpctl(c.args);
        EXPECT_EQ(r.exit_code, 2) << r;
        EXPECT_NE(r.err.find(c.token), std::string::npos) << r;
        EXPECT_EQ(exported(), before) << r;
    }

    // One bad line among 10,000 good ones: the message names the line; nothing changes.
    std::string text = "default drop\n";
    for (int i = 0; i < 10000; i++)
        text += i == 7777 ? "rule --proto tcp --sport 1-2-3 --action drop\n"
                          : fmt::format("rule --src 198.19.{}.{}/32 --action drop\n", i / 256, i % 256);
    std::string file = write_file(text);
    CmdResult r = xdpctl({"apply", file});
    EXPECT_EQ(r.exit_code, 2) << r;
    EXPECT_NE(r.err.find(fmt::format("{}:7779:", file)), std::string::npos) << r;
    EXPECT_EQ(exported(), before);

    // The rule table full: 10,000 ingress rules fit, one more does not (egress has its own).
    text.clear();
    for (int i = 0; i < 10000; i++)
        text += fmt::format("rule --src 198.19.{}.{}/32 --action drop\n", i / 256, i % 256);
    r = xdpctl({"apply", write_file(text)});
    ASSERT_EQ(r.exit_code, 0) << r;
    const std::string full = exported();
    r = xdpctl({"rule", "add", "--src", "198.18.0.0/24", "--action", "drop"});
    EXPECT_EQ(r.exit_code, 2) << r;
    EXPECT_NE(r.err.find("rule table is full"), std::string::npos) << r;
    EXPECT_EQ(exported(), full);
    r = xdpctl({"rule", "add", "--dir", "egress", "--src", "198.18.0.0/24", "--action", "drop"});
    EXPECT_EQ(r.exit_code, 0) << r;
}

TEST_F(PolicyCli, ExportThenApplyChangesNothingCountersIncluded)
{
    std::string file = write_file("default pass\n"
                                  "set web 198.18.0.0/16 !198.18.5.0/24 2001:2::/48\n"
                                  "rule --id 5 --src @web --proto udp --dport 9 --action drop\n"
                                  "rule --id 6 --priority 10 --proto icmp --action count\n");
    ASSERT_EQ(xdpctl({"apply", file}).exit_code, 0);
    const std::string first = exported();
    CmdResult dry = xdpctl({"apply", "--dry-run", write_file(first)});
    ASSERT_EQ(dry.exit_code, 0) << dry;
    EXPECT_NE(dry.out.find("0 change(s)"), std::string::npos) << dry;
    ASSERT_EQ(xdpctl({"apply", write_file(first)}).exit_code, 0);
    EXPECT_EQ(exported(), first);
}

TEST_F(PolicyCli, RealPacketsOnXdpAndTcAndPolicySurvivesReload)
{
    NetnsLab lab;
    lab.load({"--hook", "both"});
    // Ingress: drop UDP to port 9 (on XDP, before TC ingress sees it). Egress: drop what the
    // DUT sends to port 7.
    CmdResult a = xdpctl({"rule", "add", "--id", "1", "--proto", "udp", "--dport", "9", "--action", "drop"});
    ASSERT_EQ(a.exit_code, 0) << a;
    CmdResult b = xdpctl({"rule", "add", "--id", "2", "--dir", "egress", "--proto", "udp",
                          "--dport", "7", "--action", "drop"});
    ASSERT_EQ(b.exit_code, 0) << b;

    // With XDP and TC ingress both loaded, ingress rules run once (on XDP): a count rule
    // counts each packet once.
    CmdResult c = xdpctl({"rule", "add", "--id", "3", "--proto", "udp", "--dport", "10", "--action", "count"});
    ASSERT_EQ(c.exit_code, 0) << c;

    StatsSnapshot before = lab.stats();
    EXPECT_EQ(udp_through(lab, 9, 20), 0);
    EXPECT_EQ(udp_through(lab, 10, 5), 5);
    EXPECT_EQ(rule_packets(1), 20u);
    EXPECT_EQ(rule_packets(3), 5u);
    CounterMap d = lab.wait_delta(before, [](const CounterMap& m) {
        auto it = m.find("xdp/verdict/drop");
        return it != m.end() && it->second.packets >= 20;
    });
    EXPECT_EQ(d["xdp/verdict/drop"].packets, 20u);
    EXPECT_EQ(d["xdp/verdict/pass"].packets, 5u);
    EXPECT_EQ(d["tc_ingress/verdict/pass"].packets, 5u);  // dropped frames never reach TC

    // Egress: the DUT sends 4 datagrams to the peer's port 7: TC egress drops them.
    before = lab.stats();
    in_netns(lab.dut().ns, [&] {
        UniqueFd s{socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(7);
        inet_pton(AF_INET, lab.peer().ipv4.c_str(), &to.sin_addr);
        for (int i = 0; i < 4; i++)
            sendto(s.get(), "y", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
        return 0;
    });
    d = lab.wait_delta(before, [](const CounterMap& m) {
        auto it = m.find("tc_egress/verdict/drop");
        return it != m.end() && it->second.packets >= 4;
    });
    EXPECT_EQ(d["tc_egress/verdict/drop"].packets, 4u);
    EXPECT_EQ(rule_packets(2), 4u);

    // Reload the programs: the rules and their counters are still there and still applied.
    lab.load({"--hook", "both", "--force"});
    EXPECT_EQ(rule_packets(1), 20u);
    EXPECT_EQ(udp_through(lab, 9, 3), 0);
    EXPECT_EQ(rule_packets(1), 23u);
}

// The table the datapath reads for the active ingress source field's addresses: the field's
// own (xdpctl_ptabs), or, when it is split by its sets (abi: "Sets' own tables"), its first
// set's (xdpctl_pset). *split says which.
UniqueFd active_src_table(bool* split)
{
    const std::string dir = shared_maps_dir();
    UniqueFd ctl(bpf_obj_get((dir + "/xdpctl_pctl").c_str()));
    UniqueFd hdr(bpf_obj_get((dir + "/xdpctl_phdr").c_str()));
    UniqueFd tabs(bpf_obj_get((dir + "/xdpctl_ptabs").c_str()));
    if (!ctl || !hdr || !tabs)
        throw std::runtime_error("the policy maps are not pinned");
    __u32 zero = 0, id = 0;
    xdpctl_pol_ctl c{};
    if (bpf_map_lookup_elem(ctl.get(), &zero, &c) != 0)
        throw std::runtime_error("cannot read xdpctl_pctl");
    __u32 gen = c.gen & 1;
    xdpctl_pol_hdr h{};
    if (bpf_map_lookup_elem(hdr.get(), &gen, &h) != 0)
        throw std::runtime_error("cannot read xdpctl_phdr");
    __u32 slot = XDPCTL_POL_TAB_ADDR(gen, 0, 0);
    *split = h.dir[0].decide >> XDPCTL_POL_DECIDE_SPLIT_SHIFT & 1;
    if (*split) {
        UniqueFd split_map(bpf_obj_get((dir + "/xdpctl_psplit").c_str()));
        tabs = UniqueFd(bpf_obj_get((dir + "/xdpctl_pset").c_str()));
        std::vector<uint8_t> buf(sizeof(xdpctl_pol_split));
        if (!split_map || !tabs || bpf_map_lookup_elem(split_map.get(), &slot, buf.data()) != 0)
            throw std::runtime_error("cannot read the split source field");
        xdpctl_pol_split sp;
        std::memcpy(&sp, buf.data(), sizeof(sp));
        slot = sp.slot[0];
    }
    if (bpf_map_lookup_elem(tabs.get(), &slot, &id) != 0)
        throw std::runtime_error("no source table in force");
    return UniqueFd(bpf_map_get_fd_by_id(id));
}

// Level-2 entries of that table that point at a sparse chunk (XDPCTL_PFX_SPARSE), read from
// the pinned maps as the datapath reads them.
size_t sparse_refs_in_active_src_table(bool* split)
{
    UniqueFd table = active_src_table(split);
    const MappedMap m(table.get());
    const auto words = m.as<uint32_t>();
    size_t sparse = 0;
    for (uint32_t top = 0; top < XDPCTL_PFX_L1_ENTRIES; top++) {
        const uint32_t e = words[XDPCTL_PFX4_L1_WORD + top];
        if (!(e & XDPCTL_PFX_REF) || (e & XDPCTL_PFX_SPARSE))  // no chunk: a sparse /16
            continue;
        for (uint32_t b = 0; b < XDPCTL_PFX_CHUNK_WORDS; b++) {
            const uint32_t e2 = words[size_t(e & XDPCTL_PFX_CHUNK_MASK) * XDPCTL_PFX_CHUNK_WORDS + b];
            sparse += (e2 & XDPCTL_PFX_REF) && (e2 & XDPCTL_PFX_SPARSE);
        }
    }
    return sparse;
}

// Programs of ABI 1 read a sparse reference as a 1 KiB chunk number (and know no set tables
// of their own, abi 3): while one is loaded, commits build 1 KiB chunks only and merge the
// set into the source field's table; once it is reloaded, sparse ones, in the set's own
// table. Verdicts are right either way.
TEST_F(PolicyCli, SparseTablesOnlyOnceEveryProgramKnowsThem)
{
    NetnsLab lab;
    lab.load();
    const IfacePins pins(lab.dut_pin_dir());
    auto set_abi = [&](uint32_t v) {
        UniqueFd meta(bpf_obj_get(pins.meta.c_str()));
        ASSERT_TRUE(meta) << pins.meta;
        __u32 zero = 0;
        xdpctl_iface_meta m{};
        ASSERT_EQ(bpf_map_lookup_elem(meta.get(), &zero, &m), 0);
        m.abi_version = v;
        ASSERT_EQ(bpf_map_update_elem(meta.get(), &zero, &m, BPF_ANY), 0);
    };
    set_abi(1);  // as the 0.2 release's load wrote it
    ASSERT_EQ(xdpctl({"set", "create", "blk"}).exit_code, 0);
    // The peer's address and one more host: two /24s with one /32 each.
    ASSERT_EQ(xdpctl({"set", "add", "blk", lab.peer().ipv4, "198.19.200.7"}).exit_code, 0);
    ASSERT_EQ(xdpctl({"rule", "add", "--id", "1", "--src", "@blk", "--proto", "udp", "--dport", "9",
                      "--action", "drop"}).exit_code, 0);
    ASSERT_EQ(xdpctl({"rule", "add", "--id", "2", "--proto", "udp", "--dport", "10", "--action", "count"})
                  .exit_code, 0);
    bool split = true;
    EXPECT_EQ(sparse_refs_in_active_src_table(&split), 0u);
    EXPECT_FALSE(split) << "a set in a table of its own while a program of ABI 1 runs";
    EXPECT_EQ(udp_through(lab, 9, 5), 0);
    EXPECT_EQ(udp_through(lab, 10, 5), 5);

    lab.load({"--force"});  // the upgrade: the program and its meta are of this build
    ASSERT_EQ(xdpctl({"rule", "add", "--id", "3", "--proto", "udp", "--dport", "11", "--action", "count"})
                  .exit_code, 0);
    // Sparse chunks, in the set's own table (abi 3): the source field is split by it.
    EXPECT_EQ(sparse_refs_in_active_src_table(&split), 2u);
    EXPECT_TRUE(split);
    EXPECT_EQ(udp_through(lab, 9, 5), 0);
    EXPECT_EQ(udp_through(lab, 10, 5), 5);
    EXPECT_EQ(rule_packets(1), 10u);
}

// Level-1 entries of that table that are a sparse /16 (XDPCTL_PFX_SPARSE16_STARTS).
size_t sparse16_in_active_src_table()
{
    bool split = false;
    UniqueFd table = active_src_table(&split);
    const MappedMap m(table.get());
    const auto words = m.as<uint32_t>();
    size_t n = 0;
    for (uint32_t top = 0; top < XDPCTL_PFX_L1_ENTRIES; top++)
        n += (words[XDPCTL_PFX4_L1_WORD + top] & (XDPCTL_PFX_REF | XDPCTL_PFX_SPARSE)) ==
             (XDPCTL_PFX_REF | XDPCTL_PFX_SPARSE);
    return n;
}

// Programs of ABI 3 read a sparse /16's level-1 reference as a chunk number: while one is
// loaded, commits build chunks for every /16; once it is reloaded, a /16 with one host is
// one line. Verdicts are right either way.
TEST_F(PolicyCli, SparseSlash16sOnlyOnceEveryProgramKnowsThem)
{
    NetnsLab lab;
    lab.load();
    const IfacePins pins(lab.dut_pin_dir());
    {
        UniqueFd meta(bpf_obj_get(pins.meta.c_str()));
        ASSERT_TRUE(meta) << pins.meta;
        __u32 zero = 0;
        xdpctl_iface_meta m{};
        ASSERT_EQ(bpf_map_lookup_elem(meta.get(), &zero, &m), 0);
        m.abi_version = 3;  // as the 0.5 release's load wrote it
        ASSERT_EQ(bpf_map_update_elem(meta.get(), &zero, &m, BPF_ANY), 0);
    }
    // The peer's address and two hosts elsewhere, each alone in its /16.
    ASSERT_EQ(xdpctl({"rule", "add", "--id", "1", "--src", lab.peer().ipv4 + "/32", "--proto", "udp", "--dport",
                      "9", "--action", "drop"}).exit_code, 0);
    ASSERT_EQ(xdpctl({"rule", "add", "--id", "2", "--src", "198.19.200.7", "--action", "drop"}).exit_code, 0);
    ASSERT_EQ(xdpctl({"rule", "add", "--id", "3", "--src", "192.0.2.9", "--action", "drop"}).exit_code, 0);
    EXPECT_EQ(sparse16_in_active_src_table(), 0u);
    EXPECT_EQ(udp_through(lab, 9, 5), 0);
    EXPECT_EQ(udp_through(lab, 10, 5), 5);

    lab.load({"--force"});  // the upgrade: the program and its meta are of this build
    ASSERT_EQ(xdpctl({"rule", "add", "--id", "4", "--proto", "udp", "--dport", "11", "--action", "count"})
                  .exit_code, 0);
    EXPECT_GE(sparse16_in_active_src_table(), 3u);
    EXPECT_EQ(udp_through(lab, 9, 5), 0);
    EXPECT_EQ(udp_through(lab, 10, 5), 5);
    EXPECT_EQ(udp_through(lab, 11, 5), 5);
    EXPECT_EQ(rule_packets(1), 10u);
    EXPECT_EQ(rule_packets(4), 5u);
}

// The active generation's number and commit count, and its header's `settled`.
struct Settled {
    uint32_t gen = 0;
    uint64_t commits = 0;
    uint32_t settled = 0;
};
Settled active_settled()
{
    Settled out;
    UniqueFd ctl(bpf_obj_get((shared_maps_dir() + "/xdpctl_pctl").c_str()));
    UniqueFd hdr(bpf_obj_get((shared_maps_dir() + "/xdpctl_phdr").c_str()));
    EXPECT_TRUE(ctl && hdr);
    __u32 zero = 0;
    xdpctl_pol_ctl c{};
    xdpctl_pol_hdr h{};
    EXPECT_EQ(bpf_map_lookup_elem(ctl.get(), &zero, &c), 0);
    out.gen = c.gen & 1;
    out.commits = c.commits;
    EXPECT_EQ(bpf_map_lookup_elem(hdr.get(), &out.gen, &h), 0);
    out.settled = h.settled;
    return out;
}

// A command that commits and exits leaves the grace period after its flip to a keeper
// (policy/grace_keeper.h: where grace periods are not expedited, or XDPCTL_GRACE_KEEPER=1),
// which marks the generation settled for that flip; and a writer that finds a generation
// unsettled waits for every keeper still running before it waits itself.
TEST_F(PolicyCli, GraceKeeperMarksTheFlipAndTheNextWriterWaitsForIt)
{
    auto rule_add = [](uint32_t id, const char* keeper) {
        return run_cmd({"env", fmt::format("XDPCTL_GRACE_KEEPER={}", keeper), xdpctl_bin(), "rule", "add", "--id",
                        std::to_string(id), "--proto", "udp", "--dport", std::to_string(1000 + id), "--action", "drop"});
    };
    ASSERT_EQ(rule_add(1, "0").exit_code, 0);
    const CmdResult second = rule_add(2, "1");
    ASSERT_EQ(second.exit_code, 0) << second;
    Settled now = active_settled();
    for (int i = 0; i < 500 && now.settled != policy::settled_mark(now.commits); i++) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        now = active_settled();
    }
    EXPECT_EQ(now.settled, policy::settled_mark(now.commits)) << "no keeper marked commit " << now.commits;
    EXPECT_TRUE(policy::is_settled(now.settled, now.commits));
    EXPECT_FALSE(policy::is_settled(now.settled, now.commits + 2)) << "a mark stands for its own flip only";

    // A keeper still running (this test holding its lock) over an unsettled generation: the
    // next writer waits for it, then, finding no mark, waits itself and commits.
    {
        UniqueFd hdr(bpf_obj_get((shared_maps_dir() + "/xdpctl_phdr").c_str()));
        ASSERT_TRUE(hdr);
        xdpctl_pol_hdr h{};
        ASSERT_EQ(bpf_map_lookup_elem(hdr.get(), &now.gen, &h), 0);
        h.settled = 0;
        ASSERT_EQ(bpf_map_update_elem(hdr.get(), &now.gen, &h, BPF_ANY), 0);
    }
    UniqueFd lock(open(writer_lock_path, O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(lock) << writer_lock_path;
    struct flock l{};
    l.l_type = F_RDLCK;
    l.l_whence = SEEK_SET;
    l.l_start = policy::kGraceKeeperLockByte;
    l.l_len = 1;
    ASSERT_EQ(fcntl(lock.get(), F_OFD_SETLK, &l), 0);
    auto third = std::async(std::launch::async, [&] { return rule_add(3, "0"); });
    EXPECT_EQ(third.wait_for(std::chrono::milliseconds(500)), std::future_status::timeout)
        << "the writer went on while a keeper was still waiting";
    lock.reset();  // the keeper ends
    const CmdResult r = third.get();
    EXPECT_EQ(r.exit_code, 0) << r;
    const Settled after = active_settled();
    EXPECT_EQ(after.commits, now.commits + 1);
}

}  // namespace
}  // namespace xdpctl::test
