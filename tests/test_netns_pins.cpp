// Pins of namespaces that share one bpffs (issue 11, item 3): two network namespaces each
// with an interface of the same name, xdpctl run inside each (nsenter --net, as in a
// container that mounts the host's /sys/fs/bpf) or from outside with -n. Each namespace's
// pins are its own, a pinned link is checked before it is reused, stale pins show in
// status and go with unload, and the previous release's name-keyed pins are still found.
// Also `unload --all`, which asks for --yes before deleting a policy alone.
#include <net/if.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "netns_lab.h"
#include "attach/pin_layout.h"
#include "attach/xdp_attach.h"

namespace xdpctl::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kIf = "xp0";  // the same name in both namespaces

bool contains(const std::string& s, const std::string& what)
{
    return s.find(what) != std::string::npos;
}

// XDP program id on kIf in `ns`, from the kernel; 0 when none (or no such interface).
unsigned xdp_prog(const std::string& ns)
{
    return in_netns(ns, [] {
        int idx = int(if_nametoindex(kIf));
        return idx ? query_xdp(idx).prog_id : 0u;
    });
}

// Programs on kIf's tcx ingress in `ns`.
unsigned tcx_ingress_progs(const std::string& ns)
{
    return in_netns(ns, [] {
        int idx = int(if_nametoindex(kIf));
        if (!idx)
            return 0u;
        __u32 ids[16] = {};
        LIBBPF_OPTS(bpf_prog_query_opts, q, .prog_ids = ids, .count = 16);
        if (bpf_prog_query_opts(idx, BPF_TCX_INGRESS, &q) != 0)
            return 0u;
        return q.count;
    });
}

// Two namespaces, each with a veth pair kIf <-> xp1 of its own.
class NetnsPins : public ::testing::Test {
protected:
    void SetUp() override
    {
        XDPCTL_REQUIRE_ROOT();
        a_ = unique_ns_name("-a");
        b_ = unique_ns_name("-b");
        slot_ = register_emergency_cleanup(fmt::format(
            "exec >/dev/null 2>&1; PATH=$PATH:/usr/sbin:/sbin; for n in {0} {1}; do "
            "nsenter --net=/run/netns/$n '{2}' unload {3}; nsenter --net=/run/netns/$n '{2}' lb "
            "decap detach {3}; ip netns del $n; done",
            a_, b_, xdpctl_bin(), kIf));
        for (const auto& ns : {a_, b_}) {
            run_ok({"ip", "netns", "add", ns});
            run_ok({"ip", "-n", ns, "link", "add", kIf, "type", "veth", "peer", "name", "xp1"});
            run_ok({"ip", "-n", ns, "link", "set", kIf, "up"});
            run_ok({"ip", "-n", ns, "link", "set", "xp1", "up"});
        }
    }

    void TearDown() override
    {
        for (const auto& ns : {a_, b_}) {
            if (ns.empty())
                continue;
            // From inside while the namespace exists; by its recorded name once it is gone.
            if (fs::exists("/run/netns/" + ns)) {
                inside(ns, {"unload", kIf});
                inside(ns, {"lb", "decap", "detach", kIf});
                run_cmd({"ip", "netns", "del", ns});
            } else {
                xdpctl({"-n", ns, "unload", kIf});
                xdpctl({"-n", ns, "lb", "decap", "detach", kIf});
            }
        }
        release_emergency_cleanup(slot_);
    }

    // xdpctl run inside the namespace, without -n: what a container does.
    static CmdResult inside(const std::string& ns, const std::vector<std::string>& args)
    {
        std::vector<std::string> argv{"nsenter", "--net=/run/netns/" + ns, xdpctl_bin()};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_cmd(argv);
    }

    static std::string pin_dir(const std::string& ns)
    {
        auto id = named_netns_id(ns);
        return id ? iface_pin_dir(*id, kIf) : "";
    }

    // `status --json`'s entry for kIf of the namespace whose pins are under `dir`.
    static std::optional<json> status_of(const std::string& dir)
    {
        const json st = xdpctl_json({"status", "--json"});
        for (const auto& i : st.at("interfaces"))
            if (i.at("pin_dir") == dir)
                return i;
        return std::nullopt;
    }

    std::string a_, b_;
    int slot_ = -1;
};

TEST_F(NetnsPins, LoadInsideEachNamespaceAttachesInBothAndUnloadLeavesTheOther)
{
    CmdResult r = inside(a_, {"load", kIf, "--mode", "skb"});
    ASSERT_EQ(r.exit_code, 0) << r;
    r = inside(b_, {"load", kIf, "--mode", "skb"});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_TRUE(contains(r.out, "loaded on " + std::string(kIf))) << r;
    const unsigned in_a = xdp_prog(a_), in_b = xdp_prog(b_);
    EXPECT_NE(in_a, 0u) << "nothing attached in " << a_;
    EXPECT_NE(in_b, 0u) << "nothing attached in " << b_;
    EXPECT_NE(in_a, in_b);
    EXPECT_NE(pin_dir(a_), pin_dir(b_));
    EXPECT_TRUE(fs::exists(pin_dir(a_))) << pin_dir(a_);
    EXPECT_TRUE(fs::exists(pin_dir(b_))) << pin_dir(b_);

    // A reload in B replaces B's program, never A's.
    r = inside(b_, {"load", "--force", kIf, "--mode", "skb"});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_TRUE(contains(r.out, "reloaded on")) << r;
    EXPECT_EQ(xdp_prog(a_), in_a);
    EXPECT_NE(xdp_prog(b_), in_b);
    EXPECT_NE(xdp_prog(b_), 0u);

    // status from the host names each by its namespace.
    auto sa = status_of(pin_dir(a_)), sb = status_of(pin_dir(b_));
    ASSERT_TRUE(sa && sb);
    EXPECT_EQ(sa->at("netns"), a_);
    EXPECT_EQ(sb->at("netns"), b_);
    EXPECT_EQ(sa->at("state"), "loaded") << sa->dump();

    r = inside(a_, {"unload", kIf});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_EQ(xdp_prog(a_), 0u);
    EXPECT_NE(xdp_prog(b_), 0u) << "unload in " << a_ << " detached " << b_ << "'s program";
    EXPECT_FALSE(fs::exists(pin_dir(a_)));
    EXPECT_TRUE(fs::exists(pin_dir(b_)));
}

// -n NS and nsenter into NS reach the same pins: they key on the namespace, not the name.
TEST_F(NetnsPins, DashNAndNsenterFindTheSamePins)
{
    CmdResult r = inside(a_, {"load", kIf, "--mode", "skb"});
    ASSERT_EQ(r.exit_code, 0) << r;
    r = xdpctl({"-n", b_, "load", kIf, "--mode", "skb"});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_NE(xdp_prog(b_), 0u);

    r = xdpctl({"-n", a_, "load", kIf, "--mode", "skb"});
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, "already loaded")) << r;

    r = xdpctl({"-n", a_, "unload", kIf});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_EQ(xdp_prog(a_), 0u);
    EXPECT_NE(xdp_prog(b_), 0u);
    r = inside(b_, {"unload", kIf});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_EQ(xdp_prog(b_), 0u);
}

TEST_F(NetnsPins, DecapAttachInsideEachNamespace)
{
    CmdResult r = inside(a_, {"lb", "decap", "attach", kIf, "198.18.0.2"});
    ASSERT_EQ(r.exit_code, 0) << r;
    r = inside(b_, {"lb", "decap", "attach", kIf, "198.18.0.2"});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_TRUE(contains(r.out, "attached to")) << r;
    EXPECT_EQ(tcx_ingress_progs(a_), 1u);
    EXPECT_EQ(tcx_ingress_progs(b_), 1u) << "the decapsulator was not attached in " << b_;

    // Attaching again updates the addresses of this namespace's decapsulator only.
    r = inside(b_, {"lb", "decap", "attach", kIf, "198.18.0.3"});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_TRUE(contains(r.out, "updated on")) << r;
    EXPECT_EQ(tcx_ingress_progs(b_), 1u);

    r = inside(a_, {"lb", "decap", "detach", kIf});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_EQ(tcx_ingress_progs(a_), 0u);
    EXPECT_EQ(tcx_ingress_progs(b_), 1u);

    // B deleted while attached: status shows its pins stale, found by the name B had.
    const std::string dir = decap_pin_dir(*named_netns_id(b_), kIf);
    ASSERT_TRUE(fs::exists(dir)) << dir;
    auto decap_state = [&] {
        const json st = xdpctl_json({"status", "--json"});
        for (const auto& d : st.at("decapsulators"))
            if (d.at("pin_dir") == dir)
                return d.at("state").get<std::string>();
        return std::string("missing");
    };
    EXPECT_EQ(decap_state(), "attached");
    run_ok({"ip", "netns", "del", b_});
    EXPECT_EQ(decap_state(), "stale");
    r = xdpctl({"-n", b_, "lb", "decap", "detach", kIf});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_FALSE(fs::exists(dir));
}

// The interface is deleted under a load, then made again: the pinned link is detached.
TEST_F(NetnsPins, StaleLinkIsShownRefusedAndCleanedByUnload)
{
    CmdResult r = xdpctl({"-n", a_, "load", kIf, "--mode", "skb"});
    ASSERT_EQ(r.exit_code, 0) << r;
    const std::string dir = pin_dir(a_);
    run_ok({"ip", "-n", a_, "link", "del", kIf});
    run_ok({"ip", "-n", a_, "link", "add", kIf, "type", "veth", "peer", "name", "xp1"});

    auto st = status_of(dir);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->at("state"), "stale") << st->dump();
    ASSERT_FALSE(st->at("stale").empty());
    EXPECT_TRUE(contains(st->at("stale")[0].get<std::string>(), "detached")) << st->dump();
    r = xdpctl({"status"});
    EXPECT_TRUE(contains(r.out, "stale")) << r;

    // Reused, an update of the detached link would attach nothing: refused, naming the pin.
    r = xdpctl({"-n", a_, "load", kIf, "--mode", "skb"});
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, dir + "/link_xdp")) << r;
    EXPECT_TRUE(contains(r.err, "detached")) << r;
    EXPECT_EQ(xdp_prog(a_), 0u);

    r = xdpctl({"-n", a_, "unload", kIf});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_FALSE(fs::exists(dir));
    EXPECT_FALSE(status_of(dir).has_value());
}

// The namespace is deleted under a load: status shows the pins as stale, and unload finds
// them by the name the namespace had.
TEST_F(NetnsPins, PinsOfADeletedNamespaceAreShownAndCleaned)
{
    CmdResult r = inside(b_, {"load", kIf, "--mode", "skb"});
    ASSERT_EQ(r.exit_code, 0) << r;
    const std::string dir = pin_dir(b_);
    run_ok({"ip", "netns", "del", b_});

    auto st = status_of(dir);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->at("state"), "stale") << st->dump();
    EXPECT_EQ(st->at("netns"), b_) << "the name it had, for display";

    r = xdpctl({"-n", b_, "unload", kIf});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_FALSE(fs::exists(dir));
    EXPECT_FALSE(fs::exists(fs::path(dir).parent_path().parent_path())) << "the namespace's directory";
}

// The previous release kept pins under xdpctl/if/NAME and xdpctl/netns/NS/if/NAME.
TEST_F(NetnsPins, PreviousReleasePinsAreMovedOnLoadAndUnloaded)
{
    CmdResult r = xdpctl({"-n", a_, "load", kIf, "--mode", "skb"});
    ASSERT_EQ(r.exit_code, 0) << r;
    const unsigned prog = xdp_prog(a_);
    const std::string legacy = legacy_iface_pin_dir({a_, kIf});
    fs::create_directories(fs::path(legacy).parent_path());
    fs::rename(pin_dir(a_), legacy);
    ASSERT_TRUE(status_of(legacy).has_value());

    r = xdpctl({"-n", a_, "load", "--force", kIf, "--mode", "skb"});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_TRUE(contains(r.out, "reloaded on")) << r;
    EXPECT_TRUE(contains(r.out, "previous release")) << r;
    EXPECT_FALSE(fs::exists(legacy));
    EXPECT_TRUE(fs::exists(pin_dir(a_)));
    EXPECT_NE(xdp_prog(a_), prog);
    EXPECT_NE(xdp_prog(a_), 0u);

    // xdpctl/if/NAME made inside A (no -n) is A's: B, sharing the bpffs, does not take it.
    fs::create_directories(fs::path(legacy_iface_pin_dir({"", kIf})).parent_path());
    fs::rename(pin_dir(a_), legacy_iface_pin_dir({"", kIf}));
    r = inside(b_, {"load", kIf, "--mode", "skb"});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_NE(xdp_prog(b_), 0u);
    EXPECT_NE(xdp_prog(a_), 0u);
    EXPECT_TRUE(fs::exists(legacy_iface_pin_dir({"", kIf})));
    r = inside(b_, {"unload", kIf});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_NE(xdp_prog(a_), 0u);

    // Seen from B (its own pins gone), those pins point at A's interface: refused.
    r = inside(b_, {"unload", kIf});
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_TRUE(contains(r.err, "another network namespace")) << r;
    EXPECT_NE(xdp_prog(a_), 0u);

    r = inside(a_, {"unload", kIf});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_EQ(xdp_prog(a_), 0u);
    EXPECT_FALSE(fs::exists(legacy_iface_pin_dir({"", kIf})));
}

class UnloadAll : public NoPolicyTest {};

TEST_F(UnloadAll, PolicyAloneNeedsYes)
{
    // No interface loaded anywhere (with the host's bpffs, another suite's leftovers).
    run_cmd({xdpctl_bin(), "unload", "--all", "--yes"});
    xdpctl_ok({"rule", "add", "--proto", "udp", "--dport", "9", "--action", "drop"});
    CmdResult r = xdpctl({"unload", "--all"});
    EXPECT_EQ(r.exit_code, 2) << r;
    EXPECT_TRUE(contains(r.err, "1 rule(s)")) << r;
    EXPECT_TRUE(contains(r.err, "--yes")) << r;
    EXPECT_TRUE(contains(xdpctl_export(), "--dport 9")) << "the policy must stay";

    r = xdpctl({"unload", "--all", "--yes"});
    EXPECT_EQ(r.exit_code, 0) << r;
    EXPECT_TRUE(contains(r.out, "deleted the policy: 1 rule(s)")) << r;
    EXPECT_FALSE(contains(xdpctl_export(), "--dport 9"));
}

TEST_F(UnloadAll, WithAnInterfaceSaysWhatItDeleted)
{
    NetnsLab lab;
    lab.load();
    xdpctl_ok({"rule", "add", "--proto", "udp", "--dport", "9", "--action", "drop"});
    CmdResult r = xdpctl({"unload", "--all"});
    EXPECT_EQ(r.exit_code, 0) << r;
    EXPECT_TRUE(contains(r.out, "unloaded from " + lab.dut().ifname + "@" + lab.dut().ns)) << r;
    EXPECT_TRUE(contains(r.out, "deleted the policy: 1 rule(s)")) << r;
}

// The namespace is deleted under a load: --all removes its stale pins, naming them.
TEST_F(UnloadAll, CleansStalePins)
{
    NetnsLab lab;
    lab.load();
    const std::string dir = lab.dut_pin_dir();
    run_ok({"ip", "netns", "del", lab.dut().ns});
    CmdResult r = xdpctl({"unload", "--all"});
    EXPECT_EQ(r.exit_code, 0) << r;
    EXPECT_TRUE(contains(r.out, "unloaded from " + lab.dut().ifname + "@" + lab.dut().ns)) << r;
    EXPECT_FALSE(fs::exists(dir));
}

}  // namespace
}  // namespace xdpctl::test
