// The xdpctl binary as a user meets it: its errors and exit codes, the life of a load
// (attached after the tool exits, reloaded keeping counters, unloaded leaving nothing), the
// states an interrupted load leaves, and the numbers `status` and `stats` print.
//
// Every check of the host's bpffs looks only at this test's own namespaces: other users'
// pins under /sys/fs/bpf/xdpctl are none of its business, and `unload --all` is never run.
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include <fmt/core.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "netns_lab.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace xdpctl::test {
namespace {

constexpr long kBpffsMagic = 0xcafe4a11;

bool contains(const std::string& s, const std::string& what)
{
    return s.find(what) != std::string::npos;
}

// ---- what is attached, as other tools see it ----------------------------------------------

// `status --json`'s entry for the lab's DUT interface, if xdpctl lists it.
std::optional<json> status_entry(const NetnsLab& lab)
{
    json all = json::parse(run_ok({xdpctl_bin(), "status", "--json"}));
    for (const auto& i : all.at("interfaces"))
        if (i.at("netns") == lab.dut().ns && i.at("interface") == lab.dut().ifname)
            return i;
    return std::nullopt;
}

std::vector<unsigned> prog_ids(const json& entry)
{
    std::vector<unsigned> ids;
    for (const auto& p : entry.at("programs"))
        ids.push_back(p.at("id").get<unsigned>());
    std::sort(ids.begin(), ids.end());
    return ids;
}

// The XDP program on the DUT interface as iproute2 reports it; 0 for none.
unsigned xdp_prog_id(const NetnsLab& lab)
{
    json j = json::parse(
        run_ok({"ip", "-n", lab.dut().ns, "-j", "-d", "link", "show", "dev", lab.dut().ifname}));
    const json& link = j.at(0);
    if (!link.contains("xdp") || !link["xdp"].contains("prog"))
        return 0;
    return link["xdp"]["prog"].at("id").get<unsigned>();
}

// bpftool's view of the DUT interface: {"xdp": [...], "tc": [...] (tcx links and clsact
// filters), ...}. Through `ip netns exec`: bpftool needs no pins for this.
json bpftool_net(const NetnsLab& lab)
{
    return json::parse(run_ok({"ip", "netns", "exec", lab.dut().ns, "bpftool", "-j", "net",
                               "show", "dev", lab.dut().ifname}))
        .at(0);
}

std::string tc_filters(const NetnsLab& lab, const std::string& dir)
{
    return run_ok({"tc", "-n", lab.dut().ns, "filter", "show", "dev", lab.dut().ifname, dir});
}

std::string tc_qdiscs(const NetnsLab& lab)
{
    return run_ok({"tc", "-n", lab.dut().ns, "qdisc", "show", "dev", lab.dut().ifname});
}

// After an unload: no pins of the lab, no XDP program, no tcx link, no clsact filter, no
// entry in `status`; and no clsact qdisc when xdpctl knew it had created it.
void expect_nothing_left(const NetnsLab& lab, bool qdisc_gone = true)
{
    EXPECT_FALSE(fs::exists(lab.dut_pin_ns_dir())) << lab.dut_pin_ns_dir() << " is left";
    EXPECT_EQ(xdp_prog_id(lab), 0u);
    std::string link =
        run_ok({"ip", "-n", lab.dut().ns, "-d", "link", "show", "dev", lab.dut().ifname});
    EXPECT_FALSE(contains(link, "prog/xdp")) << link;
    json net = bpftool_net(lab);
    EXPECT_EQ(net.at("xdp"), json::array()) << net.dump();
    EXPECT_EQ(net.at("tc"), json::array()) << net.dump();
    EXPECT_EQ(tc_filters(lab, "ingress"), "");
    EXPECT_EQ(tc_filters(lab, "egress"), "");
    if (qdisc_gone) {
        EXPECT_FALSE(contains(tc_qdiscs(lab), "clsact")) << tc_qdiscs(lab);
    }
    EXPECT_FALSE(status_entry(lab).has_value());
}

// ---- usage errors: no privileges needed, nothing touched ---------------------------------

TEST(CliUsage, BadCommandLinesExitWith2)
{
    const std::vector<std::vector<std::string>> cases = {
        {},                                          // no subcommand
        {"frobnicate"},                              // unknown subcommand
        {"load"},                                    // missing interface
        {"load", "xl-dut", "--mode", "bogus"},       // bad --mode
        {"load", "xl-dut", "--hook", "sideways"},    // bad --hook
        {"load", "xl-dut", "--tc-mode", "ebpf"},     // bad --tc-mode
        {"load", "xl-dut", "--malformed", "maybe"},  // bad --malformed
        {"load", "bad/name"},                        // not an interface name
        {"-n", "a/b", "load", "xl-dut"},             // not a namespace name
        {"unload"},                                  // neither interface nor --all
        {"unload", "xl-dut", "--all"},               // both
        {"stats"},                                   // neither interface nor --all
        {"stats", "xl-dut", "--count", "2"},         // --count without --interval
        {"stats", "xl-dut", "--interval", "0"},      // below the minimum period
    };
    for (const auto& args : cases) {
        CmdResult r = xdpctl(args);
        EXPECT_EQ(r.exit_code, 2) << r;
        EXPECT_NE(r.err, "") << "a usage error should say what is wrong\n" << r;
    }
}

TEST(CliUsage, StatsWithoutInterfaceSaysWhatIsMissing)
{
    CmdResult r = xdpctl({"stats"});
    EXPECT_EQ(r.exit_code, 2) << r;
    EXPECT_TRUE(contains(r.err, "interface")) << r;
}

// ---- runtime errors -------------------------------------------------------------------------

// A fresh lab per test: nothing one test loads can confuse the next.
class LabTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        XDPCTL_REQUIRE_ROOT();
        lab_ = std::make_unique<NetnsLab>();
    }
    std::unique_ptr<NetnsLab> lab_;
};

class CliErrors : public LabTest {};

TEST_F(CliErrors, UnknownInterfaceIsNamedAndNothingIsPinned)
{
    CmdResult r = lab_->xdpctl_dut({"load", "nosuch0"});
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, "'nosuch0'")) << r;
    EXPECT_TRUE(contains(r.err, lab_->dut().ns)) << r;
    EXPECT_FALSE(fs::exists(lab_->dut_pin_ns_dir()));
}

TEST_F(CliErrors, UnknownHostInterfaceIsNamedAndNothingIsPinned)
{
    // The host's namespace is only looked at: the interface does not exist.
    std::string name = fmt::format("xdno{}", getpid());
    ASSERT_FALSE(fs::exists("/sys/class/net/" + name));
    CmdResult r = xdpctl({"load", name});
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, "'" + name + "'")) << r;
    EXPECT_FALSE(fs::exists(iface_pin_dir(current_netns_id(), name)));
}

TEST_F(CliErrors, UnknownNetnsIsNamedAndNothingIsPinned)
{
    std::string ns = unique_ns_name("-none");
    ASSERT_FALSE(fs::exists("/run/netns/" + ns));
    CmdResult r = xdpctl({"-n", ns, "load", lab_->dut().ifname});
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, "'" + ns + "'")) << r;
    EXPECT_FALSE(fs::exists("/sys/fs/bpf/xdpctl/netns/" + ns));
    EXPECT_FALSE(fs::exists("/run/netns/" + ns)) << "xdpctl must not create the namespace";
}

TEST_F(CliErrors, UnloadWhenNotLoaded)
{
    CmdResult r = lab_->xdpctl_dut({"unload", lab_->dut().ifname});
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, "not loaded")) << r;
    EXPECT_FALSE(fs::exists(lab_->dut_pin_ns_dir()));
}

TEST_F(CliErrors, StatsWhenNotLoaded)
{
    CmdResult r = lab_->xdpctl_dut({"stats", lab_->dut().ifname});
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, "not loaded")) << r;
}

TEST_F(CliErrors, LoadTwiceWithoutForceChangesNothing)
{
    lab_->load({"--hook", "xdp"});
    auto before = status_entry(*lab_);
    ASSERT_TRUE(before.has_value());

    for (const auto& extra : {std::vector<std::string>{}, {"--hook", "tc"}, {"--hook", "both"}}) {
        std::vector<std::string> args{"load", lab_->dut().ifname};
        args.insert(args.end(), extra.begin(), extra.end());
        CmdResult r = lab_->xdpctl_dut(args);
        EXPECT_EQ(r.exit_code, 1) << r;
        EXPECT_TRUE(contains(r.err, "already loaded")) << r;
        EXPECT_TRUE(contains(r.err, "--force")) << "should say how to reload\n" << r;

        auto after = status_entry(*lab_);
        ASSERT_TRUE(after.has_value());
        EXPECT_EQ(prog_ids(*after), prog_ids(*before));
        EXPECT_EQ(after->at("hooks"), before->at("hooks"));
        EXPECT_EQ(after->at("loaded_at"), before->at("loaded_at"));
        EXPECT_EQ(after->at("reloaded_at"), "");
    }
    EXPECT_EQ(xdp_prog_id(*lab_), prog_ids(*before).at(0));
}

TEST_F(CliErrors, ForeignXdpProgramIsNamedAndReplacedOnlyWithForce)
{
    const char* obj = std::getenv("XDPCTL_FOREIGN_XDP_OBJ");
    ASSERT_TRUE(obj && *obj) << "XDPCTL_FOREIGN_XDP_OBJ is not set (run with 'meson test')";
    run_ok({"ip", "-n", lab_->dut().ns, "link", "set", "dev", lab_->dut().ifname, "xdp", "obj",
            obj, "sec", "xdp"});
    unsigned foreign = xdp_prog_id(*lab_);
    ASSERT_NE(foreign, 0u);

    CmdResult r = lab_->load_result({});
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, fmt::format("id {}", foreign))) << r;
    EXPECT_TRUE(contains(r.err, "--force")) << r;
    EXPECT_EQ(xdp_prog_id(*lab_), foreign) << "the foreign program must stay attached";
    EXPECT_FALSE(status_entry(*lab_).has_value());

    r = lab_->load_result({"--force"});
    EXPECT_EQ(r.exit_code, 0) << r;
    EXPECT_TRUE(contains(r.out, fmt::format("{}", foreign))) << "should say what it replaced\n"
                                                             << r;
    auto st = status_entry(*lab_);
    ASSERT_TRUE(st.has_value());
    ASSERT_EQ(prog_ids(*st).size(), 1u);
    EXPECT_EQ(xdp_prog_id(*lab_), prog_ids(*st)[0]);
    EXPECT_NE(xdp_prog_id(*lab_), foreign);

    r = lab_->xdpctl_dut({"unload", lab_->dut().ifname});
    EXPECT_EQ(r.exit_code, 0) << r;
    expect_nothing_left(*lab_);
}

// A copy of xdpctl that any user can execute: the build tree may sit below a directory
// only root can enter.
class WorldExecutableCopy {
public:
    explicit WorldExecutableCopy(const std::string& src)
    {
        std::string tmpl = fmt::format("/tmp/xdpctl-t{}-XXXXXX", getpid());
        if (!mkdtemp(tmpl.data()))
            throw std::runtime_error("mkdtemp: " + std::string(strerror(errno)));
        dir_ = tmpl;
        fs::permissions(dir_, fs::perms(0755));
        path_ = dir_ / "xdpctl";
        fs::copy_file(src, path_);
        fs::permissions(path_, fs::perms(0755));
    }
    ~WorldExecutableCopy()
    {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    std::string path() const { return path_.string(); }

private:
    fs::path dir_, path_;
};

TEST_F(CliErrors, MissingPrivilegesAreReported)
{
    WorldExecutableCopy bin(xdpctl_bin());
    const std::vector<std::string> nobody{"setpriv", "--reuid=65534", "--regid=65534",
                                          "--clear-groups", bin.path(), "-n", lab_->dut().ns};
    for (const auto& cmd : {std::vector<std::string>{"load", lab_->dut().ifname},
                            {"unload", lab_->dut().ifname},
                            {"stats", lab_->dut().ifname},
                            {"status"},
                            {"rule", "add", "--proto", "udp", "--action", "drop"},
                            {"rule", "list"},
                            {"export"},
                            {"set", "create", "s"},
                            {"lb", "list"}}) {
        std::vector<std::string> argv = nobody;
        argv.insert(argv.end(), cmd.begin(), cmd.end());
        CmdResult r = run_cmd(argv);
        ASSERT_NE(r.exit_code, 126) << "nobody cannot execute " << bin.path() << "\n" << r;
        EXPECT_EQ(r.exit_code, 1) << r;
        EXPECT_TRUE(contains(r.err, "privileges")) << r;
    }
    EXPECT_FALSE(fs::exists(lab_->dut_pin_ns_dir()));
    EXPECT_EQ(xdp_prog_id(*lab_), 0u);
}

// A mount namespace of its own (private propagation) where /sys/fs/bpf is unmounted: the
// host's bpffs is never touched. The shell script fails with 99 if it cannot set that up.
std::string without_bpffs(const std::string& then)
{
    return "set -e\n"
           "for i in 1 2 3 4; do\n"
           "  [ \"$(stat -f -c %T /sys/fs/bpf)\" = bpf_fs ] || break\n"
           "  umount /sys/fs/bpf || exit 99\n"
           "done\n"
           "[ \"$(stat -f -c %T /sys/fs/bpf)\" != bpf_fs ] || exit 99\n" +
           then;
}

bool host_bpffs_mounted()
{
    struct statfs st {};
    return statfs("/sys/fs/bpf", &st) == 0 && st.f_type == kBpffsMagic;
}

TEST_F(CliErrors, MountsBpffsItselfWhenMissing)
{
    bool host_had_bpffs = host_bpffs_mounted();
    std::string x = xdpctl_bin() + " -n " + lab_->dut().ns;
    std::string dev = lab_->dut().ifname;
    CmdResult r = run_cmd(
        {"unshare", "--mount", "--propagation", "private", "sh", "-c",
         without_bpffs(x + " load " + dev + "\n" + "stat -f -c %T /sys/fs/bpf\n" + x +
                       " stats " + dev + " --json\n" + x + " unload " + dev + "\n")});
    ASSERT_NE(r.exit_code, 99) << "could not unmount bpffs in a private mount namespace\n" << r;
    EXPECT_EQ(r.exit_code, 0) << r;
    EXPECT_TRUE(contains(r.out, "loaded on")) << r;
    EXPECT_TRUE(contains(r.out, "\nbpf_fs\n")) << "xdpctl should have mounted bpffs\n" << r;
    EXPECT_TRUE(contains(r.out, "unloaded from")) << r;
    // The host is as it was: its bpffs still there, nothing of this lab pinned in it.
    EXPECT_EQ(host_bpffs_mounted(), host_had_bpffs);
    EXPECT_FALSE(fs::exists(lab_->dut_pin_ns_dir()));
    EXPECT_EQ(xdp_prog_id(*lab_), 0u);
}

TEST_F(CliErrors, BpffsMountFailureIsReported)
{
    // Root without CAP_SYS_ADMIN keeps CAP_BPF and CAP_NET_ADMIN but cannot mount.
    CmdResult r = run_cmd({"unshare", "--mount", "--propagation", "private", "sh", "-c",
                           without_bpffs("exec setpriv --bounding-set -sys_admin " + xdpctl_bin() +
                                         " -n " + lab_->dut().ns + " load " +
                                         lab_->dut().ifname + "\n")});
    ASSERT_NE(r.exit_code, 99) << "could not unmount bpffs in a private mount namespace\n" << r;
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, "bpffs")) << r;
    EXPECT_TRUE(contains(r.err, "mount")) << r;
    EXPECT_TRUE(host_bpffs_mounted());
    EXPECT_EQ(xdp_prog_id(*lab_), 0u);
}

// ---- lifecycle ------------------------------------------------------------------------------

struct Mode {
    std::string name;
    std::vector<std::string> load_args;
    std::string ingress_hook;  // where the peer's pings are counted
};

void PrintTo(const Mode& m, std::ostream* os)
{
    *os << m.name;
}

const Mode kModes[] = {
    {"xdp", {"--hook", "xdp"}, "xdp"},
    {"tc_tcx", {"--hook", "tc", "--tc-mode", "tcx"}, "tc_ingress"},
    {"tc_clsact", {"--hook", "tc", "--tc-mode", "clsact"}, "tc_ingress"},
};

class Lifecycle : public ::testing::TestWithParam<Mode> {
protected:
    void SetUp() override
    {
        XDPCTL_REQUIRE_ROOT();
        lab_ = std::make_unique<NetnsLab>();
    }

    uint64_t pings_counted(const StatsSnapshot& s) const
    {
        return s.get(GetParam().ingress_hook + "/l4/icmp").packets;
    }

    // Pings and waits (bounded) until the ingress hook has counted `total` echo requests.
    StatsSnapshot ping_until(int count, uint64_t total)
    {
        lab_->ping_from_peer(lab_->dut().ipv4, count);
        StatsSnapshot s = lab_->stats();
        for (int i = 0; i < 100 && pings_counted(s) < total; i++) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            s = lab_->stats();
        }
        return s;
    }

    std::unique_ptr<NetnsLab> lab_;
};

TEST_P(Lifecycle, LoadCountsAfterExitReloadKeepsCountersUnloadLeavesNothing)
{
    // xdpctl has exited when load returns: what counts now are the pinned links/filters.
    lab_->load(GetParam().load_args);
    auto first = status_entry(*lab_);
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->at("state"), "loaded");
    StatsSnapshot s1 = ping_until(3, 3);
    EXPECT_EQ(pings_counted(s1), 3u);

    std::vector<std::string> again = GetParam().load_args;
    again.push_back("--force");
    CmdResult r = lab_->load_result(again);
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_TRUE(contains(r.out, "reloaded")) << r;
    auto second = status_entry(*lab_);
    ASSERT_TRUE(second.has_value());
    EXPECT_NE(prog_ids(*second), prog_ids(*first)) << "the programs should have been replaced";
    EXPECT_NE(second->at("reloaded_at"), "");
    EXPECT_EQ(second->at("loaded_at"), first->at("loaded_at"));
    // The lab is quiet: nothing moved, and above all nothing was reset.
    EXPECT_EQ(s1.delta_to(lab_->stats()), CounterMap{});

    StatsSnapshot s2 = ping_until(2, 5);
    EXPECT_EQ(pings_counted(s2), 5u);

    r = lab_->xdpctl_dut({"unload", lab_->dut().ifname});
    EXPECT_EQ(r.exit_code, 0) << r;
    expect_nothing_left(*lab_);
}

INSTANTIATE_TEST_SUITE_P(Modes, Lifecycle, ::testing::ValuesIn(kModes),
                         [](const auto& info) { return info.param.name; });

// ---- interrupted loads ------------------------------------------------------------------------
// A load killed between its steps leaves some of: the pin directory with the maps, links
// attached but unpinned (they die with the process), pinned links without the meta record,
// clsact filters (they are not links: they outlive the process) without any pin. Each state
// is made by hand from a complete load, and the next load or unload must cope with it.

class Interrupted : public LabTest {
protected:
    void rm_pins(std::initializer_list<const char*> names)
    {
        for (const char* n : names) {
            std::string p = lab_->dut_pin_dir() + "/" + n;
            ASSERT_TRUE(fs::exists(p)) << p;
            fs::remove(p);
        }
    }
};

TEST_F(Interrupted, LinkPinRemovedDetachesAndLoadStartsOverKeepingCounters)
{
    lab_->load({"--hook", "xdp"});
    lab_->ping_from_peer(lab_->dut().ipv4, 2);
    StatsSnapshot before = lab_->stats();
    ASSERT_EQ(before.get("xdp/l4/icmp").packets, 2u);

    // The link's only reference was its pin: removing it detaches the program, as if the
    // load had been killed before pinning.
    rm_pins({"link_xdp"});
    EXPECT_EQ(xdp_prog_id(*lab_), 0u);

    CmdResult r = lab_->load_result({"--hook", "xdp"});
    ASSERT_EQ(r.exit_code, 0) << r;
    auto st = status_entry(*lab_);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->at("state"), "loaded");
    ASSERT_EQ(prog_ids(*st).size(), 1u);
    EXPECT_EQ(xdp_prog_id(*lab_), prog_ids(*st)[0]);
    EXPECT_EQ(lab_->stats().get("xdp/l4/icmp").packets, 2u) << "the pinned maps were reused";

    r = lab_->xdpctl_dut({"unload", lab_->dut().ifname});
    EXPECT_EQ(r.exit_code, 0) << r;
    expect_nothing_left(*lab_);
}

TEST_F(Interrupted, TcxLinkPinsRemovedThenLoadAndUnload)
{
    lab_->load({"--hook", "tc", "--tc-mode", "tcx"});
    rm_pins({"link_tc_in", "link_tc_eg"});
    EXPECT_EQ(bpftool_net(*lab_).at("tc"), json::array());

    CmdResult r = lab_->load_result({"--hook", "tc", "--tc-mode", "tcx"});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_EQ(bpftool_net(*lab_).at("tc").size(), 2u);

    r = lab_->xdpctl_dut({"unload", lab_->dut().ifname});
    EXPECT_EQ(r.exit_code, 0) << r;
    expect_nothing_left(*lab_);
}

TEST_F(Interrupted, MetaRecordMissingShowsPartialAndLoadFinishesIt)
{
    lab_->load({"--hook", "xdp"});
    unsigned old_prog = xdp_prog_id(*lab_);
    rm_pins({"meta"});  // killed after pinning the links, before writing the record
    auto st = status_entry(*lab_);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->at("state"), "partial");

    CmdResult r = lab_->load_result({"--hook", "xdp"});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_TRUE(contains(r.out, "interrupted")) << "should say what it cleaned up\n" << r;
    st = status_entry(*lab_);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->at("state"), "loaded");
    EXPECT_NE(xdp_prog_id(*lab_), old_prog);
    EXPECT_EQ(xdp_prog_id(*lab_), prog_ids(*st).at(0));

    r = lab_->xdpctl_dut({"unload", lab_->dut().ifname});
    EXPECT_EQ(r.exit_code, 0) << r;
    expect_nothing_left(*lab_);
}

TEST_F(Interrupted, MetaRecordMissingThenUnload)
{
    lab_->load({"--hook", "both", "--tc-mode", "tcx"});
    rm_pins({"meta"});
    CmdResult r = lab_->xdpctl_dut({"unload", lab_->dut().ifname});
    EXPECT_EQ(r.exit_code, 0) << r;
    expect_nothing_left(*lab_);
}

// clsact filters outlive the process that attached them: a load killed after attaching
// them but before pinning leaves filters no pin points to.
TEST_F(Interrupted, ClsactFiltersWithoutPinsThenLoadAndUnload)
{
    lab_->load({"--hook", "tc", "--tc-mode", "clsact"});
    rm_pins({"prog_tc_in", "prog_tc_eg", "meta"});
    ASSERT_TRUE(contains(tc_filters(*lab_, "ingress"), "xdpctl_tc_in"));
    ASSERT_TRUE(contains(tc_filters(*lab_, "egress"), "xdpctl_tc_eg"));

    CmdResult r = lab_->load_result({"--hook", "tc", "--tc-mode", "clsact"});
    ASSERT_EQ(r.exit_code, 0) << r;
    // Replaced in place, not added next to the stale one.
    EXPECT_EQ(bpftool_net(*lab_).at("tc").size(), 2u) << bpftool_net(*lab_).dump();

    r = lab_->xdpctl_dut({"unload", lab_->dut().ifname});
    EXPECT_EQ(r.exit_code, 0) << r;
    // The record that xdpctl created the clsact qdisc was lost with the meta pin, so the
    // (now empty) qdisc stays: xdpctl removes only a qdisc it knows it made.
    expect_nothing_left(*lab_, /*qdisc_gone=*/false);
}

TEST_F(Interrupted, ClsactFiltersWithoutPinsThenUnload)
{
    lab_->load({"--hook", "tc", "--tc-mode", "clsact"});
    rm_pins({"prog_tc_in", "prog_tc_eg", "meta"});
    CmdResult r = lab_->xdpctl_dut({"unload", lab_->dut().ifname});
    EXPECT_EQ(r.exit_code, 0) << r;
    expect_nothing_left(*lab_, /*qdisc_gone=*/false);
}

// ---- status and stats output ------------------------------------------------------------------

class CliOutput : public LabTest {};

TEST_F(CliOutput, StatusShowsVerifiedInstructionsAndJitSize)
{
    lab_->load({"--hook", "both"});
    auto st = status_entry(*lab_);
    ASSERT_TRUE(st.has_value());
    std::vector<std::string> hooks;
    for (const auto& p : st->at("programs")) {
        hooks.push_back(p.at("hook").get<std::string>());
        EXPECT_GT(p.at("verified_insns").get<uint64_t>(), 0u) << p.dump();
        EXPECT_GT(p.at("jited_bytes").get<uint64_t>(), 0u) << p.dump();
        EXPECT_GT(p.at("xlated_bytes").get<uint64_t>(), 0u) << p.dump();
        EXPECT_EQ(p.at("attached"), true) << p.dump();
    }
    std::sort(hooks.begin(), hooks.end());
    EXPECT_EQ(hooks, (std::vector<std::string>{"tc_egress", "tc_ingress", "xdp"}));
    EXPECT_GT(st->at("memlock_bytes").get<uint64_t>(), 0u);
}

TEST_F(CliOutput, StatsIntervalPrintsOneJsonLinePerPeriodWithRates)
{
    lab_->load({"--hook", "both"});
    CmdResult r = lab_->xdpctl_dut(
        {"stats", lab_->dut().ifname, "--interval", "0.2", "--count", "2", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r;
    std::istringstream in(r.out);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);)
        if (!l.empty())
            lines.push_back(l);
    ASSERT_EQ(lines.size(), 2u) << r;
    for (const auto& line : lines) {
        json j = json::parse(line);
        EXPECT_GT(j.at("interval_s").get<double>(), 0.0) << line;
        ASSERT_EQ(j.at("interfaces").size(), 1u) << line;
        const json& hooks = j["interfaces"][0].at("hooks");
        EXPECT_EQ(hooks.size(), 3u) << line;
        for (const auto& [hook, groups] : hooks.items())
            for (const auto& [group, ctrs] : groups.items())
                for (const auto& [name, c] : ctrs.items()) {
                    std::string where = hook + "/" + group + "/" + name;
                    EXPECT_TRUE(c.contains("pps") && c["pps"].is_number()) << where;
                    EXPECT_TRUE(c.contains("bps") && c["bps"].is_number()) << where;
                }
    }
}

}  // namespace
}  // namespace xdpctl::test
