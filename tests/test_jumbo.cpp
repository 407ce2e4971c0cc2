// Jumbo frames: a veth with MTU 9000 and frames of 9014 bytes (9000 of IP). On XDP xdpctl
// loads as a multi-buffer program and attaches natively (a single-buffer program is refused
// natively over ~3.5 KB on veth, and the load used to fall back to skb mode); headers are
// parsed in the first buffer and the counters take the whole frame. On TC the skb holds it
// all (bytes = skb->len). Verdicts and byte counters must be exact on both.
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include "netns_lab.h"
#include "attach/skeleton.h"
#include "util/unique_fd.h"
#include "xdpctl_test_chain.skel.h"

namespace xdpctl::test {
namespace {

constexpr int kMtu = 9000;
constexpr uint64_t kEth = 14, kIpv4 = 20, kUdp = 8, kIcmpEcho = 8;
constexpr uint64_t kPayload = kMtu - kIpv4 - kUdp;  // 8972: ping -s 8972, UDP 8972
constexpr uint64_t kFrame = kEth + kMtu;            // 9014
static_assert(kEth + kIpv4 + kIcmpEcho + kPayload == kFrame);

constexpr uint16_t kPassPort = 7002, kDropPort = 7003;

void set_mtu(const NetnsLab& lab, int mtu)
{
    for (const LabEnd* e : {&lab.peer(), &lab.dut()})
        run_ok({"ip", "-n", e->ns, "link", "set", "dev", e->ifname, "mtu", std::to_string(mtu)});
}

// n UDP datagrams of kPayload bytes (one 9014-byte frame each: DF, no IP fragments) from the
// peer to ip:port.
void send_jumbo_udp(const NetnsLab& lab, const std::string& ip, uint16_t port, int n)
{
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    inet_pton(AF_INET, ip.c_str(), &to.sin_addr);
    in_netns(lab.peer().ns, [&] {
        UniqueFd s{socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
        int pmtu = IP_PMTUDISC_DO;  // never fragment: one frame per datagram, or an error
        setsockopt(s.get(), IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
        std::vector<char> data(kPayload, 'j');
        for (int i = 0; i < n; i++)
            if (sendto(s.get(), data.data(), data.size(), 0, reinterpret_cast<const sockaddr*>(&to),
                       sizeof(to)) != ssize_t(data.size()))
                throw std::runtime_error("sendto of a jumbo datagram failed");
        return 0;
    });
}

// The same to the DUT's `port`; returns how many the DUT's socket received.
int jumbo_udp(const NetnsLab& lab, uint16_t port, int n)
{
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    inet_pton(AF_INET, lab.dut().ipv4.c_str(), &to.sin_addr);
    auto rx = in_netns(lab.dut().ns, [&] {
        UniqueFd s{socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
        if (bind(s.get(), reinterpret_cast<const sockaddr*>(&to), sizeof(to)) != 0)
            throw std::runtime_error("bind failed");
        timeval tv{0, 300000};
        setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        return s;
    });
    send_jumbo_udp(lab, lab.dut().ipv4, port, n);
    int got = 0;
    std::vector<char> buf(kPayload + 1);
    while (recv(rx.get(), buf.data(), buf.size(), 0) == ssize_t(kPayload))
        got++;
    return got;
}

void add(CounterMap& m, const std::string& key, uint64_t n)
{
    m[key].packets += n;
    m[key].bytes += n * kFrame;
}

class Jumbo : public NoPolicyTest {};

// Sends 6 UDP frames to a passed port, 4 to a dropped one and 3 pings, all 9014 bytes; the
// complete set of counters that moved on the ingress hook `in` (and the egress one, with
// the echo replies, when given).
void run_jumbo_traffic(const NetnsLab& lab, const std::string& in, const std::string& eg)
{
    ASSERT_EQ(xdpctl({"rule", "add", "--id", "1", "--proto", "udp", "--dport", std::to_string(kDropPort),
                      "--action", "drop"}).exit_code, 0);
    StatsSnapshot before = lab.stats();
    EXPECT_EQ(jumbo_udp(lab, kPassPort, 6), 6);
    EXPECT_EQ(jumbo_udp(lab, kDropPort, 4), 0);
    run_ok({"ip", "netns", "exec", lab.peer().ns, "ping", "-q", "-n", "-c", "3", "-i", "0.01", "-W", "2",
            "-M", "do", "-s", std::to_string(kPayload), lab.dut().ipv4});

    CounterMap want;
    add(want, in + "/l3/ipv4", 13);
    add(want, in + "/l4/udp", 10);
    add(want, in + "/l4/icmp", 3);
    add(want, in + "/verdict/pass", 9);
    add(want, in + "/verdict/drop", 4);
    if (!eg.empty()) {
        add(want, eg + "/l3/ipv4", 3);
        add(want, eg + "/l4/icmp", 3);
        add(want, eg + "/verdict/pass", 3);
    }
    CounterMap got = lab.wait_delta(before, [&](const CounterMap& m) { return m == want; });
    EXPECT_EQ(got, want);
}

TEST_F(Jumbo, XdpLoadsNativelyAsMultiBufferAndCountsWholeFrames)
{
    NetnsLab lab;
    set_mtu(lab, kMtu);
    CmdResult r = lab.load_result({});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_EQ(r.out.find("skb"), std::string::npos) << r;
    auto st = xdpctl_json({"-n", lab.dut().ns, "status", "--json"});
    ASSERT_EQ(st["interfaces"].size(), 1u) << st.dump();
    EXPECT_EQ(st["interfaces"][0]["xdp_mode"], "native") << st.dump();
    EXPECT_EQ(st["interfaces"][0]["xdp_multi_buffer"], true) << st.dump();
    run_jumbo_traffic(lab, "xdp", "");
}

TEST_F(Jumbo, TcCountsWholeFrames)
{
    NetnsLab lab;
    set_mtu(lab, kMtu);
    lab.load({"--hook", "tc"});
    run_jumbo_traffic(lab, "tc_ingress", "tc_egress");
}

// A standard MTU keeps the single-buffer program: no helper call for the frame's length.
TEST_F(Jumbo, StandardMtuStaysSingleBuffer)
{
    NetnsLab lab;
    lab.load();
    auto st = xdpctl_json({"-n", lab.dut().ns, "status", "--json"});
    EXPECT_EQ(st["interfaces"][0]["xdp_mode"], "native") << st.dump();
    EXPECT_EQ(st["interfaces"][0]["xdp_multi_buffer"], false) << st.dump();
}

// Where the kernel still refuses native mode, xdpctl says why in the kernel's words: veth
// wants at least as many receive queues as its peer has transmit queues.
TEST_F(Jumbo, NativeRefusalNamesTheKernelsReason)
{
    NetnsLab lab;
    const std::string ns = lab.dut().ns;
    run_ok({"ip", "-n", ns, "link", "add", "xq0", "numrxqueues", "1", "numtxqueues", "1", "type", "veth",
            "peer", "name", "xq1", "numrxqueues", "2", "numtxqueues", "2"});
    run_ok({"ip", "-n", ns, "link", "set", "xq0", "up"});
    run_ok({"ip", "-n", ns, "link", "set", "xq1", "up"});
    const std::string reason = "XDP expects number of rx queues not less than peer tx queues";
    CmdResult native = xdpctl({"-n", ns, "load", "xq0", "--mode", "native"});
    EXPECT_EQ(native.exit_code, 1) << native;
    EXPECT_NE(native.err.find(reason), std::string::npos) << native;
    CmdResult autom = xdpctl({"-n", ns, "load", "xq0"});
    EXPECT_EQ(autom.exit_code, 0) << autom;
    EXPECT_NE(autom.out.find("the kernel refused native XDP mode: \"veth: " + reason), std::string::npos) << autom;
    EXPECT_NE(autom.out.find("xdp (skb)"), std::string::npos) << autom;
    xdpctl_ok({"-n", ns, "unload", "xq0"});
}

// The load balancer on multi-buffer frames. A DSR VIP whose backend is the peer itself sends
// each 9014-byte frame back out (XDP_TX: the first buffer's MACs rewritten, every buffer sent);
// the peer's XDP program (XDP_TX into a veth needs one there; at MTU 9000 a multi-buffer one)
// counts them whole. An ipip VIP cannot add its header to a frame of the MTU: passed, too_big.
TEST_F(Jumbo, LoadBalancerForwardsWholeMultiBufferFrames)
{
    NetnsLab lab;
    set_mtu(lab, kMtu);
    lab.load();
    SkelPtr<xdpctl_test_chain> peer_prog(xdpctl_test_chain::open_and_load());
    ASSERT_TRUE(peer_prog);
    in_netns(lab.peer().ns, [&] {
        int ifindex = int(if_nametoindex(lab.peer().ifname.c_str()));
        if (bpf_xdp_attach(ifindex, bpf_program__fd(peer_prog->progs.test_next_frags), XDP_FLAGS_DRV_MODE, nullptr))
            throw std::runtime_error("cannot attach the peer's XDP program");
        return 0;
    });
    const std::string dsr = "198.18.200.1", ipip = "198.18.200.2";
    for (const std::string& vip : {dsr, ipip})
        run_ok({"ip", "-n", lab.peer().ns, "route", "add", vip + "/32", "via", lab.dut().ipv4});
    xdpctl_ok({"lb", "vip", "add", dsr + ":9/udp", "--mode", "dsr"});
    xdpctl_ok({"lb", "vip", "add", ipip + ":9/udp", "--mode", "ipip", "--ipip-source", lab.dut().ipv4});
    for (const std::string& vip : {dsr, ipip})
        xdpctl_ok({"lb", "backend", "add", vip + ":9/udp", lab.peer().ipv4, "--mac", lab.peer().mac});

    send_jumbo_udp(lab, dsr, 9, 5);
    send_jumbo_udp(lab, ipip, 9, 3);
    const uint32_t slot = 1;  // SEEN_NEXT_FRAGS
    struct {
        uint64_t packets = 0, bytes = 0;
    } seen;
    for (int i = 0; i < 30 && seen.packets < 5; i++, usleep(100000))
        bpf_map__lookup_elem(peer_prog->maps.seen, &slot, sizeof(slot), &seen, sizeof(seen), 0);
    EXPECT_EQ(seen.packets, 5u);
    EXPECT_EQ(seen.bytes, 5 * kFrame);
    auto j = xdpctl_json({"lb", "list", "--json"});
    EXPECT_EQ(j["counters"]["too_big"], 3) << j.dump();
    EXPECT_EQ(j["counters"]["errors"], 0) << j.dump();
    for (const auto& v : j["vips"])
        if (v["vip"].get<std::string>().find(dsr) == 0) {
            EXPECT_EQ(v["counters"]["packets"], 5) << j.dump();
            EXPECT_EQ(v["counters"]["bytes"], 5 * kFrame) << j.dump();
        }
    for (const std::string& vip : {dsr, ipip})
        xdpctl_ok({"lb", "vip", "del", vip + ":9/udp"});
}

}  // namespace
}  // namespace xdpctl::test
