// Other programs beside xdpctl's. XDP: `load --next PINNED_PROG` tail-calls a next program
// on what xdpctl passes (tests/bpf/xdpctl_test_chain.bpf.c counts what reaches it); the slot
// changes without a reattach; each bad --next gets its own message. TC: tcx already chains:
// programs attached before and after xdpctl's all run, in order, with xdpctl's verdicts.
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include "netns_lab.h"
#include "attach/skeleton.h"
#include "util/unique_fd.h"
#include "xdpctl_test_chain.skel.h"

namespace xdpctl::test {
namespace {

enum { SEEN_NEXT, SEEN_NEXT_FRAGS, SEEN_TC_BEFORE, SEEN_TC_AFTER };
constexpr uint64_t kSmallUdp = 14 + 20 + 8 + 1;  // udp_through's one-byte datagrams

struct Seen {
    uint64_t packets = 0, bytes = 0;
    bool operator==(const Seen&) const = default;
};

// The helper programs, loaded and pinned (in the test's bpffs) for xdpctl to find.
class Helpers {
public:
    explicit Helpers(uint16_t drop_before = 0, uint16_t drop_after = 0)
    {
        skel_.reset(xdpctl_test_chain::open());
        if (!skel_)
            throw std::runtime_error("cannot open the test helper programs");
        skel_->rodata->drop_port_before = drop_before;
        skel_->rodata->drop_port_after = drop_after;
        if (xdpctl_test_chain::load(skel_.get()))
            throw std::runtime_error("cannot load the test helper programs");
        dir_ = "/sys/fs/bpf/xdpctl-test-chain-" + std::to_string(getpid());
        std::filesystem::create_directories(dir_);
        pin(bpf_program__fd(skel_->progs.test_next), "next");
        pin(bpf_program__fd(skel_->progs.test_next_frags), "next_frags");
        pin(bpf_program__fd(skel_->progs.test_tc_before), "tc_prog");
        pin(bpf_map__fd(skel_->maps.seen), "map");
    }
    ~Helpers() { std::filesystem::remove_all(dir_); }

    std::string path(const std::string& name) const { return dir_ + "/" + name; }
    xdpctl_test_chain* skel() const { return skel_.get(); }
    Seen seen(uint32_t slot) const
    {
        Seen s;
        bpf_map__lookup_elem(skel_->maps.seen, &slot, sizeof(slot), &s, sizeof(s), 0);
        return s;
    }
    static uint32_t id(const bpf_program* p)
    {
        bpf_prog_info info{};
        __u32 len = sizeof(info);
        bpf_prog_get_info_by_fd(bpf_program__fd(p), &info, &len);
        return info.id;
    }

private:
    void pin(int fd, const std::string& name)
    {
        if (bpf_obj_pin(fd, path(name).c_str()))
            throw std::runtime_error("cannot pin " + path(name));
    }
    SkelPtr<xdpctl_test_chain> skel_;
    std::string dir_;
};

Seen operator-(const Seen& a, const Seen& b) { return {a.packets - b.packets, a.bytes - b.bytes}; }

nlohmann::json dut_status(const NetnsLab& lab)
{
    auto st = xdpctl_json({"-n", lab.dut().ns, "status", "--json"});
    if (st["interfaces"].size() != 1)
        throw std::runtime_error("status lists " + std::to_string(st["interfaces"].size()) + " interfaces");
    return st["interfaces"][0];
}

class Chain : public NoPolicyTest {};

TEST_F(Chain, XdpNextRunsOnWhatXdpctlPasses)
{
    NetnsLab lab;
    Helpers h;
    const uint32_t next_id = Helpers::id(h.skel()->progs.test_next);
    lab.load({"--next", h.path("next")});
    auto st = dut_status(lab);
    EXPECT_EQ(st["next"]["id"], next_id) << st.dump();
    EXPECT_EQ(st["xdp_mode"], "native");
    const auto xdp_prog_id = st["programs"][0]["id"];
    ASSERT_EQ(xdpctl({"rule", "add", "--id", "1", "--proto", "udp", "--dport", "7003", "--action", "drop"})
                  .exit_code, 0);

    // Passed by xdpctl: the next program sees each frame, whole and unchanged.
    Seen before = h.seen(SEEN_NEXT);
    StatsSnapshot s0 = lab.stats();
    EXPECT_EQ(udp_through(lab, 7002, 5), 5);
    EXPECT_EQ(h.seen(SEEN_NEXT) - before, (Seen{5, 5 * kSmallUdp}));
    // Dropped by xdpctl: the next program never sees them.
    EXPECT_EQ(udp_through(lab, 7003, 3), 0);
    CounterMap d = lab.wait_delta(s0, [](const CounterMap& m) { return m.count("xdp/verdict/drop"); });
    EXPECT_EQ(d["xdp/verdict/pass"], (Ctr{5, 5 * kSmallUdp}));
    EXPECT_EQ(d["xdp/verdict/drop"], (Ctr{3, 3 * kSmallUdp}));
    EXPECT_EQ(h.seen(SEEN_NEXT) - before, (Seen{5, 5 * kSmallUdp}));

    // A reload keeps the next program.
    lab.load({"--force"});
    EXPECT_EQ(dut_status(lab)["next"]["id"], next_id);
    before = h.seen(SEEN_NEXT);
    EXPECT_EQ(udp_through(lab, 7002, 2), 2);
    EXPECT_EQ((h.seen(SEEN_NEXT) - before).packets, 2u);

    // --next none on the loaded interface: frames pass as before, the next program sees none.
    CmdResult none = lab.load_result({"--next", "none"});
    ASSERT_EQ(none.exit_code, 0) << none;
    EXPECT_TRUE(dut_status(lab)["next"].is_null());
    before = h.seen(SEEN_NEXT);
    EXPECT_EQ(udp_through(lab, 7002, 2), 2);
    EXPECT_EQ(h.seen(SEEN_NEXT) - before, Seen{});

    // Set again, then replaced by the same kind: only the slot changes, the program attached
    // stays (same id, no reattach).
    lab.load({"--next", h.path("next")});
    const auto prog_with_next = dut_status(lab)["programs"][0]["id"];
    EXPECT_NE(prog_with_next, xdp_prog_id);  // the program without a tail call was swapped out
    lab.load({"--next", h.path("next")});
    st = dut_status(lab);
    EXPECT_EQ(st["programs"][0]["id"], prog_with_next);
    EXPECT_EQ(st["next"]["id"], next_id);
    before = h.seen(SEEN_NEXT);
    EXPECT_EQ(udp_through(lab, 7002, 2), 2);
    EXPECT_EQ((h.seen(SEEN_NEXT) - before).packets, 2u);

    // unload takes xdpctl's array away; the next program, pinned by its owner, stays.
    xdpctl_ok({"-n", lab.dut().ns, "unload", lab.dut().ifname});
    EXPECT_TRUE(std::filesystem::exists(h.path("next")));
}

// Each wrong --next is a usage error (exit 2) saying what is wrong, and changes nothing.
TEST_F(Chain, BadNextIsRefusedWithItsReason)
{
    NetnsLab lab;
    Helpers h;
    struct Case {
        std::string path, says;
    } cases[] = {
        {h.path("missing"), "no such pin"},
        {h.path("map"), "is not a program but a map"},
        {h.path("tc_prog"), "is a sched_cls program"},
    };
    for (const auto& c : cases) {
        CmdResult r = lab.load_result({"--next", c.path});
        EXPECT_EQ(r.exit_code, 2) << r;
        EXPECT_NE(r.err.find(c.says), std::string::npos) << r;
        EXPECT_FALSE(std::filesystem::exists(lab.dut_pin_dir())) << "a refused load left pins";
    }
    CmdResult tc = lab.load_result({"--hook", "tc", "--next", h.path("next")});
    EXPECT_EQ(tc.exit_code, 2) << tc;
    EXPECT_NE(tc.err.find("it needs --hook xdp or both"), std::string::npos) << tc;

    // At a standard MTU a multi-buffer next program makes xdpctl multi-buffer too.
    lab.load({"--next", h.path("next_frags")});
    EXPECT_EQ(dut_status(lab)["xdp_multi_buffer"], true);
    xdpctl_ok({"-n", lab.dut().ns, "unload", lab.dut().ifname});

    // Loaded already: the same errors leave the interface as it was.
    lab.load();
    CmdResult r = lab.load_result({"--next", h.path("map")});
    EXPECT_EQ(r.exit_code, 2) << r;
    EXPECT_TRUE(dut_status(lab)["next"].is_null());

    // Jumbo MTU: xdpctl is multi-buffer, a single-buffer next program cannot follow it.
    // (While single-buffer xdpctl is attached, veth refuses the MTU: unloaded first.)
    xdpctl_ok({"-n", lab.dut().ns, "unload", lab.dut().ifname});
    for (const LabEnd* e : {&lab.peer(), &lab.dut()})
        run_ok({"ip", "-n", e->ns, "link", "set", "dev", e->ifname, "mtu", "9000"});
    r = lab.load_result({"--next", h.path("next")});
    EXPECT_EQ(r.exit_code, 2) << r;
    EXPECT_NE(r.err.find("single-buffer: load it as SEC(\"xdp.frags\")"), std::string::npos) << r;
    EXPECT_FALSE(std::filesystem::exists(lab.dut_pin_dir())) << "a refused load left pins";
}

// A multi-buffer next program behind the multi-buffer xdpctl of a jumbo MTU gets whole
// 9014-byte frames, natively.
TEST_F(Chain, XdpNextMultiBufferGetsWholeJumboFrames)
{
    NetnsLab lab;
    Helpers h;
    for (const LabEnd* e : {&lab.peer(), &lab.dut()})
        run_ok({"ip", "-n", e->ns, "link", "set", "dev", e->ifname, "mtu", "9000"});
    lab.load({"--next", h.path("next_frags")});
    auto st = dut_status(lab);
    EXPECT_EQ(st["xdp_mode"], "native");
    EXPECT_EQ(st["xdp_multi_buffer"], true);
    Seen before = h.seen(SEEN_NEXT_FRAGS);
    run_ok({"ip", "netns", "exec", lab.peer().ns, "ping", "-q", "-n", "-c", "3", "-i", "0.01", "-W", "2",
            "-M", "do", "-s", "8972", lab.dut().ipv4});
    EXPECT_EQ(h.seen(SEEN_NEXT_FRAGS) - before, (Seen{3, 3 * 9014}));
}

// tcx: a program attached before xdpctl's and one after; all three run, in that order.
TEST_F(Chain, TcxProgramsBeforeAndAfterXdpctl)
{
    NetnsLab lab;
    lab.load({"--hook", "tc"});
    // before drops 7001, xdpctl drops 7003, after drops 7002.
    Helpers h(7001, 7002);
    ASSERT_EQ(xdpctl({"rule", "add", "--id", "1", "--proto", "udp", "--dport", "7003", "--action", "drop"})
                  .exit_code, 0);
    auto links = in_netns(lab.dut().ns, [&] {
        int ifindex = int(if_nametoindex(lab.dut().ifname.c_str()));
        LIBBPF_OPTS(bpf_tcx_opts, before, .flags = BPF_F_BEFORE);
        LIBBPF_OPTS(bpf_tcx_opts, after, .flags = BPF_F_AFTER);
        std::pair<bpf_link*, bpf_link*> l{bpf_program__attach_tcx(h.skel()->progs.test_tc_before, ifindex, &before),
                                          bpf_program__attach_tcx(h.skel()->progs.test_tc_after, ifindex, &after)};
        return l;
    });
    ASSERT_TRUE(links.first && links.second) << "cannot attach the tcx helpers";

    // The order the kernel runs them in.
    auto order = in_netns(lab.dut().ns, [&] {
        __u32 ids[8] = {};
        LIBBPF_OPTS(bpf_prog_query_opts, q, .prog_ids = ids, .count = 8);
        bpf_prog_query_opts(int(if_nametoindex(lab.dut().ifname.c_str())), BPF_TCX_INGRESS, &q);
        return std::vector<__u32>(ids, ids + q.count);
    });
    auto st = dut_status(lab);
    __u32 xdpctl_in = 0;
    for (const auto& p : st["programs"])
        if (p["hook"] == "tc_ingress")
            xdpctl_in = p["id"];
    EXPECT_EQ(order, (std::vector<__u32>{Helpers::id(h.skel()->progs.test_tc_before), xdpctl_in,
                                         Helpers::id(h.skel()->progs.test_tc_after)}));

    StatsSnapshot s0 = lab.stats();
    Seen b0 = h.seen(SEEN_TC_BEFORE), a0 = h.seen(SEEN_TC_AFTER);
    EXPECT_EQ(udp_through(lab, 7001, 4), 0);  // before drops: xdpctl and after never see them
    EXPECT_EQ(udp_through(lab, 7002, 3), 0);  // xdpctl passes, after drops
    EXPECT_EQ(udp_through(lab, 7003, 2), 0);  // xdpctl drops: after never sees them
    EXPECT_EQ(udp_through(lab, 7004, 5), 5);  // all pass
    EXPECT_EQ(h.seen(SEEN_TC_BEFORE) - b0, (Seen{14, 14 * kSmallUdp}));
    EXPECT_EQ(h.seen(SEEN_TC_AFTER) - a0, (Seen{8, 8 * kSmallUdp}));
    CounterMap want;
    for (auto [key, n] : {std::pair<std::string, uint64_t>{"tc_ingress/l3/ipv4", 10},
                          {"tc_ingress/l4/udp", 10}, {"tc_ingress/verdict/pass", 8},
                          {"tc_ingress/verdict/drop", 2}})
        want[key] = Ctr{n, n * kSmallUdp};
    CounterMap d = lab.wait_delta(s0, [&](const CounterMap& m) { return m == want; });
    // TC egress sees nothing: no answer to UDP a socket took or a program dropped.
    EXPECT_EQ(d, want);
    bpf_link__destroy(links.first);
    bpf_link__destroy(links.second);
}

// libxdp's dispatcher: xdpctl's answer (status) must be libxdp's own. xdp-loader (xdp-tools)
// loads a program through the dispatcher where the kernel allows it, and otherwise says why
// and loads it alone. Where it cannot run, xdpctl must report it unavailable with the
// kernel's reason (the same errno); where it runs, available.
TEST_F(Chain, LibxdpDispatcherAvailabilityIsDetected)
{
    NetnsLab lab;
    const char* obj = std::getenv("XDPCTL_FOREIGN_XDP_OBJ");
    ASSERT_TRUE(obj) << "XDPCTL_FOREIGN_XDP_OBJ is not set (run the tests with 'meson test')";
    // nsenter, not 'ip netns exec': libxdp needs the bpffs that 'ip netns exec' would hide.
    CmdResult r = run_cmd({"nsenter", "--net=/run/netns/" + lab.dut().ns, "xdp-loader", "load", "-v", "-m", "skb",
                           "-n", "bench_xdp_pass", lab.dut().ifname, obj});
    ASSERT_EQ(r.exit_code, 0) << r;
    run_cmd({"nsenter", "--net=/run/netns/" + lab.dut().ns, "xdp-loader", "unload", "--all", lab.dut().ifname});
    auto d = xdpctl_json({"status", "--json"})["libxdp_dispatcher"];
    const std::string said = r.out + r.err;
    const std::string tag = "Compatibility check for dispatcher program failed: ";
    const size_t at = said.find(tag);
    if (at == std::string::npos) {
        EXPECT_EQ(d["available"], true) << d.dump() << "\n" << said;
        return;
    }
    const std::string why = said.substr(at + tag.size(), said.find('\n', at) - at - tag.size());
    EXPECT_EQ(d["available"], false) << d.dump();
    EXPECT_NE(d["reason"].get<std::string>().find("the kernel refuses"), std::string::npos) << d.dump();
    EXPECT_NE(d["reason"].get<std::string>().find(why), std::string::npos) << d.dump() << "\nlibxdp: " << why;
    CmdResult text = xdpctl({"status"});
    EXPECT_NE(text.out.find("libxdp's dispatcher cannot run here ('load --next' chains XDP programs instead): "),
              std::string::npos) << text;
}

}  // namespace
}  // namespace xdpctl::test
