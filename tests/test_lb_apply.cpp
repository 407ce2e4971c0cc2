// The LB configuration in `xdpctl export`/`apply` files end to end: export then apply changes
// nothing (byte for byte), apply makes the VIPs and backends what the file says and keeps the
// counters of what it keeps, --dry-run and a file with a bad `lb` line change nothing at all
// (neither the filter policy nor the LB).
#include <unistd.h>

#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <bpf/bpf.h>

#include "abi/xdpctl_abi.h"
#include "stats/counters.h"
#include "netns_lab.h"
#include "util/unique_fd.h"

namespace xdpctl::test {
namespace {

constexpr uint64_t kMarked = 7;  // packets every counter slot holds before an apply

// The policy and the LB state are shared by every interface on the host: each test starts
// and ends with neither.
class LbApply : public NoPolicyTest {
protected:

    static std::string write_file(const std::string& text) { return write_temp_file(text, "lb"); }

    static nlohmann::json list() { return xdpctl_json({"lb", "list", "--json"}); }
    static void ok(const std::vector<std::string>& args) { xdpctl_ok(args); }

    // A filter policy and two VIPs, made with the commands a user types.
    static void configure()
    {
        ok({"set", "create", "clients"});
        ok({"set", "add", "clients", "198.18.0.0/16"});
        ok({"rule", "add", "--src", "@clients", "--proto", "udp", "--action", "drop"});
        ok({"lb", "vip", "add", "198.19.0.1:80/tcp"});
        ok({"lb", "vip", "add", "[2001:2::1]:443/udp", "--mode", "ipip", "--ipip-source",
            "2001:2::fe", "--hash", "3tuple", "--table-size", "251"});
        ok({"lb", "backend", "add", "198.19.0.1:80/tcp", "198.19.10.2", "--mac", "02:00:00:00:0a:02"});
        ok({"lb", "backend", "add", "198.19.0.1:80/tcp", "198.19.10.1", "--mac", "02:00:00:00:0a:01",
            "--weight", "3"});
        ok({"lb", "backend", "add", "[2001:2::1]:443/udp", "2001:2:0:a::1", "--mac",
            "02:00:00:00:0a:03"});
    }

    // Every VIP and backend counter slot holds kMarked packets on CPU 0: a slot that is
    // given out afresh is zeroed, one that is kept keeps them.
    static void mark_counters()
    {
        const char* maps[] = {"/sys/fs/bpf/xdpctl/maps/xdpctl_lb_vctr",
                              "/sys/fs/bpf/xdpctl/maps/xdpctl_lb_bctr"};
        const uint32_t sizes[] = {XDPCTL_LB_MAX_VIPS, XDPCTL_LB_MAX_BACKENDS};
        std::vector<xdpctl_lb_ctr> v(possible_cpus());
        v[0].packets = kMarked;
        for (int m = 0; m < 2; m++) {
            UniqueFd fd(bpf_obj_get(maps[m]));
            ASSERT_TRUE(fd) << maps[m];
            for (uint32_t i = 0; i < sizes[m]; i++)
                ASSERT_EQ(bpf_map_update_elem(fd.get(), &i, v.data(), BPF_ANY), 0) << maps[m] << " " << i;
        }
    }
};

TEST_F(LbApply, ExportThenApplyChangesNothing)
{
    configure();
    const std::string file = exported();
    EXPECT_NE(file.find("lb vip 198.19.0.1:80/tcp --mode dsr\n"), std::string::npos) << file;
    EXPECT_NE(file.find("lb backend 198.19.0.1:80/tcp 198.19.10.1 --mac 02:00:00:00:0a:01 --weight 3\n"),
              std::string::npos) << file;
    EXPECT_NE(file.find("lb vip [2001:2::1]:443/udp --mode ipip --ipip-source 2001:2::fe --hash 3tuple "
                        "--table-size 251\n"),
              std::string::npos) << file;
    const std::string path = write_file(file);

    CmdResult dry = xdpctl({"apply", "--dry-run", path});
    ASSERT_EQ(dry.exit_code, 0) << dry;
    EXPECT_EQ(dry.out, "0 change(s); nothing applied (--dry-run)\n");
    CmdResult same = xdpctl({"apply", path});
    ASSERT_EQ(same.exit_code, 0) << same;
    EXPECT_NE(same.out.find(": 0 change(s)"), std::string::npos) << same;
    EXPECT_EQ(exported(), file);

    // From nothing, the file makes the same state again.
    xdpctl_clear_policy();
    EXPECT_TRUE(list()["vips"].empty());
    CmdResult again = xdpctl({"apply", path});
    ASSERT_EQ(again.exit_code, 0) << again;
    EXPECT_EQ(exported(), file);
    const auto j = list();
    ASSERT_EQ(j["vips"].size(), 2u) << j.dump();
}

TEST_F(LbApply, ApplyMakesTheFileTheStateAndKeepsCountersOfWhatItKeeps)
{
    configure();
    mark_counters();
    // 198.19.0.1:80: kept; backend .1 kept with a new weight and MAC, .2 removed, .3 added.
    // [2001:2::1]:443: not in the file (removed). 198.19.0.5:53/udp: new.
    // 198.19.0.6:80/tcp: new, then its options change in a second apply (replaced).
    const std::string path = write_file("default pass\n"
                                        "lb vip 198.19.0.1:80/tcp\n"
                                        "lb backend 198.19.0.1:80/tcp 198.19.10.1 --mac 02:00:00:00:0b:01 --weight 5\n"
                                        "lb backend 198.19.0.1:80/tcp 198.19.10.3 --mac 02:00:00:00:0a:03\n"
                                        "lb vip 198.19.0.5:53/udp --mode ipip --hash 3tuple\n"
                                        "lb backend 198.19.0.5:53/udp 198.19.10.5 --mac 02:00:00:00:0a:05\n");
    CmdResult r = xdpctl({"apply", path});
    ASSERT_EQ(r.exit_code, 0) << r;
    // The rule and set are gone too.
    EXPECT_EQ(xdpctl({"rule", "list", "--json"}).out.find("clients"), std::string::npos);

    const auto j = list();
    ASSERT_EQ(j["vips"].size(), 2u) << j.dump();
    std::map<std::string, nlohmann::json> vips;
    for (const auto& v : j["vips"])
        vips[v["vip"].get<std::string>()] = v;
    ASSERT_TRUE(vips.count("198.19.0.1:80/tcp")) << j.dump();
    ASSERT_TRUE(vips.count("198.19.0.5:53/udp")) << j.dump();
    const auto& kept = vips["198.19.0.1:80/tcp"];
    EXPECT_EQ(kept["mode"], "dsr");
    EXPECT_EQ(kept["counters"]["packets"], kMarked);
    ASSERT_EQ(kept["backends"].size(), 2u) << kept.dump();
    std::map<std::string, nlohmann::json> bes;
    for (const auto& b : kept["backends"])
        bes[b["address"].get<std::string>()] = b;
    ASSERT_TRUE(bes.count("198.19.10.1") && bes.count("198.19.10.3")) << kept.dump();
    EXPECT_EQ(bes["198.19.10.1"]["weight"], 5);
    EXPECT_EQ(bes["198.19.10.1"]["mac"], "02:00:00:00:0b:01");
    EXPECT_EQ(bes["198.19.10.1"]["counters"]["packets"], kMarked);
    EXPECT_EQ(bes["198.19.10.3"]["counters"]["packets"], 0);
    const auto& fresh = vips["198.19.0.5:53/udp"];
    EXPECT_EQ(fresh["mode"], "ipip");
    EXPECT_EQ(fresh["hash"], "3tuple");
    EXPECT_EQ(fresh["counters"]["packets"], 0);
    ASSERT_EQ(fresh["backends"].size(), 1u);
    EXPECT_EQ(fresh["backends"][0]["counters"]["packets"], 0);

    // Both VIPs' tables hold only the file's backends: trace sends flows there.
    CmdResult t = xdpctl({"lb", "trace", "tcp 198.18.0.2:1234 -> 198.19.0.1:80", "--json"});
    ASSERT_EQ(t.exit_code, 0) << t;
    const std::string be = nlohmann::json::parse(t.out)["backend"].get<std::string>();
    EXPECT_TRUE(be == "198.19.10.1" || be == "198.19.10.3") << t;

    // A VIP whose options change is replaced: its counters restart.
    mark_counters();
    const std::string changed = write_file("lb vip 198.19.0.1:80/tcp\n"
                                           "lb vip 198.19.0.5:53/udp --mode dsr\n");
    CmdResult dry = xdpctl({"apply", "--dry-run", changed});
    ASSERT_EQ(dry.exit_code, 0) << dry;
    EXPECT_NE(dry.out.find("~ lb vip 198.19.0.5:53/udp --mode dsr (options changed"), std::string::npos) << dry;
    ASSERT_EQ(xdpctl({"apply", changed}).exit_code, 0);
    const auto after = list();  // the loop must not outlive it
    ASSERT_EQ(after["vips"].size(), 2u) << after.dump();
    for (const auto& v : after["vips"]) {
        if (v["vip"] == "198.19.0.5:53/udp") {
            EXPECT_EQ(v["mode"], "dsr");
            EXPECT_EQ(v["counters"]["packets"], 0);
        } else {
            EXPECT_EQ(v["counters"]["packets"], kMarked) << v.dump();
        }
        EXPECT_TRUE(v["backends"].empty()) << v.dump();
    }
}

TEST_F(LbApply, DryRunPrintsTheLbDifferenceAndChangesNothing)
{
    configure();
    const std::string before = exported();
    const std::string path = write_file("default pass\n"
                                        "lb vip 198.19.0.1:80/tcp\n"
                                        "lb backend 198.19.0.1:80/tcp 198.19.10.1 --mac 02:00:00:00:0a:01 --weight 4\n"
                                        "lb backend 198.19.0.1:80/tcp 198.19.10.4 --mac 02:00:00:00:0a:04\n"
                                        "lb vip 198.19.0.5:53/udp\n");
    CmdResult dry = xdpctl({"apply", "--dry-run", path});
    ASSERT_EQ(dry.exit_code, 0) << dry;
    for (const char* line : {"- lb vip [2001:2::1]:443/udp (1 backends)\n",
                             "- lb backend 198.19.0.1:80/tcp 198.19.10.2\n",
                             "~ lb backend 198.19.0.1:80/tcp 198.19.10.1 --mac 02:00:00:00:0a:01 --weight 4\n",
                             "+ lb backend 198.19.0.1:80/tcp 198.19.10.4 --mac 02:00:00:00:0a:04 --weight 1\n",
                             "+ lb vip 198.19.0.5:53/udp --mode dsr\n"})
        EXPECT_NE(dry.out.find(line), std::string::npos) << "missing: " << line << dry;
    // The rule and the set it removes too: 2 filter lines, 5 LB lines.
    EXPECT_NE(dry.out.find("7 change(s); nothing applied"), std::string::npos) << dry;
    EXPECT_EQ(exported(), before);
}

TEST_F(LbApply, ABadLbLineChangesNothing)
{
    configure();
    const std::string before = exported();
    const std::string list_before = list().dump();
    // Each file has a good filter change and good LB lines before the bad one.
    const std::string good = "default drop\n"
                             "rule --src 198.18.5.0/24 --action pass\n"
                             "lb vip 198.19.0.7:80/tcp\n"
                             "lb backend 198.19.0.7:80/tcp 198.19.10.7 --mac 02:00:00:00:0a:07\n";
    struct Case {
        std::string line, token;
    } cases[] = {
        {"lb vip 198.19.0.8:80/tcp --mode bogus", "bogus"},
        {"lb vip 198.19.0.8:80/sctp", "sctp"},
        {"lb vip 198.19.0.8:80/tcp --table-size 65536", "65536"},
        {"lb vip 198.19.0.8:80/tcp --ipip-source 198.19.0.9", "198.19.0.9"},
        {"lb vip 198.19.0.8:80/tcp --frobnicate", "--frobnicate"},
        {"lb vip 198.19.0.7:80/tcp", "198.19.0.7:80/tcp"},
        {"lb backend 198.19.0.8:80/tcp 198.19.10.8 --mac 02:00:00:00:0a:08", "198.19.0.8:80/tcp"},
        {"lb backend 198.19.0.7:80/tcp 198.19.10.7 --mac 02:00:00:00:0a:07", "198.19.10.7"},
        {"lb backend 198.19.0.7:80/tcp 198.19.10.8 --mac 02:00:00:00:0a", "02:00:00:00:0a"},
        {"lb backend 198.19.0.7:80/tcp 198.19.10.8 --mac 02:00:00:00:0a:08 --weight 1001", "1001"},
        {"lb backend 198.19.0.7:80/tcp 198.19.10.99", "198.19.10.99"},
        {"lb frob 198.19.0.7:80/tcp", "frob"},
    };
    for (const auto& c : cases) {
        const std::string path = write_file(good + c.line + "\n");
        CmdResult r = xdpctl({"apply", path});
        EXPECT_EQ(r.exit_code, 2) << c.line << "\n" << r;
        EXPECT_NE(r.err.find(c.token), std::string::npos) << "the error should name '" << c.token << "'\n" << r;
        EXPECT_NE(r.err.find(path + ":5:"), std::string::npos) << "the error should name the line\n" << r;
        EXPECT_EQ(exported(), before) << c.line;
        EXPECT_EQ(list().dump(), list_before) << c.line;
    }
}

}  // namespace
}  // namespace xdpctl::test
