// Real packets through a veth between two namespaces: xdpctl's counters on the DUT side
// must move by exactly what was sent, on every hook it can be loaded on.
//
// Every expectation is the complete set of counters that moved ("hook/group/name" ->
// packets, bytes), so a packet nobody expected fails the test as an extra entry. The lab
// is built quiet for that (see netns_lab.h).
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "netns_lab.h"
#include "packet_builder.h"
#include "util/unique_fd.h"

namespace xdpctl::test {
namespace {

// ---- frame sizes, as the kernel builds them ------------------------------------------
constexpr uint64_t kEth = 14, kIpv4 = 20, kIpv6 = 40, kUdp = 8, kIcmpEcho = 8;
constexpr uint64_t kPingData = 56;  // ping's default
// A Linux SYN carries MSS, SACK-permitted, timestamps, NOP and window scale: 20 bytes of
// options under the defaults a new namespace starts with (tcp_sack, tcp_timestamps,
// tcp_window_scaling all on).
constexpr uint64_t kTcpSyn = 20 + 20;
// The reset answering a SYN to a closed port carries no options.
constexpr uint64_t kTcpRst = 20;

constexpr uint16_t kClosedPort = 9;  // nothing listens in a new namespace
constexpr uint16_t kEchoPort = 7007;
constexpr uint16_t kSinkPort = 7008;

// ---- expectations ----------------------------------------------------------------------

// `count` frames into the DUT of `in_len` bytes each; as many answers of `out_len` bytes
// back out of it, or none when out_len is 0.
struct Exchange {
    std::string l3, l4;
    uint64_t count;
    uint64_t in_len;
    uint64_t out_len;
};

void add(CounterMap& m, const std::string& key, uint64_t n, uint64_t len)
{
    m[key].packets += n;
    m[key].bytes += n * len;
}

// What the hooks loaded must have counted for these exchanges: ingress hooks (xdp,
// tc_ingress) see what arrives, tc_egress what the DUT sends back.
CounterMap expected(const std::vector<std::string>& hooks, const std::vector<Exchange>& ex)
{
    CounterMap m;
    for (const auto& hook : hooks)
        for (const auto& e : ex) {
            uint64_t len = hook == "tc_egress" ? e.out_len : e.in_len;
            if (!len)
                continue;
            add(m, hook + "/l3/" + e.l3, e.count, len);
            add(m, hook + "/l4/" + e.l4, e.count, len);
            add(m, hook + "/verdict/pass", e.count, len);
        }
    return m;
}

// Whether every counter of `want` has reached its packet count in `got`.
bool reached(const CounterMap& got, const CounterMap& want)
{
    return std::all_of(want.begin(), want.end(), [&](const auto& kv) {
        auto it = got.find(kv.first);
        return it != got.end() && it->second.packets >= kv.second.packets;
    });
}

// ---- sockets in the lab's namespaces -----------------------------------------------------

struct SockAddr {
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family = 0;
    const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

SockAddr sock_addr(const std::string& ip, uint16_t port)
{
    SockAddr a;
    if (ip.find(':') != std::string::npos) {
        auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        if (inet_pton(AF_INET6, ip.c_str(), &s6->sin6_addr) != 1)
            throw std::runtime_error("bad address " + ip);
        a.len = sizeof(*s6);
        a.family = AF_INET6;
    } else {
        auto* s4 = reinterpret_cast<sockaddr_in*>(&a.ss);
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        if (inet_pton(AF_INET, ip.c_str(), &s4->sin_addr) != 1)
            throw std::runtime_error("bad address " + ip);
        a.len = sizeof(*s4);
        a.family = AF_INET;
    }
    return a;
}

// A socket of the namespace `ns`, with send/receive bounded so that no test can hang.
UniqueFd socket_in(const std::string& ns, int family, int type, int proto = 0)
{
    UniqueFd fd =
        in_netns(ns, [&] { return UniqueFd{socket(family, type | SOCK_CLOEXEC, proto)}; });
    if (!fd)
        throw std::runtime_error(std::string("socket: ") + strerror(errno));
    timeval tv{2, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

// n connection attempts from the peer to a closed port of the DUT: n SYNs in, n RSTs out.
void connect_refused(const NetnsLab& lab, const std::string& dut_ip, int n)
{
    SockAddr to = sock_addr(dut_ip, kClosedPort);
    for (int i = 0; i < n; i++) {
        UniqueFd s = socket_in(lab.peer().ns, to.family, SOCK_STREAM);
        int rc = connect(s.get(), to.get(), to.len);
        int err = errno;
        ASSERT_EQ(rc, -1) << "connected to a port nobody listens on";
        ASSERT_EQ(err, ECONNREFUSED) << strerror(err);
    }
}

// n datagrams of `size` bytes from the peer to the DUT, each echoed back in lockstep.
void udp_echo(const NetnsLab& lab, const std::string& peer_ip, const std::string& dut_ip, int n,
              size_t size)
{
    SockAddr srv_addr = sock_addr(dut_ip, kEchoPort);
    SockAddr cli_addr = sock_addr(peer_ip, 0);
    UniqueFd srv = socket_in(lab.dut().ns, srv_addr.family, SOCK_DGRAM);
    UniqueFd cli = socket_in(lab.peer().ns, cli_addr.family, SOCK_DGRAM);
    ASSERT_EQ(bind(srv.get(), srv_addr.get(), srv_addr.len), 0) << strerror(errno);
    ASSERT_EQ(bind(cli.get(), cli_addr.get(), cli_addr.len), 0) << strerror(errno);
    std::vector<char> out(size), in(size + 1);
    for (int i = 0; i < n; i++) {
        std::fill(out.begin(), out.end(), char('a' + i % 26));
        ASSERT_EQ(sendto(cli.get(), out.data(), size, 0, srv_addr.get(), srv_addr.len),
                  ssize_t(size))
            << strerror(errno);
        SockAddr from;
        from.len = sizeof(from.ss);
        ASSERT_EQ(recvfrom(srv.get(), in.data(), in.size(), 0,
                           reinterpret_cast<sockaddr*>(&from.ss), &from.len),
                  ssize_t(size))
            << "datagram " << i << " did not arrive: " << strerror(errno);
        ASSERT_EQ(sendto(srv.get(), in.data(), size, 0, from.get(), from.len), ssize_t(size))
            << strerror(errno);
        ASSERT_EQ(recv(cli.get(), in.data(), in.size(), 0), ssize_t(size))
            << "echo " << i << " did not come back: " << strerror(errno);
    }
}

// ---- the hooks under test -----------------------------------------------------------------

struct HookSetup {
    std::string name;
    std::vector<std::string> load_args;
    std::vector<std::string> hooks;  // as `stats --json` names them, sorted
};

void PrintTo(const HookSetup& h, std::ostream* os)
{
    *os << h.name;
}

const HookSetup kHookSetups[] = {
    {"xdp", {"--hook", "xdp"}, {"xdp"}},
    {"xdp_skb", {"--hook", "xdp", "--mode", "skb"}, {"xdp"}},
    {"tc_tcx", {"--hook", "tc", "--tc-mode", "tcx"}, {"tc_egress", "tc_ingress"}},
    {"tc_clsact", {"--hook", "tc", "--tc-mode", "clsact"}, {"tc_egress", "tc_ingress"}},
    {"both", {"--hook", "both"}, {"tc_egress", "tc_ingress", "xdp"}},
};

class TrafficTest : public ::testing::TestWithParam<HookSetup> {
protected:
    void SetUp() override
    {
        XDPCTL_REQUIRE_ROOT();
        lab_ = std::make_unique<NetnsLab>();
        lab_->load(GetParam().load_args);
        before_ = lab_->stats();
        auto hooks = before_.hooks;
        std::sort(hooks.begin(), hooks.end());
        ASSERT_EQ(hooks, GetParam().hooks);
    }

    // The counters must move by exactly `ex`. The senders below wait for each answer, so
    // the counting is done when they return; the poll only covers a slow softirq.
    void expect_counted(const std::vector<Exchange>& ex)
    {
        CounterMap want = expected(GetParam().hooks, ex);
        CounterMap got =
            lab_->wait_delta(before_, [&](const CounterMap& d) { return reached(d, want); });
        EXPECT_EQ(got, want);
    }

    std::unique_ptr<NetnsLab> lab_;
    StatsSnapshot before_;
};

TEST_P(TrafficTest, IcmpEcho)
{
    lab_->ping_from_peer(lab_->dut().ipv4, 4);
    uint64_t len = kEth + kIpv4 + kIcmpEcho + kPingData;
    expect_counted({{"ipv4", "icmp", 4, len, len}});
}

TEST_P(TrafficTest, Icmpv6Echo)
{
    lab_->ping_from_peer(lab_->dut().ipv6, 3);
    uint64_t len = kEth + kIpv6 + kIcmpEcho + kPingData;
    expect_counted({{"ipv6", "icmpv6", 3, len, len}});
}

TEST_P(TrafficTest, TcpSynToClosedPortGetsReset)
{
    ASSERT_NO_FATAL_FAILURE(connect_refused(*lab_, lab_->dut().ipv4, 5));
    ASSERT_NO_FATAL_FAILURE(connect_refused(*lab_, lab_->dut().ipv6, 3));
    expect_counted({{"ipv4", "tcp", 5, kEth + kIpv4 + kTcpSyn, kEth + kIpv4 + kTcpRst},
                    {"ipv6", "tcp", 3, kEth + kIpv6 + kTcpSyn, kEth + kIpv6 + kTcpRst}});
}

TEST_P(TrafficTest, UdpEcho)
{
    ASSERT_NO_FATAL_FAILURE(udp_echo(*lab_, lab_->peer().ipv4, lab_->dut().ipv4, 6, 100));
    uint64_t len = kEth + kIpv4 + kUdp + 100;
    expect_counted({{"ipv4", "udp", 6, len, len}});
}

TEST_P(TrafficTest, Ipv6UdpEcho)
{
    ASSERT_NO_FATAL_FAILURE(udp_echo(*lab_, lab_->peer().ipv6, lab_->dut().ipv6, 4, 200));
    uint64_t len = kEth + kIpv6 + kUdp + 200;
    expect_counted({{"ipv6", "udp", 4, len, len}});
}

INSTANTIATE_TEST_SUITE_P(Hooks, TrafficTest, ::testing::ValuesIn(kHookSetups),
                         [](const auto& info) { return info.param.name; });

// ---- malformed frames -----------------------------------------------------------------------

Mac parse_mac(const std::string& s)
{
    Mac m{};
    unsigned b[6];
    if (sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
        throw std::runtime_error("bad MAC " + s);
    for (int i = 0; i < 6; i++)
        m[i] = uint8_t(b[i]);
    return m;
}

Ipv4Addr parse_ipv4(const std::string& s)
{
    Ipv4Addr a{};
    if (inet_pton(AF_INET, s.c_str(), a.data()) != 1)
        throw std::runtime_error("bad IPv4 address " + s);
    return a;
}

// The namespace's IPv4 MIB counter `name` (as in /proc/net/snmp, e.g. "InHdrErrors"):
// how we know whether a frame reached the IP stack.
uint64_t ip_mib(const std::string& ns, const std::string& name)
{
    // thread-self: /proc/net follows the main thread's namespace, not this thread's.
    std::string text = in_netns(ns, [] {
        std::ifstream f("/proc/thread-self/net/snmp");
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str();
    });
    std::istringstream in(text);
    for (std::string names, values; std::getline(in, names) && std::getline(in, values);) {
        if (names.rfind("Ip: ", 0) != 0)
            continue;
        std::istringstream n(names), v(values);
        for (std::string key, val; n >> key && v >> val;)
            if (key == name)
                return std::stoull(val);
    }
    throw std::runtime_error("no Ip " + name + " in /proc/net/snmp of " + ns);
}

struct MalformedCase {
    std::string name;
    std::vector<std::string> load_args;
    std::string ingress_hook;
    bool drop;
};

void PrintTo(const MalformedCase& c, std::ostream* os)
{
    *os << c.name;
}

const MalformedCase kMalformedCases[] = {
    {"xdp_drop", {"--hook", "xdp", "--malformed", "drop"}, "xdp", true},
    {"xdp_pass", {"--hook", "xdp", "--malformed", "pass"}, "xdp", false},
    {"tc_drop", {"--hook", "tc", "--malformed", "drop"}, "tc_ingress", true},
    {"tc_pass", {"--hook", "tc", "--malformed", "pass"}, "tc_ingress", false},
};

class MalformedTest : public ::testing::TestWithParam<MalformedCase> {};

// An IPv4 frame with IHL 4 (shorter than the fixed header) sent raw from the peer, then a
// good UDP datagram. With --malformed drop the bad one is counted as a drop and never
// reaches the DUT's IP stack (its InHdrErrors stays); with pass the stack sees it and
// rejects it itself. The good one arrives at a socket either way.
TEST_P(MalformedTest, BadIpv4HeaderFromPacketSocket)
{
    XDPCTL_REQUIRE_ROOT();
    const MalformedCase& c = GetParam();
    NetnsLab lab;
    lab.load(c.load_args);

    SockAddr sink_addr = sock_addr(lab.dut().ipv4, kSinkPort);
    UniqueFd sink = socket_in(lab.dut().ns, AF_INET, SOCK_DGRAM);
    ASSERT_EQ(bind(sink.get(), sink_addr.get(), sink_addr.len), 0) << strerror(errno);

    // Protocol 0: this socket only sends, so it receives nothing.
    UniqueFd raw = socket_in(lab.peer().ns, AF_PACKET, SOCK_RAW);
    sockaddr_ll ll{};
    ll.sll_family = AF_PACKET;
    ll.sll_ifindex = in_netns(lab.peer().ns,
                              [&] { return int(if_nametoindex(lab.peer().ifname.c_str())); });
    ASSERT_NE(ll.sll_ifindex, 0);
    ASSERT_EQ(bind(raw.get(), reinterpret_cast<sockaddr*>(&ll), sizeof(ll)), 0) << strerror(errno);

    auto frame = [&](uint8_t first) {
        PacketBuilder b;
        b.eth(parse_mac(lab.dut().mac), parse_mac(lab.peer().mac))
            .ipv4({.src = parse_ipv4(lab.peer().ipv4), .dst = parse_ipv4(lab.dut().ipv4)})
            .udp(40000, kSinkPort)
            .payload(16, first);
        return b;
    };
    std::vector<uint8_t> bad = frame(0xb0).ihl(4).build();
    std::vector<uint8_t> good = frame(0x60).build();

    StatsSnapshot before = lab.stats();
    uint64_t hdr_errors = ip_mib(lab.dut().ns, "InHdrErrors");
    ASSERT_EQ(send(raw.get(), bad.data(), bad.size(), 0), ssize_t(bad.size())) << strerror(errno);
    ASSERT_EQ(send(raw.get(), good.data(), good.size(), 0), ssize_t(good.size()))
        << strerror(errno);

    std::vector<uint8_t> got(64);
    ssize_t n = recv(sink.get(), got.data(), got.size(), 0);
    ASSERT_EQ(n, 16) << "the good datagram did not arrive: " << strerror(errno);
    got.resize(16);
    EXPECT_EQ(got, std::vector<uint8_t>(good.end() - 16, good.end()));

    CounterMap want;
    const std::string& h = c.ingress_hook;
    add(want, h + "/l3/ipv4", 1, bad.size());
    add(want, h + "/l3/ipv4", 1, good.size());
    add(want, h + "/l4/udp", 1, good.size());  // no L4 for a header that did not parse
    add(want, h + "/malformed/ipv4_bad_header", 1, bad.size());
    add(want, h + "/verdict/pass", 1, good.size());
    add(want, h + (c.drop ? "/verdict/drop" : "/verdict/pass"), 1, bad.size());
    CounterMap delta =
        lab.wait_delta(before, [&](const CounterMap& d) { return reached(d, want); });
    EXPECT_EQ(delta, want);

    if (c.drop) {
        // Counted as dropped above, so the hook has run: the stack can no longer see it.
        EXPECT_EQ(ip_mib(lab.dut().ns, "InHdrErrors"), hdr_errors);
    } else {
        // The stack counts it after the hook; wait a bounded while for it to get there.
        uint64_t now = ip_mib(lab.dut().ns, "InHdrErrors");
        for (int i = 0; i < 100 && now == hdr_errors; i++) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            now = ip_mib(lab.dut().ns, "InHdrErrors");
        }
        EXPECT_EQ(now, hdr_errors + 1) << "with --malformed pass the stack should see the frame";
    }
}

INSTANTIATE_TEST_SUITE_P(Actions, MalformedTest, ::testing::ValuesIn(kMalformedCases),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace xdpctl::test
