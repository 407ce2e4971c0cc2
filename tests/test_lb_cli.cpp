// `xdpctl lb` end to end: VIPs and backends set with the CLI land in the pinned maps (read
// back with `lb list --json`), trace answers from them, a backend's MAC comes from the
// neighbour table of the -n namespace, and every bad input exits 2 naming the token and
// leaves the state exactly as it was.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "abi/xdpctl_abi.h"
#include "netns_lab.h"
#include "util/unique_fd.h"

namespace xdpctl::test {
namespace {

// The LB state is shared by every interface on the host: each test starts and ends empty.
class LbCli : public ::testing::Test {
protected:
    void SetUp() override
    {
        XDPCTL_REQUIRE_ROOT();
        clear();
    }
    void TearDown() override { clear(); }

    static void clear()
    {
        const nlohmann::json all = list();  // the loop must not outlive it
        for (const auto& v : all["vips"]) {
            CmdResult r = xdpctl({"lb", "vip", "del", v["vip"].get<std::string>()});
            ASSERT_EQ(r.exit_code, 0) << r;
        }
    }

    static nlohmann::json list() { return xdpctl_json({"lb", "list", "--json"}); }
    static void ok(const std::vector<std::string>& args) { xdpctl_ok(args); }
};

TEST_F(LbCli, VipsAndBackendsRoundTrip)
{
    ok({"lb", "vip", "add", "198.19.0.1:80/tcp"});
    ok({"lb", "vip", "add", "[2001:2::1]:443/udp", "--mode", "ipip", "--ipip-source", "2001:2::fe",
        "--hash", "3tuple", "--table-size", "251"});
    ok({"lb", "backend", "add", "198.19.0.1:80/tcp", "198.19.10.1", "--mac", "02:00:00:00:0a:01",
        "--weight", "3"});
    ok({"lb", "backend", "add", "198.19.0.1:80/tcp", "198.19.10.2", "--mac", "02:00:00:00:0a:02"});
    ok({"lb", "backend", "add", "[2001:2::1]:443/udp", "2001:2:0:a::1", "--mac", "02:00:00:00:0a:03"});

    auto j = list();
    ASSERT_EQ(j["vips"].size(), 2u) << j.dump();
    const auto& v4 = j["vips"][0];
    EXPECT_EQ(v4["vip"], "198.19.0.1:80/tcp");
    EXPECT_EQ(v4["mode"], "dsr");
    EXPECT_EQ(v4["hash"], "5tuple");
    EXPECT_EQ(v4["table_size"], 65537);
    ASSERT_EQ(v4["backends"].size(), 2u);
    EXPECT_EQ(v4["backends"][0]["address"], "198.19.10.1");
    EXPECT_EQ(v4["backends"][0]["mac"], "02:00:00:00:0a:01");
    EXPECT_EQ(v4["backends"][0]["weight"], 3);
    EXPECT_EQ(v4["backends"][1]["weight"], 1);
    const auto& v6 = j["vips"][1];
    EXPECT_EQ(v6["vip"], "[2001:2::1]:443/udp");
    EXPECT_EQ(v6["mode"], "ipip");
    EXPECT_EQ(v6["hash"], "3tuple");
    EXPECT_EQ(v6["table_size"], 251);
    EXPECT_EQ(v6["ipip_source"], "2001:2::fe");
    EXPECT_EQ(v6["backends"][0]["address"], "2001:2:0:a::1");

    // Draining, then deleting.
    ok({"lb", "backend", "set", "198.19.0.1:80/tcp", "198.19.10.1", "--weight", "0"});
    EXPECT_EQ(list()["vips"][0]["backends"][0]["weight"], 0);
    ok({"lb", "backend", "del", "198.19.0.1:80/tcp", "198.19.10.1"});
    EXPECT_EQ(list()["vips"][0]["backends"].size(), 1u);
    ok({"lb", "vip", "del", "198.19.0.1:80/tcp"});
    j = list();
    ASSERT_EQ(j["vips"].size(), 1u);
    EXPECT_EQ(j["vips"][0]["vip"], "[2001:2::1]:443/udp");
}

// `status` sums the LB up: VIPs, backends, the connection table.
TEST_F(LbCli, StatusCountsVipsAndBackends)
{
    auto lb_status = [] {
        CmdResult r = xdpctl({"status", "--json"});
        EXPECT_EQ(r.exit_code, 0) << r;
        return nlohmann::json::parse(r.out)["load_balancer"];
    };
    ok({"lb", "vip", "add", "198.19.0.1:80/tcp"});
    ok({"lb", "vip", "add", "198.19.0.2:0/udp"});
    ok({"lb", "backend", "add", "198.19.0.1:80/tcp", "198.19.10.1", "--mac", "02:00:00:00:0a:01"});
    ok({"lb", "backend", "add", "198.19.0.1:80/tcp", "198.19.10.2", "--mac", "02:00:00:00:0a:02"});
    ok({"lb", "backend", "add", "198.19.0.2:0/udp", "198.19.10.3", "--mac", "02:00:00:00:0a:03"});
    auto j = lb_status();
    ASSERT_TRUE(j.is_object()) << j.dump();
    EXPECT_EQ(j["vips"], 2);
    EXPECT_EQ(j["backends"], 3);
    EXPECT_GT(j["conntrack_entries"].get<uint64_t>(), 0u);
    EXPECT_EQ(j["conntrack_hits"], list()["counters"]["conntrack_hits"]);
    ok({"lb", "vip", "del", "198.19.0.1:80/tcp"});
    j = lb_status();
    EXPECT_EQ(j["vips"], 1);
    EXPECT_EQ(j["backends"], 1);
    CmdResult text = xdpctl({"status"});
    EXPECT_NE(text.out.find("load balancer: 1 VIPs, 1 backends"), std::string::npos) << text;
}

TEST_F(LbCli, TraceNamesTheBackendAndChangesNoCounter)
{
    ok({"lb", "vip", "add", "198.19.0.1:80/tcp"});
    ok({"lb", "backend", "add", "198.19.0.1:80/tcp", "198.19.10.1", "--mac", "02:00:00:00:0a:01"});
    CmdResult t = xdpctl({"lb", "trace", "tcp 198.18.0.2:1234 -> 198.19.0.1:80", "--json"});
    ASSERT_EQ(t.exit_code, 0) << t;
    auto j = nlohmann::json::parse(t.out);
    EXPECT_EQ(j["vip"], "198.19.0.1:80/tcp");
    EXPECT_EQ(j["backend"], "198.19.10.1");
    EXPECT_EQ(j["conntrack_hit"], false);
    CmdResult none = xdpctl({"lb", "trace", "udp 198.18.0.2:1234 -> 198.19.0.1:80", "--json"});
    ASSERT_EQ(none.exit_code, 0) << none;
    EXPECT_TRUE(nlohmann::json::parse(none.out)["vip"].is_null());
    // With one backend drained there is none left.
    ok({"lb", "backend", "set", "198.19.0.1:80/tcp", "198.19.10.1", "--weight", "0"});
    j = nlohmann::json::parse(xdpctl({"lb", "trace", "tcp 198.18.0.2:1234 -> 198.19.0.1:80", "--json"}).out);
    EXPECT_TRUE(j["backend"].is_null());
    const auto c = list()["counters"];
    EXPECT_EQ(c["conntrack_hits"], 0);
    EXPECT_EQ(c["conntrack_misses"], 0);
}

TEST_F(LbCli, BadInputChangesNothing)
{
    ok({"lb", "vip", "add", "198.19.0.1:80/tcp", "--mode", "ipip"});
    ok({"lb", "backend", "add", "198.19.0.1:80/tcp", "198.19.10.1", "--mac", "02:00:00:00:0a:01"});
    const std::string before = list().dump();

    struct Case {
        std::vector<std::string> args;
        std::string token;  // the error names it
    } cases[] = {
        {{"lb", "vip", "add", "198.19.0.300:80/tcp"}, "198.19.0.300"},
        {{"lb", "vip", "add", "198.19.0.2:80/sctp"}, "sctp"},
        {{"lb", "vip", "add", "198.19.0.2:99999/tcp"}, "99999"},
        {{"lb", "vip", "add", "2001:2::1:80/tcp"}, "2001:2::1:80/tcp"},
        {{"lb", "vip", "add", "198.19.0.2:80"}, "198.19.0.2:80"},
        {{"lb", "vip", "add", "198.19.0.2:80/tcp", "--table-size", "65536"}, "65536"},
        {{"lb", "vip", "add", "198.19.0.2:80/tcp", "--mode", "ipip", "--ipip-source", "2001:2::1"},
         "2001:2::1"},
        {{"lb", "vip", "add", "198.19.0.2:80/tcp", "--ipip-source", "198.19.0.9"}, "198.19.0.9"},
        {{"lb", "vip", "add", "198.19.0.1:80/tcp"}, "198.19.0.1:80/tcp"},
        {{"lb", "vip", "del", "198.19.0.1:81/tcp"}, "198.19.0.1:81/tcp"},
        {{"lb", "backend", "add", "198.19.0.1:81/tcp", "198.19.10.2", "--mac", "02:00:00:00:0a:02"},
         "198.19.0.1:81/tcp"},
        {{"lb", "backend", "add", "198.19.0.1:80/tcp", "198.19.10.1", "--mac", "02:00:00:00:0a:01"},
         "198.19.10.1"},
        {{"lb", "backend", "add", "198.19.0.1:80/tcp", "198.19.10.2", "--mac", "02:00:00:00:0a"},
         "02:00:00:00:0a"},
        {{"lb", "backend", "add", "198.19.0.1:80/tcp", "198.19.10.2", "--mac", "02:00:00:00:0a:02",
          "--weight", "1001"},
         "1001"},
        {{"lb", "backend", "add", "198.19.0.1:80/tcp", "2001:2::9", "--mac", "02:00:00:00:0a:02"},
         "2001:2::9"},
        {{"lb", "backend", "add", "198.19.0.1:80/tcp", "198.19.10.99"}, "198.19.10.99"},
        {{"lb", "backend", "set", "198.19.0.1:80/tcp", "198.19.10.7", "--weight", "2"}, "198.19.10.7"},
        {{"lb", "backend", "del", "198.19.0.1:80/tcp", "198.19.10.7"}, "198.19.10.7"},
        {{"lb", "trace", "tcp 198.18.0.2:1234 => 198.19.0.1:80"}, "=>"},
        {{"lb", "trace", "icmp 198.18.0.2:1234 -> 198.19.0.1:80"}, "icmp"},
    };
    for (const auto& c : cases) {
        CmdResult r = xdpctl(c.args);
        EXPECT_EQ(r.exit_code, 2) << r;
        EXPECT_NE(r.err.find(c.token), std::string::npos) << "the error should name '" << c.token << "'\n" << r;
        EXPECT_EQ(list().dump(), before) << r;
    }
}

// The backend's MAC from the neighbour table of the namespace named with -n.
TEST_F(LbCli, BackendMacFromTheNeighbourTable)
{
    NetnsLab lab;
    ok({"lb", "vip", "add", "198.19.0.1:80/tcp"});
    ok({"-n", lab.dut().ns, "lb", "backend", "add", "198.19.0.1:80/tcp", lab.peer().ipv4});
    EXPECT_EQ(list()["vips"][0]["backends"][0]["mac"], lab.peer().mac);
    // Not in this namespace's table: an error naming the address.
    CmdResult r = xdpctl({"lb", "backend", "add", "198.19.0.1:80/tcp", lab.peer().ipv4});
    EXPECT_EQ(r.exit_code, 2) << r;
}

size_t ct_max_entries()
{
    UniqueFd ct(bpf_obj_get("/sys/fs/bpf/xdpctl/maps/xdpctl_lb_ct"));
    if (!ct)
        return 0;
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_map_get_info_by_fd(ct.get(), &info, &len) != 0)
        return 0;
    return info.max_entries;
}

// The connection table's size is chosen by any load while no other interface runs on it,
// also after a policy or LB command made the table with the default size; a resize that
// other interfaces would not see is refused and leaves nothing behind. VIPs outlive the
// last unload (the shared maps stay while a VIP exists).
TEST_F(LbCli, ConntrackSizeAndVipsAcrossLoads)
{
    NetnsLab lab;
    clear();
    run_cmd({xdpctl_bin(), "unload", "--all", "--yes"});
    // An LB command before any load makes the shared maps, the table with the default size.
    ok({"lb", "vip", "add", "198.19.0.1:80/tcp"});
    EXPECT_EQ(ct_max_entries(), size_t(XDPCTL_LB_CT_DEFAULT));
    // The first load still chooses the size.
    CmdResult load = lab.load_result({"--lb-conntrack", "1000"});
    ASSERT_EQ(load.exit_code, 0) << load;
    EXPECT_EQ(ct_max_entries(), 1000u);
    EXPECT_NE(load.out.find("resized"), std::string::npos) << load;
    // This interface alone runs on it: a reload may resize it again.
    CmdResult bigger = lab.load_result({"--force", "--lb-conntrack", "2000"});
    ASSERT_EQ(bigger.exit_code, 0) << bigger;
    EXPECT_EQ(ct_max_entries(), 2000u);
    // A reload without the option keeps the table (and its size).
    CmdResult again = lab.load_result({"--force"});
    EXPECT_EQ(again.exit_code, 0) << again;
    EXPECT_EQ(ct_max_entries(), 2000u);
    {
        // Another interface runs on the table: a resize is refused, naming the value and the
        // interface, and the refused load of a new interface leaves no trace in status.
        NetnsLab other;
        CmdResult refused = other.load_result({"--lb-conntrack", "3000"});
        EXPECT_EQ(refused.exit_code, 2) << refused;
        EXPECT_NE(refused.err.find("3000"), std::string::npos) << refused;
        EXPECT_NE(refused.err.find(lab.dut().ifname), std::string::npos) << refused;
        EXPECT_EQ(ct_max_entries(), 2000u);
        const auto st = xdpctl_json({"status", "--json"});
        EXPECT_EQ(st.dump().find(other.dut().ns), std::string::npos) << st.dump();
    }
    // The last unload keeps the VIP.
    CmdResult un = lab.xdpctl_dut({"unload", lab.dut().ifname});
    ASSERT_EQ(un.exit_code, 0) << un;
    auto j = list();
    ASSERT_EQ(j["vips"].size(), 1u) << j.dump();
    EXPECT_EQ(j["vips"][0]["vip"], "198.19.0.1:80/tcp");
}

// xdpctl 0.1.0 pinned a per-CPU connection table: the next load converts it to the shared
// one and carries its connections over (an upgrade keeps established flows on their backend).
TEST_F(LbCli, LoadConvertsAPerCpuConnectionTable)
{
    NetnsLab lab;
    clear();
    run_cmd({xdpctl_bin(), "unload", "--all", "--yes"});
    ASSERT_EQ(ct_max_entries(), 0u) << "a connection table is still pinned";
    run_ok({"mkdir", "-p", "/sys/fs/bpf/xdpctl/maps"});
    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_COMMON_LRU);
    UniqueFd old(bpf_map_create(BPF_MAP_TYPE_LRU_PERCPU_HASH, "xdpctl_lb_ct", sizeof(xdpctl_lb_flow_key),
                                sizeof(xdpctl_lb_flow), 4096, &opts));
    ASSERT_TRUE(old);
    xdpctl_lb_flow_key k{};
    k.saddr[0] = htonl(0xc6120001);  // 198.18.0.1
    k.daddr[0] = htonl(0xc6130001);  // 198.19.0.1
    k.sport = htons(40000);
    k.dport = htons(80);
    k.proto = IPPROTO_TCP;
    k.family = 4;
    // Seen on the last CPU only: the others hold zeroes (not valid).
    std::vector<xdpctl_lb_flow> per_cpu(libbpf_num_possible_cpus());
    per_cpu.back() = xdpctl_lb_flow{7, 3, XDPCTL_LB_FLOW_F_VALID, 0};
    ASSERT_EQ(bpf_map_update_elem(old.get(), &k, per_cpu.data(), BPF_ANY), 0);
    ASSERT_EQ(bpf_obj_pin(old.get(), "/sys/fs/bpf/xdpctl/maps/xdpctl_lb_ct"), 0);

    CmdResult load = lab.load_result({});
    ASSERT_EQ(load.exit_code, 0) << load;
    EXPECT_NE(load.out.find("1 connection(s) carried over"), std::string::npos) << load;
    UniqueFd ct(bpf_obj_get("/sys/fs/bpf/xdpctl/maps/xdpctl_lb_ct"));
    ASSERT_TRUE(ct);
    bpf_map_info info{};
    __u32 len = sizeof(info);
    ASSERT_EQ(bpf_map_get_info_by_fd(ct.get(), &info, &len), 0);
    EXPECT_EQ(info.type, BPF_MAP_TYPE_LRU_HASH);
    EXPECT_EQ(info.max_entries, 4096u) << "the size is kept";
    xdpctl_lb_flow fl{};
    ASSERT_EQ(bpf_map_lookup_elem(ct.get(), &k, &fl), 0);
    EXPECT_EQ(fl.backend, 7u);
    EXPECT_EQ(fl.vip_id, 3u);
    CmdResult un = lab.xdpctl_dut({"unload", lab.dut().ifname});
    ASSERT_EQ(un.exit_code, 0) << un;
}

}  // namespace
}  // namespace xdpctl::test
