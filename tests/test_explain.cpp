// `xdpctl explain` end to end: a policy applied with the CLI, xdpctl loaded on the lab's
// veth (XDP, then TC only), packets explained. Each explanation is checked three ways:
//  - against what the policy says by hand (the deciding rule of each case is written down);
//  - against the real program: the attached program itself, fetched from its pinned link,
//    runs the same frame (BPF_PROG_TEST_RUN, same interface), and its return value and the
//    rule counters it moved must agree with the explanation;
//  - explain changed nothing: `rule list --json`, `stats --json`, and the raw bytes of the
//    rule counter and rate bucket maps are the same before and after it.
#include <net/if.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include <bpf/bpf.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <nlohmann/json.hpp>

#include "abi/xdpctl_abi.h"
#include "stats/counters.h"
#include "util/error.h"
#include "explain/packet_spec.h"
#include "explain/pcap_file.h"
#include "netns_lab.h"
#include "packet_builder.h"
#include "util/prog_test_run.h"
#include "util/unique_fd.h"

using nlohmann::json;

namespace xdpctl::test {
namespace {

constexpr const char* kMapsDir = "/sys/fs/bpf/xdpctl/maps";
// Counter slots the test policy can use (slots are handed out from 0).
constexpr uint32_t kSlots = 64;

bool contains(const std::string& s, const std::string& what)
{
    return s.find(what) != std::string::npos;
}

std::string write_file(const std::string& text)
{
    return write_temp_file(text, "explain");
}

// The raw bytes of the first kSlots entries of a pinned shared map (all CPUs for per-CPU).
std::vector<uint8_t> map_bytes(const char* name)
{
    UniqueFd fd{bpf_obj_get(fmt::format("{}/{}", kMapsDir, name).c_str())};
    if (!fd)
        throw std::runtime_error(fmt::format("no pinned map {}", name));
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_map_get_info_by_fd(fd.get(), &info, &len) != 0)
        throw std::runtime_error("map info");
    size_t value = info.value_size;
    if (info.type == BPF_MAP_TYPE_PERCPU_ARRAY)
        value = ((value + 7) & ~size_t(7)) * size_t(possible_cpus());
    std::vector<uint8_t> all, one(value);
    for (uint32_t k = 0; k < kSlots; k++) {
        if (bpf_map_lookup_elem(fd.get(), &k, one.data()) != 0)
            throw std::runtime_error(fmt::format("lookup {}[{}]", name, k));
        all.insert(all.end(), one.begin(), one.end());
    }
    return all;
}

// Everything explain must leave alone.
struct State {
    std::string rules;  // rule list --json (packets, bytes, last hit of every rule)
    std::string stats;  // stats --json of the lab's DUT
    std::vector<uint8_t> rctr, rrate, rpurse;
    bool operator==(const State&) const = default;
};

struct Explained {
    std::string verdict;   // "pass" / "drop"
    uint32_t rule = 0;     // deciding rule, 0: default
    std::set<uint32_t> counted;
    json j;
};

// What the attached program itself does with the frame.
struct Real {
    std::string verdict;
    std::set<uint32_t> moved;  // rules whose packet counter moved: counted + decider
};

class Explain : public ::testing::Test {
protected:
    void SetUp() override
    {
        XDPCTL_REQUIRE_ROOT();
        lab_ = std::make_unique<NetnsLab>();
        dut_ifindex_ = in_netns(lab_->dut().ns, [&] { return if_nametoindex(lab_->dut().ifname.c_str()); });
        ASSERT_NE(dut_ifindex_, 0u);
    }
    void TearDown() override
    {
        if (lab_)
            xdpctl({"apply", write_file("default pass\n")});
        lab_.reset();
    }

    // The test policy, with --iif resolved in the DUT's namespace.
    void apply_policy()
    {
        const std::string dut = lab_->dut().ifname;
        std::string text = fmt::format(
            "default drop\n"
            "rule --id 1 --priority 10 --proto tcp --dport 80 --action count\n"
            "rule --id 2 --priority 20 --src 198.18.0.0/15 --proto tcp --dport 80 --action drop\n"
            "rule --id 3 --priority 30 --proto udp --dport 53 --action rate-limit 1 --burst 1\n"
            "rule --id 4 --priority 40 --proto udp --action pass\n"
            "rule --id 5 --priority 50 --src 2001:2::/48 --proto tcp --sport 1000-2000 --action pass\n"
            "rule --id 6 --priority 60 --vlan 10 --action pass\n"
            "rule --id 7 --priority 70 --iif {} --proto icmp --action pass\n"
            "rule --id 8 --priority 5 --fragment --action drop\n"
            "rule --id 9 --dir egress --iif {} --proto tcp --dport 22 --action drop\n",
            dut, dut);
        CmdResult r = lab_->xdpctl_dut({"apply", write_file(text)});
        ASSERT_EQ(r.exit_code, 0) << r;
    }

    State state() const
    {
        State s;
        CmdResult r = xdpctl({"rule", "list", "--json"});
        EXPECT_EQ(r.exit_code, 0) << r;
        s.rules = r.out;
        // Where xdpctl is not loaded this is the same error both times.
        CmdResult st = lab_->xdpctl_dut({"stats", lab_->dut().ifname, "--json"});
        s.stats = fmt::format("{} {}{}", st.exit_code, st.out, st.err);
        s.rctr = map_bytes("xdpctl_rctr");
        s.rrate = map_bytes("xdpctl_rrate");
        s.rpurse = map_bytes("xdpctl_rpurse");
        return s;
    }

    static Explained parse(const json& j)
    {
        Explained e;
        e.j = j;
        e.verdict = j.at("verdict");
        if (!j.at("rule").is_null())
            e.rule = j["rule"].at("id");
        for (const auto& c : j.at("counted"))
            e.counted.insert(c.at("id").get<uint32_t>());
        return e;
    }

    // `xdpctl -n DUT explain PACKET [ARGS] --json`, checking that nothing changed.
    Explained explain(const std::string& packet, std::vector<std::string> args = {})
    {
        const State before = state();
        std::vector<std::string> cmd = {"explain", packet, "--json"};
        cmd.insert(cmd.end(), args.begin(), args.end());
        CmdResult r = lab_->xdpctl_dut(cmd);
        EXPECT_EQ(r.exit_code, 0) << r;
        EXPECT_TRUE(before == state()) << "explain changed a counter, a rate bucket or a purse: " << packet;
        return parse(json::parse(r.out));
    }

    // The attached program (behind the pinned link) on the frame, arriving on the DUT.
    Real real(const std::string& link, int hook, const std::vector<uint8_t>& frame)
    {
        UniqueFd lfd{bpf_obj_get(fmt::format("{}/{}", lab_->dut_pin_dir(), link).c_str())};
        if (!lfd)
            throw std::runtime_error("no pinned link " + link);
        bpf_link_info info{};
        __u32 len = sizeof(info);
        if (bpf_link_get_info_by_fd(lfd.get(), &info, &len) != 0)
            throw std::runtime_error("link info");
        UniqueFd pfd{bpf_prog_get_fd_by_id(info.prog_id)};
        const json before = rule_packets();
        __u32 retval = in_netns(lab_->dut().ns, [&] {
            const ProgRunResult r = prog_test_run(pfd.get(), hook == XDPCTL_HOOK_XDP, frame, dut_ifindex_);
            if (r.err)
                throw std::runtime_error("test run of the attached program failed");
            return r.retval;
        });
        Real out;
        bool drop = hook == XDPCTL_HOOK_XDP ? retval == XDP_DROP : int(retval) == TCX_DROP;
        out.verdict = drop ? "drop" : "pass";
        const json after = rule_packets();
        for (auto& [id, n] : after.items())
            if (n.get<uint64_t>() != before.value(id, uint64_t(0)))
                out.moved.insert(uint32_t(std::stoul(id)));
        return out;
    }

    static json rule_packets()
    {
        CmdResult r = xdpctl({"rule", "list", "--json"});
        json out = json::object();
        const json all = json::parse(r.out);  // the loop below must not outlive it
        for (const auto& rule : all["rules"])
            out[std::to_string(rule["id"].get<uint32_t>())] = rule["packets"];
        return out;
    }

    // Explains `packet`, expects (verdict, rule, counted), and checks the real program agrees.
    Explained check(const std::string& link, int hook, const std::string& packet,
                    const std::string& verdict, uint32_t rule, std::set<uint32_t> counted,
                    std::vector<std::string> args = {})
    {
        SCOPED_TRACE(packet);
        Explained e = explain(packet, args);
        EXPECT_EQ(e.verdict, verdict) << e.j.dump();
        EXPECT_EQ(e.rule, rule) << e.j.dump();
        EXPECT_EQ(e.counted, counted) << e.j.dump();
        agree_with_real(link, hook, packet, e);
        return e;
    }

    void agree_with_real(const std::string& link, int hook, const std::string& packet, const Explained& e)
    {
        const auto spec = explain::parse_packet_spec({packet});
        Real r = real(link, hook, explain::build_frame(spec));
        EXPECT_EQ(r.verdict, e.verdict) << packet;
        std::set<uint32_t> want = e.counted;
        if (e.rule)
            want.insert(e.rule);
        EXPECT_EQ(r.moved, want) << packet << ": rules the real program counted";
    }

    std::unique_ptr<NetnsLab> lab_;
    uint32_t dut_ifindex_ = 0;
};

// First in the file: under /work/tools/isolated (and on a clean host) no policy map is
// pinned yet, and explain must not create any.
TEST_F(Explain, NoPolicyPassesEverythingAndPinsNothing)
{
    if (std::filesystem::exists(kMapsDir))
        GTEST_SKIP() << "a policy is pinned on this host (" << kMapsDir << "): not removing it";
    CmdResult r = lab_->xdpctl_dut({"explain", "tcp 198.18.0.2:1234 -> 198.19.0.1:80", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r;
    json j = json::parse(r.out);
    EXPECT_EQ(j["verdict"], "pass");
    EXPECT_EQ(j["decided_by"], "no_policy");
    EXPECT_FALSE(std::filesystem::exists(kMapsDir)) << "explain pinned the policy maps";
}

TEST_F(Explain, XdpVerdictsMatchTheAttachedProgram)
{
    lab_->load();
    apply_policy();
    const std::string dut = lab_->dut().ifname;
    const std::string iif = " iif " + dut;
    const int xdp = XDPCTL_HOOK_XDP;

    // A count rule on the way, then a drop.
    Explained e = check("link_xdp", xdp, "tcp 198.18.0.2:1234 -> 198.19.0.1:80" + iif, "drop", 2, {1});
    EXPECT_EQ(e.j["hook"], "xdp");
    EXPECT_EQ(e.j["attached"], true);
    EXPECT_EQ(e.j["ifindex"], dut_ifindex_);
    EXPECT_EQ(e.j["decided_by"], "rule");
    EXPECT_EQ(e.j["rule"]["rule"], "--id 2 --priority 20 --src 198.18.0.0/15 --proto tcp --dport 80 --action drop");
    EXPECT_EQ(e.j["headers"]["l3"], "ipv4");
    EXPECT_EQ(e.j["headers"]["src"], "198.18.0.2");
    EXPECT_EQ(e.j["headers"]["dst"], "198.19.0.1");
    EXPECT_EQ(e.j["headers"]["sport"], 1234);
    EXPECT_EQ(e.j["headers"]["dport"], 80);
    EXPECT_EQ(e.j["headers"]["tcp_flags"], json::array({"syn"}));
    // Counted, then no rule: the default (drop).
    e = check("link_xdp", xdp, "tcp 192.0.2.1:1234 -> 198.19.0.1:80" + iif, "drop", 0, {1});
    EXPECT_EQ(e.j["decided_by"], "default");
    // IPv6, a source port range.
    e = check("link_xdp", xdp, "tcp [2001:2::1]:1500 -> [2001:2::2]:443 flags ack" + iif, "pass", 5, {});
    EXPECT_EQ(e.j["headers"]["l3"], "ipv6");
    EXPECT_EQ(e.j["headers"]["src"], "2001:2::1");
    EXPECT_EQ(e.j["headers"]["tcp_flags"], json::array({"ack"}));
    // The outer VLAN tag decides; QinQ shows both tags.
    e = check("link_xdp", xdp, "tcp [2001:2::1]:999 -> [2001:2::2]:443 vlan 10 vlan 20" + iif, "pass", 6, {});
    EXPECT_EQ(e.j["headers"]["vlans"], json::array({10, 20}));
    // --iif: the ICMP pass rule holds on the DUT, not on lo (no interface given).
    check("link_xdp", xdp, "icmp 198.18.0.2 -> 198.19.0.1" + iif, "pass", 7, {});
    e = explain("icmp 198.18.0.2 -> 198.19.0.1");
    EXPECT_EQ(e.verdict, "drop");
    EXPECT_EQ(e.rule, 0u);
    EXPECT_EQ(e.j["ifindex"], 1);
    // A later fragment: only --fragment (and protocol-only) rules see it.
    e = check("link_xdp", xdp, "udp 198.18.0.2 -> 198.19.0.1 fragment" + iif, "drop", 8, {});
    EXPECT_EQ(e.j["headers"]["fragment"], "later");
    EXPECT_EQ(e.j["headers"]["l4"], "fragment");
    // len pads the frame.
    e = explain("udp 198.18.0.2:5000 -> 198.19.0.1:5353 len 300" + iif);
    EXPECT_EQ(e.j["headers"]["len"], 300);
    EXPECT_EQ(e.rule, 4u);
}

// Sets in tables of their own (docs/prefix-sets.md, "A set's own table"): a source field
// split by two sets beside a rule prefix, then by one set alone; explain answers as the
// attached program does, also after a `set add` and a `set del` (each a table built anew).
TEST_F(Explain, SetsInTablesOfTheirOwn)
{
    lab_->load();
    const int xdp = XDPCTL_HOOK_XDP;
    const std::string iif = " iif " + lab_->dut().ifname;
    const std::string text =
        "default pass\n"
        "set blk 198.18.0.0/16 !198.18.5.0/24 2001:2::/48\n"
        "set ok 198.18.7.0/24\n"
        "rule --id 1 --priority 10 --src @ok --proto tcp --action pass\n"
        "rule --id 2 --priority 20 --src @blk --action drop\n"
        "rule --id 3 --priority 30 --src 198.18.0.0/15 --proto udp --action drop\n";
    CmdResult r = lab_->xdpctl_dut({"apply", write_file(text)});
    ASSERT_EQ(r.exit_code, 0) << r;
    check("link_xdp", xdp, "tcp 198.18.1.1:1000 -> 198.19.0.1:80" + iif, "drop", 2, {});
    check("link_xdp", xdp, "tcp 198.18.5.1:1000 -> 198.19.0.1:80" + iif, "pass", 0, {});  // excepted
    check("link_xdp", xdp, "udp 198.18.5.1:1000 -> 198.19.0.1:53" + iif, "drop", 3, {});
    check("link_xdp", xdp, "tcp 198.18.7.1:1000 -> 198.19.0.1:80" + iif, "pass", 1, {});
    check("link_xdp", xdp, "tcp [2001:2::1]:1000 -> [2001:2::2]:80" + iif, "drop", 2, {});
    ASSERT_EQ(lab_->xdpctl_dut({"set", "add", "blk", "198.18.5.7"}).exit_code, 0);
    check("link_xdp", xdp, "tcp 198.18.5.7:1000 -> 198.19.0.1:80" + iif, "drop", 2, {});
    ASSERT_EQ(lab_->xdpctl_dut({"set", "del", "blk", "198.18.0.0/16"}).exit_code, 0);
    check("link_xdp", xdp, "tcp 198.18.1.1:1000 -> 198.19.0.1:80" + iif, "pass", 0, {});
    // One set alone in the field: the rules of @ok and the prefix go.
    ASSERT_EQ(lab_->xdpctl_dut({"rule", "del", "1"}).exit_code, 0);
    ASSERT_EQ(lab_->xdpctl_dut({"rule", "del", "3"}).exit_code, 0);
    check("link_xdp", xdp, "tcp 198.18.5.7:1000 -> 198.19.0.1:80" + iif, "drop", 2, {});
    check("link_xdp", xdp, "udp 198.18.5.1:1000 -> 198.19.0.1:53" + iif, "pass", 0, {});
    check("link_xdp", xdp, "tcp [2001:2::9]:1000 -> [2001:2::2]:80" + iif, "drop", 2, {});
}

TEST_F(Explain, RateLimitReadsTheBucketWithoutTakingFromIt)
{
    lab_->load();
    apply_policy();
    const std::string pkt = "udp 198.18.0.2:5000 -> 198.19.0.1:53 iif " + lab_->dut().ifname;
    // A new rule's bucket is full (1 token): within the rate, counted, rule 4 passes it.
    // explain() itself checks the bucket did not change, so this holds however often it runs.
    for (int i = 0; i < 3; i++) {
        Explained e = explain(pkt);
        EXPECT_EQ(e.verdict, "pass");
        EXPECT_EQ(e.rule, 4u);
        EXPECT_EQ(e.counted, std::set<uint32_t>{3});
    }
    // The real program takes the token ...
    auto drained = std::chrono::steady_clock::now();
    Real r = real("link_xdp", XDPCTL_HOOK_XDP, explain::build_frame(explain::parse_packet_spec({pkt})));
    EXPECT_EQ(r.moved, (std::set<uint32_t>{3, 4}));
    // ... and the next packet is over the rate (1/s) until a second has passed: explain says
    // so, and the real program agrees. Each is held to it only if it ran before the bucket
    // took its next token: on a loaded machine the commands around them take that long.
    Explained e = explain(pkt);
    const bool explained_in_time = std::chrono::steady_clock::now() - drained < std::chrono::milliseconds(900);
    if (explained_in_time) {
        EXPECT_EQ(e.verdict, "drop") << e.j.dump();
        EXPECT_EQ(e.rule, 3u) << e.j.dump();
        r = real("link_xdp", XDPCTL_HOOK_XDP, explain::build_frame(explain::parse_packet_spec({pkt})));
        if (std::chrono::steady_clock::now() - drained < std::chrono::milliseconds(900)) {
            EXPECT_EQ(r.verdict, "drop") << "the real program, within the second";
            EXPECT_EQ(r.moved, (std::set<uint32_t>{3}));
        }
    }
}

TEST_F(Explain, TcOnlyIngressAndEgress)
{
    lab_->load({"--hook", "tc"});
    apply_policy();
    const std::string iif = " iif " + lab_->dut().ifname;
    Explained e = check("link_tc_in", XDPCTL_HOOK_TC_INGRESS, "tcp 198.18.0.2:1234 -> 198.19.0.1:80" + iif,
                        "drop", 2, {1});
    EXPECT_EQ(e.j["hook"], "tc_ingress");
    EXPECT_EQ(e.j["attached"], true);
    check("link_tc_in", XDPCTL_HOOK_TC_INGRESS, "tcp [2001:2::1]:1500 -> [2001:2::2]:443" + iif, "pass", 5, {});
    // Egress rules on TC egress: --iif is the device the packet leaves by.
    e = check("link_tc_eg", XDPCTL_HOOK_TC_EGRESS, "tcp 198.19.0.1:40000 -> 198.18.0.2:22" + iif, "drop", 9,
              {}, {"--dir", "egress"});
    EXPECT_EQ(e.j["hook"], "tc_egress");
    check("link_tc_eg", XDPCTL_HOOK_TC_EGRESS, "tcp 198.19.0.1:40000 -> 198.18.0.2:23" + iif, "drop", 0, {},
          {"--dir", "egress"});
}

TEST_F(Explain, WorksWhereXdpctlIsNotLoaded)
{
    apply_policy();
    // The same program runs unattached. --iif rules match the key a load gives the
    // interface: where xdpctl is not loaded, no --iif rule matches (rule 7 would), as no
    // program of xdpctl would see the packet there.
    Explained e = explain("icmp 198.18.0.2 -> 198.19.0.1 iif " + lab_->dut().ifname);
    EXPECT_EQ(e.j["hook"], "xdp");
    EXPECT_EQ(e.j["attached"], false);
    EXPECT_EQ(e.verdict, "drop");
    EXPECT_EQ(e.rule, 0u);
    // The text form names the rule as `export` writes it.
    CmdResult r = lab_->xdpctl_dut({"explain", "tcp 198.18.0.2:1234 -> 198.19.0.1:80"});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_TRUE(contains(r.out, "verdict: drop (rule 2)")) << r;
    EXPECT_TRUE(contains(r.out, "rule 2: --id 2 --priority 20 --src 198.18.0.0/15 --proto tcp --dport 80 --action drop"))
        << r;
    EXPECT_TRUE(contains(r.out, "rule 1 (count)")) << r;
}


// Byte order and timestamp precision of a classic pcap, written by hand.
void write_pcap_variant(const std::string& path, const std::vector<std::vector<uint8_t>>& frames,
                        bool big_endian, bool nsec)
{
    std::ofstream out(path, std::ios::binary);
    auto put32 = [&](uint32_t v) {
        uint8_t b[4];
        for (int i = 0; i < 4; i++)
            b[i] = uint8_t(big_endian ? v >> (24 - 8 * i) : v >> (8 * i));
        out.write(reinterpret_cast<const char*>(b), 4);
    };
    auto put16 = [&](uint16_t v) {
        uint8_t b[2] = {uint8_t(big_endian ? v >> 8 : v), uint8_t(big_endian ? v : v >> 8)};
        out.write(reinterpret_cast<const char*>(b), 2);
    };
    put32(nsec ? 0xa1b23c4d : 0xa1b2c3d4);
    put16(2);
    put16(4);
    put32(0);
    put32(0);
    put32(65535);
    put32(1);
    for (const auto& f : frames) {
        put32(1700000000);
        put32(nsec ? 999999999 : 999999);
        put32(uint32_t(f.size()));
        put32(uint32_t(f.size()));
        out.write(reinterpret_cast<const char*>(f.data()), std::streamsize(f.size()));
    }
}

TEST_F(Explain, PcapEveryPacketInEveryFormat)
{
    lab_->load();
    apply_policy();
    using explain::build_frame;
    using explain::parse_packet_spec;
    std::vector<std::vector<uint8_t>> frames = {
        build_frame(parse_packet_spec({"tcp 198.18.0.2:1234 -> 198.19.0.1:80"})),
        build_frame(parse_packet_spec({"tcp [2001:2::1]:1500 -> [2001:2::2]:443 vlan 7"})),
        PacketBuilder().arp_request().build(),
        // Cut after the IPv4 header: its length field claims more than the frame holds.
        PacketBuilder().ipv4().tcp().payload(20).truncate(40).build(),
    };
    const std::string dir = fmt::format("/tmp/xdpctl-test-explain-{}", getpid());
    std::filesystem::create_directories(dir);
    const std::string base = dir + "/usec.pcap";
    explain::write_pcap(base, frames);

    const State before = state();
    CmdResult r = lab_->xdpctl_dut({"explain", "--pcap", base, "-i", lab_->dut().ifname, "--json"});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_TRUE(before == state()) << "explain --pcap changed a counter";
    std::vector<json> lines;
    std::istringstream in(r.out);
    for (std::string l; std::getline(in, l);)
        lines.push_back(json::parse(l));
    ASSERT_EQ(lines.size(), frames.size()) << r;
    for (size_t i = 0; i < lines.size(); i++)
        EXPECT_EQ(lines[i]["packet"], i + 1);
    EXPECT_EQ(lines[0]["verdict"], "drop");
    EXPECT_EQ(lines[0]["rule"]["id"], 2);
    EXPECT_EQ(lines[1]["rule"]["id"], 5);
    EXPECT_EQ(lines[2]["headers"]["l3"], "arp");
    EXPECT_EQ(lines[2]["decided_by"], "default");  // ARP meets no rule with a match: drop
    EXPECT_EQ(lines[3]["decided_by"], "malformed");
    EXPECT_EQ(lines[3]["headers"]["malformed"], "ipv4_bad_length");
    EXPECT_EQ(lines[3]["verdict"], "pass");  // load --malformed pass

    // The real program agrees on every packet (after the checks above: it counts).
    for (size_t i = 0; i < frames.size(); i++) {
        Real real_out = real("link_xdp", XDPCTL_HOOK_XDP, frames[i]);
        EXPECT_EQ(real_out.verdict, lines[i]["verdict"]) << "packet " << i + 1;
    }

    // The other three variants of the format give the same answers, line for line.
    for (auto [big, nsec] : {std::pair{true, false}, std::pair{false, true}, std::pair{true, true}}) {
        const std::string path = fmt::format("{}/v{}{}.pcap", dir, int(big), int(nsec));
        write_pcap_variant(path, frames, big, nsec);
        CmdResult v = lab_->xdpctl_dut({"explain", "--pcap", path, "-i", lab_->dut().ifname, "--json"});
        ASSERT_EQ(v.exit_code, 0) << v;
        std::istringstream vin(v.out);
        size_t n = 0;
        for (std::string l; std::getline(vin, l); n++) {
            json j = json::parse(l);
            EXPECT_EQ(j["verdict"], lines[n]["verdict"]) << path;
            EXPECT_EQ(j["rule"], lines[n]["rule"]) << path;
        }
        EXPECT_EQ(n, frames.size()) << path;
    }

    // Text: one line a packet.
    CmdResult t = lab_->xdpctl_dut({"explain", "--pcap", base, "-i", lab_->dut().ifname});
    ASSERT_EQ(t.exit_code, 0) << t;
    EXPECT_TRUE(contains(t.out, "1: drop by rule 2 | matched rule 1 (count) | 54 bytes, ipv4 198.18.0.2 -> 198.19.0.1, tcp 1234 -> 80 [syn]"))
        << t;
    EXPECT_TRUE(contains(t.out, "4: pass by malformed ipv4_bad_length | 40 bytes, ipv4 (ethertype 0x0800), malformed: ipv4_bad_length"))
        << t;

    // A frame the kernel's test run refuses (under 14 bytes) gets an error line; the others
    // are still explained, and the exit code says something failed.
    const std::string runt = dir + "/runt.pcap";
    explain::write_pcap(runt, {frames[0], std::vector<uint8_t>(10, 0xff), frames[1]});
    CmdResult rr = lab_->xdpctl_dut({"explain", "--pcap", runt, "--json"});
    EXPECT_EQ(rr.exit_code, 1) << rr;
    EXPECT_TRUE(contains(rr.err, "1 of 3 packets could not be explained")) << rr;
    std::istringstream rin(rr.out);
    std::vector<json> rl;
    for (std::string l; std::getline(rin, l);)
        rl.push_back(json::parse(l));
    ASSERT_EQ(rl.size(), 3u) << rr;
    EXPECT_EQ(rl[0]["rule"]["id"], 2);
    EXPECT_TRUE(contains(rl[1].value("error", ""), "shorter than an Ethernet header")) << rr;
    EXPECT_EQ(rl[2]["rule"]["id"], 5);

    // A file cut in the middle of its second packet: an error naming the file and packet.
    std::vector<uint8_t> bytes;
    {
        std::ifstream f(base, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }
    const std::string cut = dir + "/cut.pcap";
    std::ofstream(cut, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(24 + 16 + frames[0].size() + 16 + 10));
    CmdResult c = lab_->xdpctl_dut({"explain", "--pcap", cut});
    EXPECT_EQ(c.exit_code, 2) << c;
    EXPECT_TRUE(contains(c.err, cut) && contains(c.err, "packet 2 is cut off")) << c;
    std::filesystem::remove_all(dir);
}

TEST_F(Explain, BadInputNamesTheToken)
{
    apply_policy();
    const State before = state();
    struct Bad {
        std::vector<std::string> args;
        std::string token;
    };
    const std::vector<Bad> bad = {
        {{"explain", "tcp 198.18.0.256:1 -> 198.19.0.1:80"}, "'198.18.0.256'"},
        {{"explain", "icmp 198.18.0.2:7 -> 198.19.0.1"}, "'198.18.0.2:7': a port needs tcp or udp"},
        {{"explain", "udp 198.18.0.2:99999 -> 198.19.0.1"}, "port '99999'"},
        {{"explain", "tcp 198.18.0.2 -> 2001:2::1"}, "one family"},
        {{"explain", "tcp 198.18.0.2 => 198.19.0.1"}, "'=>'"},
        {{"explain", "sctp 198.18.0.2 -> 198.19.0.1"}, "'sctp'"},
        {{"explain", "udp 198.18.0.2 -> 198.19.0.1 flags syn"}, "flags 'syn'"},
        {{"explain", "tcp 198.18.0.2 -> 198.19.0.1 flags syn,bogus"}, "'bogus'"},
        {{"explain", "tcp 198.18.0.2 -> 198.19.0.1 vlan 5000"}, "vlan '5000'"},
        {{"explain", "tcp 198.18.0.2 -> 198.19.0.1 len 20"}, "len 20"},
        {{"explain", "tcp 198.18.0.2 -> 198.19.0.1 colour red"}, "'colour'"},
        {{"explain", "tcp 198.18.0.2 -> 198.19.0.1 iif xdpctl-nope0"}, "'xdpctl-nope0'"},
        {{"explain", "tcp 198.18.0.2 -> 198.19.0.1", "--dir", "sideways"}, "'sideways'"},
        {{"explain", "--pcap", "/nonexistent/xdpctl.pcap"}, "'/nonexistent/xdpctl.pcap'"},
        {{"explain"}, "give a packet"},
    };
    for (const auto& b : bad) {
        CmdResult r = lab_->xdpctl_dut(b.args);
        EXPECT_EQ(r.exit_code, 2) << r;
        EXPECT_TRUE(contains(r.err, b.token)) << "expected " << b.token << " in: " << r;
    }
    // A file that is not a pcap.
    const std::string notpcap = write_file("# a rule file, not a capture\ndefault pass\n");
    CmdResult r = lab_->xdpctl_dut({"explain", "--pcap", notpcap});
    EXPECT_EQ(r.exit_code, 2) << r;
    EXPECT_TRUE(contains(r.err, notpcap) && contains(r.err, "not a pcap file")) << r;
    EXPECT_TRUE(before == state());
}

// The packet grammar on its own (no root needed): what it builds, and what it refuses.
TEST(PacketSpec, BuildsTheFrameItDescribes)
{
    using explain::build_frame;
    using explain::parse_packet_spec;
    auto s = parse_packet_spec({"tcp [2001:2::1]:1234 -> [2001:2::2]:80 vlan 100 vlan 200 flags syn,ack"});
    EXPECT_TRUE(s.ipv6);
    EXPECT_EQ(s.sport, 1234);
    EXPECT_EQ(s.dport, 80);
    EXPECT_EQ(s.vlans, (std::vector<uint16_t>{100, 200}));
    EXPECT_EQ(s.tcp_flags, tcp_flags::syn | tcp_flags::ack);
    // The same frame as the packet builder makes from the same headers.
    TcpOpts t;
    t.sport = 1234;
    t.dport = 80;
    t.flags = tcp_flags::syn | tcp_flags::ack;
    Ipv6Opts o;
    o.src = {0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    o.dst = {0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    EXPECT_EQ(build_frame(s), PacketBuilder().qinq(100, 200).ipv6(o).tcp(t).build());

    // Separate words and "->" without spaces read the same.
    auto w = parse_packet_spec({"udp", "198.18.0.2:5->198.19.0.1:6", "len", "100", "iif", "veth0"});
    EXPECT_FALSE(w.ipv6);
    EXPECT_EQ(w.dport, 6);
    EXPECT_EQ(w.iif, "veth0");
    EXPECT_EQ(build_frame(w).size(), 100u);

    // A later fragment: IPv4 offset set, the protocol kept, no L4 header.
    auto f = build_frame(parse_packet_spec({"udp 198.18.0.2 -> 198.19.0.1 fragment"}));
    ASSERT_GE(f.size(), 34u);
    EXPECT_EQ(f[14 + 9], 17);                       // protocol
    EXPECT_NE((f[14 + 6] << 8 | f[14 + 7]) & 0x1fff, 0);  // fragment offset
    EXPECT_EQ(f.size(), 14u + 20u + 8u);           // 8 bytes of fragment data
}

TEST(PacketSpec, RefusesWithTheToken)
{
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"tcp 198.18.0.2:70000 -> 198.19.0.1", "'70000'"},
        {"udp 198.18.0.2 -> 198.19.0.1 fragment flags syn", "flags 'syn'"},
        {"udp 198.18.0.2:1 -> 198.19.0.1 fragment", "'198.18.0.2:1'"},
        {"tcp [2001:2::1 -> 2001:2::2", "'[2001:2::1'"},
        {"icmp 2001:2::1 -> 2001:2::2", "icmpv6"},
        {"tcp 198.18.0.2 -> 198.19.0.1 vlan 1 vlan 2 vlan 3", "at most two"},
        {"tcp 198.18.0.2 -> 198.19.0.1 len 9000", "len '9000'"},
        {"tcp 198.18.0.2", "'->'"},
    };
    for (const auto& [spec, token] : bad) {
        try {
            explain::parse_packet_spec({spec});
            ADD_FAILURE() << spec << ": accepted";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), ExitCode::usage) << spec;
            EXPECT_TRUE(contains(e.what(), token)) << spec << ": " << e.what();
        }
    }
}

// The packet given as separate words, "->" among them (as from a script, not a shell).
TEST_F(Explain, PacketAsSeparateWords)
{
    apply_policy();
    CmdResult r = lab_->xdpctl_dut({"explain", "tcp", "198.18.0.2:1234", "->", "198.19.0.1:80", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_EQ(json::parse(r.out)["rule"]["id"], 2);
}

}  // namespace
}  // namespace xdpctl::test
