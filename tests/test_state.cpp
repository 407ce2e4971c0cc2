// Durable state and `xdpctl restore` (issue 14, items 1 and 2): every commit recorded in the
// state directory, a "reboot" (the test's own bpffs unmounted: every pin and the links it
// held go, as at power-off) and a restore that brings back the same policy, sets, VIPs and
// attachments, deciding real packets as before; damaged files refused by name with nothing
// done; kill -9 of `rule add` at random moments never leaving a directory that cannot be
// read or that holds a third policy.
//
// Each test runs in a mount namespace of its own with a bpffs of its own mounted over
// /sys/fs/bpf (not the one of the namespace that started it, which another mount would keep
// alive across the "reboot"), and records into a fresh state directory ($XDPCTL_STATE_DIR,
// which the xdpctl it runs inherits).
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dir_listing.h"
#include "lb/lb_config.h"
#include "netns_lab.h"
#include "policy/policy_store.h"
#include "policy/rule_parse.h"
#include "state/state_dir.h"

namespace xdpctl::test {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// Whether two texts (policies as export prints them) are the same; if not, the first line
// that differs. gtest's own diff of two texts of 100,000 lines takes gigabytes.
::testing::AssertionResult same_text(const std::string& a, const std::string& b)
{
    if (a == b)
        return ::testing::AssertionSuccess();
    size_t at = 0, line = 1;
    while (at < a.size() && at < b.size() && a[at] == b[at])
        line += a[at++] == '\n';
    const size_t from = at == 0 ? 0 : a.rfind('\n', at - 1) + 1;
    auto line_of = [from](const std::string& t) { return t.substr(from, t.find('\n', from) - from); };
    return ::testing::AssertionFailure() << "the texts differ from line " << line << ": '" << line_of(a)
                                         << "' against '" << line_of(b) << "' (" << a.size() << " and "
                                         << b.size() << " bytes)";
}

void mount_fresh_bpffs()
{
    if (::mount("bpf", "/sys/fs/bpf", "bpf", 0, nullptr) != 0)
        throw std::runtime_error(fmt::format("mount bpffs: {}", strerror(errno)));
}

class StateTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        XDPCTL_REQUIRE_ROOT();
        // Once per process (a mount namespace is per process; the tests' threads are gone by now).
        static bool unshared = false;
        if (!unshared) {
            ASSERT_EQ(::unshare(CLONE_NEWNS), 0) << strerror(errno);
            ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0) << strerror(errno);
            unshared = true;
        }
        mount_fresh_bpffs();
        char tmpl[] = "/tmp/xdpctl-test-state-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = std::string(tmpl) + "/state";  // made by xdpctl: its mode is xdpctl's doing
        ::setenv("XDPCTL_STATE_DIR", dir_.c_str(), 1);
    }
    void TearDown() override
    {
        if (::geteuid() != 0)
            return;
        ::umount2("/sys/fs/bpf", MNT_DETACH);
        std::error_code ec;
        fs::remove_all(fs::path(dir_).parent_path(), ec);
    }

    // Power off and on, as far as xdpctl can tell: this bpffs and every pin in it gone (the
    // links with them), a new empty one in its place. Nothing else of the host changes.
    static void reboot()
    {
        ASSERT_EQ(::umount2("/sys/fs/bpf", 0), 0) << strerror(errno);
        mount_fresh_bpffs();
    }

    // reboot(), then `restore`, which must bring back the policy `exported` showed.
    static void reboot_and_restore(const std::string& exported)
    {
        reboot();
        CmdResult r = xdpctl({"restore"});
        ASSERT_EQ(r.exit_code, 0) << r;
        EXPECT_TRUE(same_text(xdpctl_export(), exported));
    }

    // The state directory as `restore` reads it, in export's text (policy, then `lb` lines).
    std::string recorded() const
    {
        auto s = state::StateDir(dir_).load();
        return s ? policy::format_policy(s->policy) + lb::format_lb_config(s->lb) : "(none)";
    }

    static nlohmann::json lb_without_counters()
    {
        nlohmann::json lb = xdpctl_json({"lb", "list", "--json"});
        std::function<void(nlohmann::json&)> strip = [&](nlohmann::json& j) {
            if (j.is_object()) {
                for (const char* k : {"packets", "bytes", "new_flows", "conntrack_hits", "conntrack_misses"})
                    j.erase(k);
                for (auto& [_, v] : j.items())
                    strip(v);
            } else if (j.is_array()) {
                for (auto& v : j)
                    strip(v);
            }
        };
        strip(lb);
        return lb;
    }

    // Where xdpctl is attached and how: per interface, its hooks, modes and programs' hooks;
    // the decapsulators.
    static nlohmann::json attachments()
    {
        const nlohmann::json status = xdpctl_json({"status", "--json"});
        nlohmann::json out = status["decapsulators"];
        for (const auto& i : status["interfaces"]) {
            nlohmann::json progs = nlohmann::json::array();
            for (const auto& p : i["programs"])
                progs.push_back({p["hook"], p["attach"], p["attached"]});
            out.push_back({{"interface", i["interface"]}, {"netns", i["netns"]},
                           {"state", i["state"]}, {"hooks", i.value("hooks", nlohmann::json())},
                           {"xdp_mode", i.value("xdp_mode", "")}, {"tc_attach", i.value("tc_attach", "")},
                           {"programs", progs}});
        }
        return out;
    }

    std::string file(const std::string& name) const { return dir_ + "/" + name; }
    std::vector<std::string> files_starting(const std::string& prefix) const
    {
        return test::files_starting(dir_, prefix);
    }

    std::string dir_;
};

// `n` distinct /32s in 10.0.0.0/8 (none the lab's), then `extra` lines.
std::string prefix_file(uint32_t n, const std::string& extra)
{
    std::string text;
    text.reserve(size_t(n) * 14);
    for (uint32_t i = 0; i < n; i++) {
        const uint32_t a = 0x0a000000u + i * 13;
        text += fmt::format("{}.{}.{}.{}/32\n", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
    }
    return write_temp_file(text + extra, "state-set");
}

// Set "big" of `n` such /32s, and rule 1 dropping UDP to port 11 from it.
void big_set_dropping_udp_11(uint32_t n)
{
    xdpctl_ok({"set", "create", "big"});
    xdpctl_ok({"set", "load", "big", prefix_file(n, "")});
    xdpctl_ok({"rule", "add", "--id", "1", "--src", "@big", "--proto", "udp", "--dport", "11", "--action", "drop"});
}

TEST_F(StateTest, RebootThenRestoreBringsBackPolicySetsLbAndAttachments)
{
    NetnsLab lab;
    lab.load({"--hook", "both"});
    xdpctl_ok({"rule", "add", "--id", "1", "--proto", "udp", "--dport", "9", "--action", "drop"});
    xdpctl_ok({"rule", "add", "--id", "2", "--proto", "udp", "--dport", "10", "--action", "count"});
    xdpctl_ok({"set", "create", "big"});
    // 100,000 prefixes and the peer's address.
    xdpctl_ok({"set", "load", "big", prefix_file(100000, lab.peer().ipv4 + "/32\n")});
    xdpctl_ok({"rule", "add", "--id", "3", "--src", "@big", "--proto", "udp", "--dport", "11", "--action", "drop"});
    xdpctl_ok({"lb", "vip", "add", "198.19.0.1:80/tcp"});
    xdpctl_ok({"lb", "backend", "add", "198.19.0.1:80/tcp", "198.19.10.1", "--mac", "02:00:00:00:0a:01", "--weight", "3"});
    xdpctl_ok({"lb", "backend", "add", "198.19.0.1:80/tcp", "198.19.10.2", "--mac", "02:00:00:00:0a:02"});
    xdpctl_ok({"lb", "vip", "add", "[2001:2::1]:53/udp", "--table-size", "251"});
    xdpctl_ok({"lb", "backend", "add", "[2001:2::1]:53/udp", "2001:2::10", "--mac", "02:00:00:00:0b:01"});
    // A decapsulator, on the other end (an ipip backend's interface).
    xdpctl_ok({"-n", lab.peer().ns, "lb", "decap", "attach", lab.peer().ifname, "198.19.0.1", "2001:2::1"});

    // Packets: 9 and 11 (the set's rule) dropped, 10 and 12 through.
    auto decided = [&] {
        return std::vector<int>{udp_through(lab, 9, 4), udp_through(lab, 10, 4), udp_through(lab, 11, 4),
                                udp_through(lab, 12, 4)};
    };
    const std::vector<int> expected{0, 4, 0, 4};
    ASSERT_EQ(decided(), expected);
    const std::string exported = xdpctl_export();
    const nlohmann::json lb = lb_without_counters();
    const nlohmann::json attached = attachments();
    ASSERT_EQ(attached.size(), 2u) << attached.dump();
    ASSERT_EQ(attached[0]["state"], "attached") << attached.dump();  // the decapsulator
    ASSERT_EQ(attached[1]["programs"].size(), 3u) << attached.dump();
    EXPECT_TRUE(same_text(recorded(), exported));

    // On the running system: nothing to do, and it says so.
    CmdResult same = xdpctl({"restore"});
    ASSERT_EQ(same.exit_code, 0) << same;
    EXPECT_NE(same.out.find("nothing to restore: the running system already has the state"), std::string::npos) << same;

    reboot();
    // Gone: the lab's packets are not filtered any more (the kernel releases the links the
    // pins held from a work queue: a moment later).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    std::vector<int> after_reboot;
    do
        after_reboot = decided();
    while (after_reboot != std::vector<int>{4, 4, 4, 4} && std::chrono::steady_clock::now() < deadline);
    ASSERT_EQ(after_reboot, (std::vector<int>{4, 4, 4, 4}));

    CmdResult r = xdpctl({"restore"});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_NE(r.out.find("policy: restored (3 rule(s), 1 set(s))"), std::string::npos) << r;
    EXPECT_NE(r.out.find(lab.dut().ifname + "@" + lab.dut().ns + ": loaded"), std::string::npos) << r;
    EXPECT_NE(r.out.find("decapsulator on " + lab.peer().ifname + "@" + lab.peer().ns + ": loaded"),
              std::string::npos) << r;
    auto saved = state::StateDir(dir_).load();
    ASSERT_EQ(saved->decaps.size(), 1u);
    EXPECT_EQ(saved->decaps[0].addrs.size(), 2u);
    EXPECT_TRUE(same_text(xdpctl_export(), exported));
    EXPECT_EQ(lb_without_counters(), lb);
    EXPECT_EQ(attachments(), attached);
    // Counters start at zero, then count as before.
    const nlohmann::json rules = xdpctl_json({"rule", "list", "--json"});
    for (const auto& rule : rules["rules"])
        EXPECT_EQ(rule["packets"], 0) << rule.dump();
    EXPECT_EQ(decided(), expected);
    EXPECT_EQ(lab.stats().get("xdp/verdict/drop").packets, 8u);

    CmdResult again = xdpctl({"restore", "--json"});
    ASSERT_EQ(again.exit_code, 0) << again;
    EXPECT_EQ(nlohmann::json::parse(again.out)["unchanged"], true) << again;
}

// `set add` / `set del` that change the set's table in place (no commit: each moves the
// commit count by one, where a commit's restore would move it by more) are recorded as a
// commit's are (a record in the set's journal, the set's key computed over the stored bytes
// and the changes in place before: restore checks it), and a restore after a reboot brings
// the set back as they left it. A change in place after a commit the directory did not
// record (`--state-dir ""`) records the whole policy, that commit's rule with it.
TEST_F(StateTest, SetChangedInPlaceIsRecordedAndRestored)
{
    NetnsLab lab;
    lab.load();
    big_set_dropping_udp_11(100000);
    const uint64_t commits = policy::PolicyStore(Access::read).commits();
    const std::string peer = lab.peer().ipv4 + "/32";
    ASSERT_EQ(udp_through(lab, 11, 4), 4);
    xdpctl_ok({"set", "add", "big", peer});
    EXPECT_EQ(udp_through(lab, 11, 4), 0);
    xdpctl_ok({"set", "del", "big", peer});
    EXPECT_EQ(udp_through(lab, 11, 4), 4);
    xdpctl_ok({"set", "add", "big", peer, "198.19.7.0/24"});
    EXPECT_EQ(udp_through(lab, 11, 4), 0);
    EXPECT_EQ(policy::PolicyStore(Access::read).commits(), commits + 3) << "set add/del committed";
    const auto sets = files_starting("set.");
    ASSERT_EQ(sets.size(), 2u);  // the base and its journal
    EXPECT_EQ(sets[1], sets[0] + ".log");
    EXPECT_TRUE(same_text(recorded(), xdpctl_export()));

    xdpctl_ok({"--state-dir", "", "rule", "add", "--id", "5", "--proto", "udp", "--dport", "15", "--action", "drop"});
    EXPECT_EQ(recorded().find("--dport 15"), std::string::npos) << "--state-dir \"\" recorded";
    xdpctl_ok({"set", "del", "big", "198.19.7.0/24"});
    EXPECT_EQ(policy::PolicyStore(Access::read).commits(), commits + 5) << "set del committed";
    const std::string exported = xdpctl_export();
    EXPECT_NE(exported.find(peer), std::string::npos);
    EXPECT_EQ(exported.find("198.19.7.0/24"), std::string::npos);
    EXPECT_NE(exported.find("--dport 15"), std::string::npos);
    EXPECT_TRUE(same_text(recorded(), exported)) << "a change in place after an unrecorded commit did not record it";

    ASSERT_NO_FATAL_FAILURE(reboot_and_restore(exported));
    EXPECT_EQ(udp_through(lab, 11, 4), 0);
}

// A set that was empty when last committed, changed in place: the sum of its entries' prints
// starts from 0 (an empty set's print says 1), so the key the state directory records for it,
// by `set add` and by the rule commands after (from the image's set index, no pass over the
// set), is the key of its entries: a restore checks it.
TEST_F(StateTest, ASetEmptyWhenCommittedThenChangedInPlaceIsRecordedAndRestored)
{
    NetnsLab lab;
    lab.load();
    xdpctl_ok({"set", "create", "e"});
    xdpctl_ok({"rule", "add", "--id", "1", "--src", "@e", "--proto", "udp", "--dport", "11", "--action", "drop"});
    const std::string peer = lab.peer().ipv4 + "/32";
    ASSERT_EQ(udp_through(lab, 11, 4), 4);
    // In place: the trace names its phases (a commit's would name others).
    auto in_place = [](const std::string& cidr) {
        CmdResult r = run_cmd({"env", "XDPCTL_TRACE_COMMIT=1", xdpctl_bin(), "set", "add", "e", cidr});
        EXPECT_EQ(r.exit_code, 0) << r;
        EXPECT_NE(r.err.find("in place: published"), std::string::npos) << "set add " << cidr << " committed: " << r;
    };
    in_place(peer);
    EXPECT_EQ(udp_through(lab, 11, 4), 0);
    xdpctl_ok({"rule", "add", "--id", "2", "--proto", "udp", "--dport", "12", "--action", "drop"});
    in_place("198.19.7.0/24");
    xdpctl_ok({"rule", "del", "2"});
    const std::string exported = xdpctl_export();
    EXPECT_NE(exported.find(peer), std::string::npos);
    EXPECT_TRUE(same_text(recorded(), exported));
    ASSERT_NO_FATAL_FAILURE(reboot_and_restore(exported));
    EXPECT_EQ(udp_through(lab, 11, 4), 0);
}

// Rule commands read a set they do not change as the stored image's bytes (left undecoded,
// with the print the last commit's set index gives). Between them the set is changed in place,
// and by a `set add` that cannot be made in place (a /8: shorter than /16) and so commits in
// full: each rule command after must keep the set as it is then (export, the packets, the
// state directory), and a restore after a reboot must bring it back whole.
TEST_F(StateTest, RuleCommandsKeepASetChangedInPlaceOrByAFullCommit)
{
    NetnsLab lab;
    lab.load();
    big_set_dropping_udp_11(50000);
    const std::string peer = lab.peer().ipv4 + "/32";
    ASSERT_EQ(udp_through(lab, 11, 4), 4);
    xdpctl_ok({"set", "add", "big", peer});  // in place
    xdpctl_ok({"rule", "add", "--id", "2", "--proto", "udp", "--dport", "12", "--action", "drop"});
    EXPECT_EQ(udp_through(lab, 11, 4), 0) << "a rule add lost a member added in place";
    EXPECT_NE(xdpctl_export().find(peer), std::string::npos);
    xdpctl_ok({"set", "add", "big", "11.0.0.0/8"});  // a full commit (shorter than /16)
    xdpctl_ok({"set", "del", "big", peer});  // in place again
    xdpctl_ok({"rule", "del", "2"});
    EXPECT_EQ(udp_through(lab, 11, 4), 4) << "a rule del brought back a member deleted in place";
    xdpctl_ok({"rule", "add", "--id", "3", "--proto", "udp", "--dport", "13", "--action", "drop"});
    const std::string exported = xdpctl_export();
    EXPECT_NE(exported.find("11.0.0.0/8"), std::string::npos) << "a rule command lost the member of a full commit";
    EXPECT_EQ(exported.find(peer), std::string::npos);
    EXPECT_TRUE(same_text(recorded(), exported));

    ASSERT_NO_FATAL_FAILURE(reboot_and_restore(exported));
    EXPECT_EQ(udp_through(lab, 11, 4), 4);
    xdpctl_ok({"set", "add", "big", peer});
    xdpctl_ok({"rule", "del", "3"});  // after the restore's commit: its set index
    EXPECT_EQ(udp_through(lab, 11, 4), 0);
    EXPECT_TRUE(same_text(recorded(), xdpctl_export()));
}

TEST_F(StateTest, RestoreSkipsAMissingInterfaceAndSaysSo)
{
    NetnsLab lab;
    lab.load();
    xdpctl_ok({"rule", "add", "--id", "1", "--proto", "udp", "--dport", "9", "--action", "drop"});
    const std::string exported = xdpctl_export();
    run_ok({"ip", "-n", lab.dut().ns, "link", "del", lab.dut().ifname});
    reboot();

    CmdResult r = xdpctl({"restore"});
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_NE(r.out.find(fmt::format("{}@{}: missing (no interface {} in {}): skipped", lab.dut().ifname,
                                     lab.dut().ns, lab.dut().ifname, lab.dut().ns)),
              std::string::npos)
        << r;
    EXPECT_TRUE(same_text(xdpctl_export(), exported));  // the rest is restored
    // Still recorded: an interface that comes back later is taken up by the next restore.
    auto s = state::StateDir(dir_).load();
    ASSERT_TRUE(s);
    ASSERT_EQ(s->ifaces.size(), 1u);
    EXPECT_EQ(s->ifaces[0].iface.ifname, lab.dut().ifname);
}

// xdpd restores before it serves (a host whose xdpd starts at boot has its firewall back),
// and leaves what it restored in force when it stops.
TEST_F(StateTest, XdpdRestoresAtStartBeforeItServes)
{
    const char* xdpd = ::getenv("XDPD_BIN");
    ASSERT_TRUE(xdpd && *xdpd) << "XDPD_BIN is not set (meson test sets it)";
    NetnsLab lab;
    lab.load();
    xdpctl_ok({"rule", "add", "--id", "1", "--proto", "udp", "--dport", "9", "--action", "drop"});
    const std::string exported = xdpctl_export();
    const nlohmann::json attached = attachments();
    reboot();
    ASSERT_NE(xdpctl_export(), exported);

    // Bounded: SIGTERM after 3 s (exit 124 is timeout's own: xdpd was still serving).
    CmdResult r = run_cmd({"timeout", "-s", "TERM", "3", xdpd, "--config", "/dev/null",
                           "--metrics-listen", "127.0.0.1:0", "--state-dir", dir_});
    EXPECT_EQ(r.exit_code, 124) << r;
    const std::string log = r.out + r.err;
    EXPECT_NE(log.find("restore: " + dir_ + " generation"), std::string::npos) << log;
    EXPECT_NE(log.find(fmt::format("restore: {}@{}: loaded", lab.dut().ifname, lab.dut().ns)), std::string::npos) << log;
    EXPECT_LT(log.find("restore: "), log.find("serving metrics on")) << log;
    EXPECT_TRUE(same_text(xdpctl_export(), exported));
    EXPECT_EQ(attachments(), attached);
}

TEST_F(StateTest, FilesArePrivateAndAnUnchangedSetIsNotWrittenAgain)
{
    xdpctl_ok({"set", "create", "big"});
    xdpctl_ok({"set", "load", "big", prefix_file(100000, "")});
    xdpctl_ok({"rule", "add", "--id", "1", "--src", "@big", "--action", "drop"});
    struct stat st {};
    ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    for (const auto& e : fs::directory_iterator(dir_)) {
        ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0600u) << e.path();
    }
    const auto sets = files_starting("set.");
    ASSERT_EQ(sets.size(), 1u);
    ASSERT_EQ(::stat(file(sets[0]).c_str(), &st), 0);
    const ino_t ino = st.st_ino;
    EXPECT_GT(st.st_size, 100000 * 6);

    // A rule: a new rules file, the set's file untouched (same inode).
    const auto rules_before = files_starting("policy.");
    xdpctl_ok({"rule", "add", "--id", "2", "--proto", "udp", "--dport", "9", "--action", "drop"});
    ASSERT_EQ(files_starting("set."), sets);
    ASSERT_EQ(::stat(file(sets[0]).c_str(), &st), 0);
    EXPECT_EQ(st.st_ino, ino);
    EXPECT_NE(files_starting("policy."), rules_before);
    EXPECT_EQ(files_starting("policy.").size(), 1u);  // the old generation's removed

    // One prefix added: a record appended to the set's journal, its file untouched; the
    // rules file stays.
    const auto rules_now = files_starting("policy.");
    xdpctl_ok({"set", "add", "big", "198.19.7.0/24"});
    EXPECT_EQ(files_starting("set."), (std::vector<std::string>{sets[0], sets[0] + ".log"}));
    ASSERT_EQ(::stat(file(sets[0]).c_str(), &st), 0);
    EXPECT_EQ(st.st_ino, ino);
    EXPECT_EQ(files_starting("policy."), rules_now);
    EXPECT_TRUE(same_text(recorded(), xdpctl_export()));
    // `set load` replaces the set: a new file, no journal.
    xdpctl_ok({"set", "load", "big", prefix_file(1000, "")});
    EXPECT_EQ(files_starting("set.").size(), 1u);
    EXPECT_NE(files_starting("set."), sets);
    EXPECT_TRUE(same_text(recorded(), xdpctl_export()));
    EXPECT_TRUE(files_starting(".tmp.").empty());

    // --state-dir (before `rule`, as with --wait) wins over $XDPCTL_STATE_DIR.
    const std::string other = fs::path(dir_).parent_path() / "other";
    xdpctl_ok({"--state-dir", other, "rule", "add", "--id", "3", "--proto", "tcp", "--action", "count"});
    EXPECT_EQ(state::StateDir(other).load()->policy.rules.size(), 3u);
    // The rule command read the set as the image's bytes (left undecoded): the directory that
    // had no record of it gets it whole, under the key a decoded set gives.
    EXPECT_EQ(state::StateDir(other).load()->policy.sets, state::StateDir(dir_).load()->policy.sets);
    EXPECT_EQ(state::StateDir(other).load()->policy.sets.at("big"), policy::PolicyStore(Access::read).current().sets.at("big"));
    EXPECT_EQ(state::StateDir(dir_).load()->policy.rules.size(), 2u);
    // A directory others can enter is not made private behind their back: refused, and the
    // message says the commit is in force all the same.
    const std::string open_dir = fs::path(dir_).parent_path() / "open";
    fs::create_directory(open_dir);
    fs::permissions(open_dir, fs::perms(0755));
    CmdResult r = xdpctl({"--state-dir", open_dir, "rule", "del", "3"});
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_NE(r.err.find("the policy is in force, but the state directory was not updated"), std::string::npos) << r;
    EXPECT_NE(r.err.find(open_dir + " is open to others (mode 0755)"), std::string::npos) << r;
    EXPECT_EQ(fs::status(open_dir).permissions(), fs::perms(0755));
}

TEST_F(StateTest, UnloadForgetsTheInterfaceAndUnloadAllEverything)
{
    NetnsLab lab;
    lab.load({"--malformed", "drop"});
    xdpctl_ok({"rule", "add", "--id", "1", "--proto", "udp", "--dport", "9", "--action", "drop"});
    xdpctl_ok({"lb", "vip", "add", "198.19.0.1:80/tcp"});
    auto s = state::StateDir(dir_).load();
    ASSERT_TRUE(s);
    ASSERT_EQ(s->ifaces.size(), 1u);
    EXPECT_EQ(s->ifaces[0].iface.netns, lab.dut().ns);
    EXPECT_EQ(s->ifaces[0].malformed, uint32_t(XDPCTL_MALFORMED_DROP));
    EXPECT_EQ(s->lb.vips.size(), 1u);

    xdpctl_ok({"-n", lab.peer().ns, "lb", "decap", "attach", lab.peer().ifname, "198.19.0.1"});
    EXPECT_EQ(state::StateDir(dir_).load()->decaps.size(), 1u);
    xdpctl_ok({"-n", lab.peer().ns, "lb", "decap", "detach", lab.peer().ifname});
    EXPECT_TRUE(state::StateDir(dir_).load()->decaps.empty());

    ASSERT_EQ(lab.xdpctl_dut({"unload", lab.dut().ifname}).exit_code, 0);
    s = state::StateDir(dir_).load();
    EXPECT_TRUE(s->ifaces.empty());
    EXPECT_EQ(s->policy.rules.size(), 1u);  // the policy outlives the interface, as in bpffs

    lab.load();
    xdpctl_ok({"unload", "--all"});
    s = state::StateDir(dir_).load();
    EXPECT_TRUE(s->ifaces.empty());
    EXPECT_TRUE(s->policy.rules.empty());
    EXPECT_TRUE(s->lb.vips.empty());
    CmdResult r = xdpctl({"restore"});
    EXPECT_EQ(r.exit_code, 0) << r;
    EXPECT_NE(r.out.find("nothing to restore"), std::string::npos) << r;
}

TEST_F(StateTest, ADamagedFileIsNamedAndNothingIsRestored)
{
    xdpctl_ok({"set", "create", "blocked"});
    xdpctl_ok({"set", "add", "blocked", "198.19.1.0/24", "198.19.2.0/24"});
    xdpctl_ok({"rule", "add", "--id", "1", "--src", "@blocked", "--action", "drop"});
    xdpctl_ok({"lb", "vip", "add", "198.19.0.1:80/tcp"});
    const std::string good = dir_ + ".good";
    fs::copy(dir_, good);
    const std::string set_file = files_starting("set.").at(0), rules_file = files_starting("policy.").at(0);

    struct Damage {
        const char* what;
        std::string named;  // the file the error must name
        std::function<void()> apply;
    };
    auto flip_byte = [](const std::string& path, size_t at) {
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        f.seekg(std::streamoff(at));
        char c = 0;
        f.get(c);
        f.seekp(std::streamoff(at));
        f.put(char(c ^ 0x20));
    };
    const std::vector<Damage> damages = {
        {"manifest not JSON", file("manifest"), [&] { std::ofstream(file("manifest")) << "{\"format\": \"xdpctl-state 1\", "; }},
        {"rules file byte flipped", file(rules_file), [&] { flip_byte(file(rules_file), 12); }},
        {"set file cut short", file(set_file), [&] { fs::resize_file(file(set_file), fs::file_size(file(set_file)) - 3); }},
        {"set file gone", file(set_file), [&] { fs::remove(file(set_file)); }},
    };
    for (const auto& d : damages) {
        SCOPED_TRACE(d.what);
        reboot();
        fs::remove_all(dir_);
        fs::copy(good, dir_);
        d.apply();
        CmdResult r = xdpctl({"restore"});
        EXPECT_EQ(r.exit_code, 1) << r;
        EXPECT_NE(r.err.find(d.named), std::string::npos) << r;
        // Nothing half-done: not even the shared maps were made.
        EXPECT_FALSE(fs::exists("/sys/fs/bpf/xdpctl")) << r;
    }
    // The undamaged directory restores.
    reboot();
    fs::remove_all(dir_);
    fs::copy(good, dir_);
    CmdResult r = xdpctl({"restore"});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_TRUE(same_text(xdpctl_export(), recorded()));
    fs::remove_all(good);

    // A running system that differs from the directory (a change not recorded): the
    // directory wins.
    const std::string in_state = recorded();
    xdpctl_ok({"--state-dir", "", "rule", "add", "--id", "7", "--proto", "tcp", "--action", "drop"});
    ASSERT_NE(xdpctl_export(), in_state);
    r = xdpctl({"restore"});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_NE(r.out.find("policy: restored (1 rule(s), 1 set(s))"), std::string::npos) << r;
    EXPECT_NE(r.out.find("load balancer: already in force"), std::string::npos) << r;
    EXPECT_TRUE(same_text(xdpctl_export(), in_state));
}

// kill -9 of `cmd` at random moments, `kills` times: the directory always reads whole and
// holds the policy before the command (A) or after it (B). `undo` takes B back to A. The
// moments are spread: each sweep below is cut into equal parts, one kill at a random point of
// each part in turn, which leaves no stretch of the run unvisited wider than two parts (as
// many uniformly random moments leave gaps of ~ln(n) parts).
void kill_anywhere(const std::function<std::string()>& recorded, const std::vector<std::string>& cmd,
                   const std::vector<std::string>& undo, int kills)
{
    const std::string a = xdpctl_export();
    ASSERT_EQ(recorded(), a);
    // How long it takes: the shortest of three runs (a run that waited for another
    // writer's lock would make most kills land after the end).
    long took = 0;
    std::string b;
    for (int i = 0; i < 3; i++) {
        const auto t0 = std::chrono::steady_clock::now();
        CmdResult whole = run_cmd(cmd);
        const long ms = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0).count();
        took = i == 0 ? ms : std::min(took, ms);
        ASSERT_EQ(whole.exit_code, 0) << whole;
        b = xdpctl_export();
        ASSERT_EQ(recorded(), b);
        ASSERT_NE(a, b);
        xdpctl_ok(undo);
    }

    std::mt19937_64 rng(14);
    int killed = 0, attempts = 0, saw_a = 0, saw_b = 0;
    const uint64_t parts = uint64_t(std::max(1, kills / 2));
    // Bounded: 4 tries a kill at most, whichever way they end.
    for (; killed < kills && attempts < 4 * kills; attempts++) {
        // Over the whole run and a little past it (it varies); every other one in its last
        // part, where the commit and the record are: two sweeps, taking turns.
        const uint64_t from = attempts % 2 ? uint64_t(took) * 6 / 10 : 0;
        const uint64_t span = uint64_t(took) * 12 / 10 - from, part = uint64_t(attempts / 2) % parts;
        const uint64_t lo = span * part / parts, hi = span * (part + 1) / parts;
        CmdResult r = run_cmd(cmd, milliseconds(from + lo + rng() % (hi - lo + 1)));
        killed += r.timed_out;
        std::string s;
        ASSERT_NO_THROW(s = recorded()) << "after kill " << killed;
        ASSERT_TRUE(s == a || s == b) << "after kill " << killed << ", the state directory holds:\n" << s;
        (s == a ? saw_a : saw_b)++;
        // Back to A, through xdpctl: the next commit records whatever the kill left.
        if (xdpctl_export() != a)
            xdpctl_ok(undo);
        ASSERT_EQ(recorded(), a);
    }
    EXPECT_EQ(killed, kills) << "in " << attempts << " tries";
    EXPECT_GT(saw_a, 0);
    ::testing::Test::RecordProperty("state_a", saw_a);
    ::testing::Test::RecordProperty("state_b", saw_b);
    fmt::print("{} kills in {} tries: state before {} times, after {} times\n", killed, attempts, saw_a, saw_b);
}

// kill -9 of `rule add` at random moments, 50 times.
TEST_F(StateTest, RuleAddKilledAnywhereLeavesStateBeforeOrAfter)
{
    xdpctl_ok({"set", "create", "big"});
    xdpctl_ok({"set", "load", "big", prefix_file(20000, "")});
    xdpctl_ok({"rule", "add", "--id", "1", "--src", "@big", "--action", "drop"});
    for (int i = 0; i < 50; i++)
        xdpctl_ok({"rule", "add", "--id", std::to_string(100 + i), "--proto", "tcp", "--dport",
                   std::to_string(1000 + i), "--action", "drop"});
    kill_anywhere([this] { return recorded(); },
                  {xdpctl_bin(), "rule", "add", "--id", "900", "--src", "198.19.2.0/24", "--action", "drop"},
                  {"rule", "del", "900"}, 50);
}

// The same for `set add`, whose record is an append to the set's journal (and `set del`,
// the undo, another): a kill mid-append leaves a torn record the manifest does not count.
TEST_F(StateTest, SetAddKilledAnywhereLeavesStateBeforeOrAfter)
{
    xdpctl_ok({"set", "create", "big"});
    xdpctl_ok({"set", "load", "big", prefix_file(20000, "")});
    xdpctl_ok({"rule", "add", "--id", "1", "--src", "@big", "--action", "drop"});
    kill_anywhere([this] { return recorded(); }, {xdpctl_bin(), "set", "add", "big", "198.19.2.0/24"},
                  {"set", "del", "big", "198.19.2.0/24"}, 30);
    bool journal = false;
    for (const auto& f : files_starting("set."))
        journal |= f.size() > 4 && f.substr(f.size() - 4) == ".log";
    EXPECT_TRUE(journal) << "set add did not use the journal";
}

}  // namespace
}  // namespace xdpctl::test
