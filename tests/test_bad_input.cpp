// Bad input, one row each (issue 11): every command line (with the file it reads) must exit
// with the given code, say what was wrong (the row's substring: the file, line or token),
// and change nothing: `export` and `lb list --json` are byte-identical before and after.
// Each row starts from the same policy and LB configuration, so a command that wipes or
// half-applies them is seen.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "netns_lab.h"

namespace xdpctl::test {
namespace {

// Sets a drop rule uses, sets of one family each, VIPs of both families with a backend.
const char* const kBaseline = R"(default pass
set bl 198.18.5.0/24
set v4only 198.18.6.0/24
set v6only 2001:2::/64
rule --id 3 --src @bl --action drop
rule --id 4 --src 198.18.7.0/24 --proto tcp --dport 80 --action count
lb vip 198.19.0.1:80/tcp --mode dsr
lb backend 198.19.0.1:80/tcp 198.18.0.10 --mac 02:00:00:00:00:0a --weight 1
lb vip [2001:2::1]:80/tcp --mode dsr
lb backend [2001:2::1]:80/tcp 2001:2::10 --mac 02:00:00:00:00:0b --weight 1
)";

const char* const kMac = "02:00:00:00:00:01";

struct BadInput {
    std::string name;
    std::vector<std::string> args;  // "{file}": the row's file
    std::string file;               // written to a temp file when the row has one
    std::string message;            // a substring of stderr; "{file}" as above
    int exit_code = 2;
    bool unprivileged = false;  // run as nobody (setpriv)
};

std::ostream& operator<<(std::ostream& os, const BadInput& b)
{
    return os << b.name;
}

std::string with_file(std::string s, const std::string& path)
{
    for (size_t p; (p = s.find("{file}")) != std::string::npos;)
        s.replace(p, 6, path);
    return s;
}

// An apply file of one VIP with n backends (after the baseline's filter part).
std::string lb_file(size_t n, const std::string& vip_options = "")
{
    std::string f = "default pass\nlb vip 198.19.0.9:80/tcp --mode dsr" + vip_options + "\n";
    for (size_t i = 0; i < n; i++)
        f += fmt::format("lb backend 198.19.0.9:80/tcp 198.18.{}.{} --mac {} --weight 1\n",
                         i / 250, i % 250 + 1, kMac);
    return f;
}

std::vector<BadInput> rows()
{
    std::vector<BadInput> r = {
        // Files that are not files, never end, or are not text.
        {"apply_directory", {"apply", "/tmp"}, "", "'/tmp': Is a directory"},
        {"apply_dry_run_directory", {"apply", "--dry-run", "/tmp"}, "", "'/tmp': Is a directory"},
        {"set_load_directory", {"set", "load", "bl", "/tmp"}, "", "'/tmp': Is a directory"},
        {"explain_pcap_directory", {"explain", "--pcap", "/tmp"}, "", "'/tmp': Is a directory"},
        {"apply_dev_zero", {"apply", "/dev/zero"}, "", "'/dev/zero' is over 256 MiB"},
        {"set_load_dev_zero", {"set", "load", "bl", "/dev/zero"}, "", "'/dev/zero' is over 256 MiB"},
        {"explain_pcap_dev_zero", {"explain", "--pcap", "/dev/zero"}, "", "'/dev/zero' is over 256 MiB"},
        {"apply_nul_byte", {"apply", "{file}"}, std::string("default pass\nset a\0b\n", 21),
         "{file}:2: a NUL byte"},
        {"set_load_nul_byte", {"set", "load", "bl", "{file}"}, std::string("198.18.5.0/24\n\0\n", 16),
         "{file}:2: a NUL byte"},
        {"apply_long_line", {"apply", "{file}"}, "default pass\n#" + std::string(70000, 'x') + "\n",
         "{file}:2: a line of 70001 bytes"},
        {"set_load_long_line", {"set", "load", "bl", "{file}"},
         "198.18.5.0/24 #" + std::string(5000, 'x') + "\n", "{file}:1: a line of"},
        // --dry-run runs the commit's checks.
        {"apply_dry_run_burst", {"apply", "--dry-run", "{file}"},
         "rule --action rate-limit 1000 --burst 10000000000\n", "--burst '10000000000'"},
        {"apply_burst", {"apply", "{file}"}, "rule --action rate-limit 1000 --burst 10000000000\n",
         "--burst '10000000000'"},
        {"apply_dry_run_4097_backends", {"apply", "--dry-run", "{file}"}, lb_file(4097),
         "more than 4096 backends"},
        // Set names: one grammar everywhere a set is named.
        {"set_name_space", {"set", "create", "sp ace"}, "", "'sp ace' is not a valid set name"},
        {"set_name_hash", {"set", "create", "#hash"}, "", "'#hash' is not a valid set name"},
        {"set_name_slash", {"set", "create", "a/b"}, "", "'a/b' is not a valid set name"},
        {"set_name_newline", {"set", "create", "a\nb"}, "", "'a\\x0ab' is not a valid set name"},
        {"set_add_bad_name", {"set", "add", "a/b", "198.18.0.0/24"}, "", "'a/b' is not a valid set name"},
        {"set_load_bad_name", {"set", "load", "a b", "{file}"}, "198.18.0.0/24\n",
         "'a b' is not a valid set name"},
        {"set_del_bad_name", {"set", "del", "#x", "198.18.0.0/24"}, "", "'#x' is not a valid set name"},
        {"rule_bad_set_name", {"rule", "add", "--src", "@a/b", "--action", "drop"}, "",
         "--src: 'a/b' is not a valid set name"},
        {"file_set_hash_in_name", {"apply", "{file}"}, "set x#y 198.18.0.0/24\n",
         "{file}:1: 'x#y' is not a valid set name"},
        {"file_set_bad_name", {"apply", "{file}"}, "set -x\n", "{file}:1: '-x' is not a valid set name"},
        // Addresses that can never match together.
        {"sets_of_other_families", {"rule", "add", "--src", "@v4only", "--dst", "@v6only", "--action", "drop"},
         "", "@v4only and --dst @v6only hold no addresses of the same IP family"},
        {"set_and_prefix_of_other_families",
         {"rule", "add", "--src", "@v4only", "--dst", "2001:2::1", "--action", "drop"}, "",
         "can never match"},
        {"icmp_on_v6_set", {"rule", "add", "--proto", "icmp", "--src", "@v6only", "--action", "drop"},
         "", "--proto icmp does not fit the IPv6 addresses of --src @v6only"},
        {"file_sets_of_other_families", {"apply", "{file}"},
         "set a 198.18.0.0/24\nset b 2001:2::/64\nrule --src @a --dst @b --action drop\n",
         "--src @a and --dst @b hold no addresses"},
        // LB addresses.
        {"lb_v4_backend_on_v6_vip", {"lb", "backend", "add", "[2001:2::1]:80/tcp", "198.18.0.11", "--mac", kMac},
         "", "backend 198.18.0.11 is not of the VIP [2001:2::1]:80/tcp's IP version"},
        {"lb_v6_backend_on_v4_vip", {"lb", "backend", "add", "198.19.0.1:80/tcp", "2001:2::11", "--mac", kMac},
         "", "backend 2001:2::11 is not of the VIP 198.19.0.1:80/tcp's IP version"},
        {"lb_file_v4_backend_on_v6_vip", {"apply", "{file}"},
         fmt::format("lb vip [2001:2::2]:80/tcp\nlb backend [2001:2::2]:80/tcp 198.18.0.11 --mac {}\n", kMac),
         "{file}:2: backend 198.18.0.11 is not of the VIP"},
        {"lb_backend_is_vip", {"lb", "backend", "add", "198.19.0.1:80/tcp", "198.19.0.1", "--mac", kMac},
         "", "backend 198.19.0.1 is the VIP's own address"},
        {"lb_vip_zero", {"lb", "vip", "add", "0.0.0.0:80/tcp"}, "", "VIP 0.0.0.0 is an unspecified"},
        {"lb_vip_broadcast", {"lb", "vip", "add", "255.255.255.255:80/tcp"}, "", "VIP 255.255.255.255 is the broadcast"},
        {"lb_vip_multicast", {"lb", "vip", "add", "224.0.0.1:80/tcp"}, "", "VIP 224.0.0.1 is a multicast"},
        {"lb_vip_loopback", {"lb", "vip", "add", "127.0.0.1:80/tcp"}, "", "VIP 127.0.0.1 is a loopback"},
        {"lb_vip_v6_zero", {"lb", "vip", "add", "[::]:80/tcp"}, "", "VIP :: is the unspecified"},
        {"lb_vip_v6_multicast", {"lb", "vip", "add", "[ff02::1]:80/tcp"}, "", "VIP ff02::1 is a multicast"},
        {"lb_vip_v6_loopback", {"lb", "vip", "add", "[::1]:80/tcp"}, "", "VIP ::1 is the loopback"},
        {"lb_file_vip_multicast", {"apply", "{file}"}, "lb vip 224.0.0.1:80/tcp\n",
         "{file}:1: VIP 224.0.0.1 is a multicast"},
        {"lb_ipip_source_multicast",
         {"lb", "vip", "add", "198.19.0.2:80/tcp", "--mode", "ipip", "--ipip-source", "224.0.0.2"}, "",
         "ipip source 224.0.0.2 is a multicast"},
        {"lb_backend_zero", {"lb", "backend", "add", "198.19.0.1:80/tcp", "0.0.0.0", "--mac", kMac}, "",
         "backend 0.0.0.0 is an unspecified"},
        {"lb_backend_loopback", {"lb", "backend", "add", "198.19.0.1:80/tcp", "127.0.0.1", "--mac", kMac},
         "", "backend 127.0.0.1 is a loopback"},
        {"lb_mac_multicast", {"lb", "backend", "add", "198.19.0.1:80/tcp", "198.18.0.11", "--mac", "01:00:5e:00:00:01"},
         "", "MAC 01:00:5e:00:00:01 is a multicast or broadcast"},
        {"lb_mac_broadcast", {"lb", "backend", "add", "198.19.0.1:80/tcp", "198.18.0.11", "--mac", "ff:ff:ff:ff:ff:ff"},
         "", "MAC ff:ff:ff:ff:ff:ff is a multicast or broadcast"},
        {"lb_mac_zero", {"lb", "backend", "add", "198.19.0.1:80/tcp", "198.18.0.11", "--mac", "00:00:00:00:00:00"},
         "", "MAC 00:00:00:00:00:00 is not an address"},
        {"lb_table_smaller_than_backends", {"apply", "{file}"}, lb_file(3, " --table-size 2"),
         "a Maglev table of 2 entries cannot hold 3 backends"},
        {"lb_table_minimum_named", {"apply", "--dry-run", "{file}"}, lb_file(8, " --table-size 7"),
         "the table size must be a prime of at least 11"},
        // Rule ids, intervals.
        {"rule_del_same_id_twice", {"rule", "del", "3", "3"}, "", "rule id 3 given twice"},
        {"rule_list_interval_nan", {"rule", "list", "--interval", "nan"}, "", "--interval"},
        {"rule_list_interval_inf", {"rule", "list", "--interval", "inf"}, "", "--interval"},
        {"rule_list_interval_negative", {"rule", "list", "--interval", "-1"}, "", "--interval"},
        {"rule_list_interval_zero", {"rule", "list", "--interval", "0"}, "", "--interval"},
        {"stats_interval_nan", {"stats", "--all", "--interval", "nan"}, "", "--interval"},
        // Unknown subcommands are named.
        {"rule_foo", {"rule", "foo"}, "", "unknown subcommand 'foo' of 'rule'"},
        {"set_foo", {"set", "foo"}, "", "unknown subcommand 'foo' of 'set'"},
        {"lb_foo", {"lb", "foo"}, "", "unknown subcommand 'foo' of 'lb'"},
        {"lb_vip_foo", {"lb", "vip", "foo"}, "", "unknown subcommand 'foo' of 'lb vip'"},
        {"policy_foo", {"policy", "foo"}, "", "unknown subcommand 'foo' of 'policy'"},
        // -n is checked by every command.
        {"netns_rule_list", {"-n", "bad/ns", "rule", "list"}, "", "'bad/ns' is not a valid network namespace"},
        {"netns_after_command", {"rule", "list", "-n", "bad/ns"}, "", "'bad/ns' is not a valid network namespace"},
        {"netns_rule_add", {"-n", "bad/ns", "rule", "add", "--action", "drop"}, "", "'bad/ns' is not a valid"},
        {"netns_export", {"-n", "bad/ns", "export"}, "", "'bad/ns' is not a valid network namespace"},
        {"netns_apply", {"-n", "bad/ns", "apply", "{file}"}, "default pass\n", "'bad/ns' is not a valid"},
        {"netns_set_list", {"-n", "bad/ns", "set", "list"}, "", "'bad/ns' is not a valid network namespace"},
        {"netns_lb_list", {"-n", "bad/ns", "lb", "list"}, "", "'bad/ns' is not a valid network namespace"},
        {"netns_status", {"-n", "bad/ns", "status"}, "", "'bad/ns' is not a valid network namespace"},
        // Without privileges: the message the other commands give, not the lock file's EACCES.
        {"nonroot_rule_list", {"rule", "list"}, "", "missing privileges", 1, true},
        {"nonroot_set_list", {"set", "list"}, "", "missing privileges", 1, true},
        {"nonroot_export", {"export"}, "", "missing privileges", 1, true},
        {"nonroot_lb_list", {"lb", "list"}, "", "missing privileges", 1, true},
    };
    return r;
}

class BadInputTest : public NoPolicyTest, public ::testing::WithParamInterface<BadInput> {
protected:
    void SetUp() override
    {
        NoPolicyTest::SetUp();
        if (!IsSkipped())
            xdpctl_ok({"apply", write_temp_file(kBaseline, "bad-input-baseline")});
    }
};

std::string lb_json()
{
    CmdResult r = xdpctl({"lb", "list", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r;
    return r.out;
}

TEST_P(BadInputTest, RefusedAndNothingChanged)
{
    const BadInput& row = GetParam();
    const std::string path = row.file.empty() ? "" : write_temp_file(row.file, "bad-input");
    std::vector<std::string> argv;
    if (row.unprivileged)
        argv = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"};
    argv.push_back(xdpctl_bin());
    for (const auto& a : row.args)
        argv.push_back(with_file(a, path));

    const std::string policy_before = exported(), lb_before = lb_json();
    // /dev/zero rows: a reader without a limit would run until killed here.
    CmdResult r = run_cmd(argv, std::chrono::seconds(20));
    EXPECT_EQ(r.exit_code, row.exit_code) << r;
    const std::string msg = with_file(row.message, path);
    EXPECT_NE(r.err.find(msg), std::string::npos) << "expected '" << msg << "' in: " << r;
    EXPECT_EQ(r.err.find("A subcommand is required"), std::string::npos) << r;
    EXPECT_EQ(exported(), policy_before);
    EXPECT_EQ(lb_json(), lb_before);
    if (!path.empty())
        std::remove(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(Rows, BadInputTest, ::testing::ValuesIn(rows()),
                         [](const auto& info) { return info.param.name; });

// `apply --dry-run` says OK, so apply must do it whole: here the new VIP's 4095 backends
// and the other VIP's swapped backend fill every slot only once the swapped-out one is
// freed (it was applied in address order and failed half-way, exit 1).
class ApplyTest : public NoPolicyTest {};

TEST_F(ApplyTest, DryRunOkMeansApplyWhole)
{
    xdpctl_ok({"rule", "add", "--action", "count"});
    xdpctl_ok({"lb", "vip", "add", "198.19.0.20:80/tcp"});
    xdpctl_ok({"lb", "backend", "add", "198.19.0.20:80/tcp", "198.18.100.1", "--mac", kMac});
    std::string f = lb_file(4095) + "lb vip 198.19.0.20:80/tcp --mode dsr\n" +
                    fmt::format("lb backend 198.19.0.20:80/tcp 198.18.100.2 --mac {} --weight 1\n", kMac);
    const std::string path = write_temp_file(f, "apply-whole");
    CmdResult dry = xdpctl({"apply", "--dry-run", path});
    ASSERT_EQ(dry.exit_code, 0) << dry;
    CmdResult r = xdpctl({"apply", path});
    EXPECT_EQ(r.exit_code, 0) << r;
    // What export prints is the file, in its canonical order.
    const std::string out = exported();
    EXPECT_EQ(out.rfind("default pass\nlb vip 198.19.0.9:80/tcp --mode dsr\n", 0), 0u) << out.substr(0, 300);
    EXPECT_NE(out.find("lb backend 198.19.0.20:80/tcp 198.18.100.2 "), std::string::npos);
    EXPECT_EQ(out.find("198.18.100.1 "), std::string::npos);
    EXPECT_EQ(out.find("rule "), std::string::npos);
    xdpctl_ok({"apply", write_temp_file("default pass\n", "apply-whole-clear")});
    std::remove(path.c_str());
}

// A VIP whose 4,096 backends all change: the new ones cannot take slots beside the old ones,
// so the leaving ones go first (old code: exit 1 with nothing of the LB part done).
TEST_F(ApplyTest, EveryBackendReplaced)
{
    auto file = [](int second_octet) {
        std::string f = "default pass\nlb vip 198.19.0.9:80/tcp --mode dsr\n";
        for (size_t i = 0; i < 4096; i++)
            f += fmt::format("lb backend 198.19.0.9:80/tcp 198.{}.{}.{} --mac {} --weight 1\n",
                             second_octet, i / 250, i % 250 + 1, kMac);
        return f;
    };
    xdpctl_ok({"apply", write_temp_file(file(18), "replace-a")});
    const std::string next = file(20);
    CmdResult r = xdpctl({"apply", write_temp_file(next, "replace-b")});
    EXPECT_EQ(r.exit_code, 0) << r;
    const std::string out = exported();
    EXPECT_TRUE(out == next) << "export is not the applied file; it starts: " << out.substr(0, 300);
}

// An --id at the top of the range must not leave later adds without an id.
TEST_F(ApplyTest, RuleIdsNeverRunOut)
{
    xdpctl_ok({"rule", "add", "--id", "4294967295", "--action", "count"});
    for (int i = 0; i < 3; i++) {
        CmdResult r = xdpctl({"rule", "add", "--action", "count"});
        ASSERT_EQ(r.exit_code, 0) << r;
        EXPECT_EQ(r.out, fmt::format("{}\n", i + 1));
    }
    xdpctl_ok({"rule", "del", "2"});
    CmdResult r = xdpctl({"rule", "add", "--action", "count"});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_EQ(r.out, "2\n");  // the lowest free one
}

// Every name the grammar allows goes through export and back.
TEST_F(ApplyTest, SetNamesRoundTrip)
{
    xdpctl_ok({"set", "create", "Az09_.-x"});
    xdpctl_ok({"set", "add", "Az09_.-x", "198.18.0.0/24"});
    xdpctl_ok({"rule", "add", "--src", "@Az09_.-x", "--action", "drop"});
    const std::string before = exported();
    xdpctl_ok({"apply", write_temp_file(before, "set-names")});
    EXPECT_EQ(exported(), before);
}

}  // namespace
}  // namespace xdpctl::test
