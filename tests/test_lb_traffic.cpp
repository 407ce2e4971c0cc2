// Real TCP through the load balancer. A client namespace, the LB namespace (xdpctl on its
// veth) and three backend namespaces share one bridge (in a switch namespace): the LB sends
// what it balances back out of the interface it came in on (XDP_TX), to the backend's MAC.
// The backends hold the VIP on lo and run Boost.Asio servers that answer with their name;
// they answer the client directly. A Boost.Asio client opens long-lived connections, then
// many short ones, drains one backend half-way, then finishes the long-lived ones: every
// connection completes, each long-lived one stays on its backend, no connection started
// after the drain reaches the drained backend, and the spread follows the weights.
// DSR and IP-in-IP (with xdpctl's TC decapsulator on the backends), IPv4 and IPv6 VIPs.
//
// LbReuse: clients that repeat their source ports while backends are drained and deleted and
// the VIP is deleted and made again, with each connection's SYN handled on one CPU and its
// later packets on the other (on veth a packet is processed on the CPU that sent it, so the
// client thread moves between CPUs): no connection may be reset by a connection-table entry
// of an earlier connection or an earlier VIP.
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>
#include <utility>  // boost 1.74 asio uses std::exchange without it (C++20)

#include <boost/asio.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "abi/xdpctl_abi.h"
#include "lb_lab.h"
#include "netns_lab.h"
#include "attach/skeleton.h"
#include "util/unique_fd.h"
#include "xdpctl_bench_empty.skel.h"

namespace xdpctl::test {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr uint16_t kPort = 8080;
constexpr int kShort = 10000;
constexpr int kLong = 150;
constexpr int kConcurrency = 32;

// ---- the servers: say the name, read a line, say the name again, close ----

class Server {
public:
    Server(const std::string& ns, std::string name) : name_(std::move(name)), thread_(ns)
    {
        thread_.run([this] {
            for (const char* vip : {kVip4, kVip6}) {
                auto a = std::make_unique<tcp::acceptor>(thread_.io(), tcp::endpoint(asio::ip::make_address(vip), kPort));
                accept(*a);
                acceptors_.push_back(std::move(a));
            }
        });
    }
    ~Server() { thread_.stop(); }

private:
    struct Session : std::enable_shared_from_this<Session> {
        explicit Session(tcp::socket s, const std::string& name) : sock(std::move(s)), msg(name + "\n") {}
        tcp::socket sock;
        std::string msg;
        asio::streambuf in;
        void start()
        {
            auto self = shared_from_this();
            asio::async_write(sock, asio::buffer(msg), [self](boost::system::error_code ec, size_t) {
                if (ec)
                    return;
                asio::async_read_until(self->sock, self->in, '\n', [self](boost::system::error_code ec2, size_t) {
                    if (ec2)
                        return;
                    asio::async_write(self->sock, asio::buffer(self->msg),
                                      [self](boost::system::error_code, size_t) {
                                          boost::system::error_code ignored;
                                          self->sock.shutdown(tcp::socket::shutdown_both, ignored);
                                      });
                });
            });
        }
    };

    void accept(tcp::acceptor& a)
    {
        a.async_accept([this, &a](boost::system::error_code ec, tcp::socket s) {
            if (!ec)
                std::make_shared<Session>(std::move(s), name_)->start();
            if (ec != asio::error::operation_aborted)
                accept(a);
        });
    }

    std::string name_;
    NetnsIoThread thread_;
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;
};

// ---- the client ----

struct ConnResult {
    std::string first, second;  // the names the server sent
    std::string error;          // empty: completed
    bool after_drain = false;   // started once the drain had returned
};

class Client : public std::enable_shared_from_this<Client> {
public:
    struct Conn {
        explicit Conn(asio::io_context& io) : sock(io) {}
        tcp::socket sock;
        asio::streambuf in;
        ConnResult r;
        std::string bye = "bye\n";
    };

    Client(asio::io_context& io, tcp::endpoint vip) : io_(io), vip_(vip) {}

    // Connects and reads the greeting; `then` runs with the connection still open.
    void open(const std::shared_ptr<Conn>& c, std::function<void()> then)
    {
        c->sock.async_connect(vip_, [c, then](boost::system::error_code ec) {
            if (ec) {
                c->r.error = "connect: " + ec.message();
                return then();
            }
            asio::async_read_until(c->sock, c->in, '\n', [c, then](boost::system::error_code ec2, size_t n) {
                if (ec2) {
                    c->r.error = "greeting: " + ec2.message();
                    return then();
                }
                c->r.first = std::string(asio::buffers_begin(c->in.data()), asio::buffers_begin(c->in.data()) + n - 1);
                c->in.consume(n);
                then();
            });
        });
    }

    // Says bye, reads the name again and the end of the stream.
    void finish(const std::shared_ptr<Conn>& c, std::function<void()> then)
    {
        if (!c->r.error.empty())
            return then();
        asio::async_write(c->sock, asio::buffer(c->bye), [c, then](boost::system::error_code ec, size_t) {
            if (ec) {
                c->r.error = "bye: " + ec.message();
                return then();
            }
            asio::async_read_until(c->sock, c->in, '\n', [c, then](boost::system::error_code ec2, size_t n) {
                if (ec2) {
                    c->r.error = "answer: " + ec2.message();
                    return then();
                }
                c->r.second = std::string(asio::buffers_begin(c->in.data()), asio::buffers_begin(c->in.data()) + n - 1);
                boost::system::error_code ignored;
                c->sock.close(ignored);
                then();
            });
        });
    }

private:
    asio::io_context& io_;
    tcp::endpoint vip_;
};

struct RunResult {
    std::vector<ConnResult> long_lived, short_lived;
};

// A phase's time limit: past it every connection is closed (and fails), so a lost packet
// cannot hang the test for TCP's minutes of retries.
constexpr auto kPhaseLimit = std::chrono::seconds(60);

void arm(asio::steady_timer& t, std::vector<std::shared_ptr<Client::Conn>>& all)
{
    t.expires_after(kPhaseLimit);
    t.async_wait([&all](boost::system::error_code ec) {
        if (ec)
            return;  // cancelled: the phase completed
        for (auto& c : all) {
            boost::system::error_code ignored;
            c->sock.close(ignored);
        }
    });
}

// kLong connections held open; kShort short ones, kConcurrency at a time, with drain()
// called (blocking) once half of them completed; then the long ones finish.
RunResult run_client(const std::string& ns, const std::string& vip, const std::function<void()>& drain)
{
    return in_netns(ns, [&] {
        asio::io_context io;
        asio::steady_timer limit(io);
        auto client = std::make_shared<Client>(io, tcp::endpoint(asio::ip::make_address(vip), kPort));
        RunResult out;
        std::vector<std::shared_ptr<Client::Conn>> held, all;
        int opened = 0;
        arm(limit, held);
        for (int i = 0; i < kLong; i++) {
            auto c = std::make_shared<Client::Conn>(io);
            held.push_back(c);
            client->open(c, [&] {
                if (++opened == kLong)
                    limit.cancel();
            });
        }
        io.run();
        io.restart();

        int started = 0, done = 0;
        bool drained = false;
        all.reserve(kShort);
        arm(limit, all);
        std::function<void()> next = [&] {
            if (started >= kShort)
                return;
            auto c = std::make_shared<Client::Conn>(io);
            all.push_back(c);
            c->r.after_drain = drained;
            started++;
            client->open(c, [&, c] {
                client->finish(c, [&, c] {
                    out.short_lived.push_back(c->r);
                    if (++done == kShort / 2) {
                        drain();
                        drained = true;
                    }
                    if (done == kShort)
                        limit.cancel();
                    next();
                });
            });
        };
        for (int i = 0; i < kConcurrency; i++)
            next();
        io.run();
        io.restart();

        int finished = 0;
        arm(limit, held);
        for (auto& c : held)
            client->finish(c, [&] {
                if (++finished == kLong)
                    limit.cancel();
            });
        io.run();
        for (auto& c : held)
            out.long_lived.push_back(c->r);
        return out;
    });
}

// The lab and a server in each backend namespace, made once per test suite.
class LbLabSuite {
protected:
    static void start_lab()
    {
        if (geteuid() != 0)
            return;
        lab_ = new LbLab();
        for (size_t i = 0; i < lab_->backends().size(); i++)
            servers_.push_back(std::make_unique<Server>(lab_->backends()[i].ns, fmt::format("b{}", i + 1)));
    }
    static void stop_lab()
    {
        servers_.clear();
        delete lab_;
        lab_ = nullptr;
    }

    static LbLab* lab_;
    static std::vector<std::unique_ptr<Server>> servers_;
};

LbLab* LbLabSuite::lab_ = nullptr;
std::vector<std::unique_ptr<Server>> LbLabSuite::servers_;

class LbTraffic : public ::testing::TestWithParam<std::tuple<std::string, int>>, protected LbLabSuite {
protected:
    static void SetUpTestSuite() { start_lab(); }
    static void TearDownTestSuite() { stop_lab(); }
    void SetUp() override
    {
        XDPCTL_REQUIRE_ROOT();
        ASSERT_TRUE(lab_);
    }
};

void ok(const std::vector<std::string>& args)
{
    CmdResult r = xdpctl(args);
    ASSERT_EQ(r.exit_code, 0) << r;
}

TEST_P(LbTraffic, ConnectionsCompleteFollowWeightsAndSurviveADrain)
{
    const auto& [mode, family] = GetParam();
    const LbLab& lab = *lab_;
    const std::string vip_addr = family == 4 ? kVip4 : kVip6;
    const std::string vip = family == 4 ? fmt::format("{}:{}/tcp", vip_addr, kPort)
                                        : fmt::format("[{}]:{}/tcp", vip_addr, kPort);
    std::vector<std::string> add = {"lb", "vip", "add", vip, "--mode", mode};
    if (mode == "ipip") {
        add.push_back("--ipip-source");
        add.push_back(family == 4 ? lab.lb().ip4 : lab.lb().ip6);
    }
    ok(add);
    const uint32_t weights[] = {1, 1, 2};
    for (size_t i = 0; i < 3; i++) {
        const Node& b = lab.backends()[i];
        ok({"lb", "backend", "add", vip, family == 4 ? b.ip4 : b.ip6, "--mac", b.mac, "--weight",
            std::to_string(weights[i])});
        if (mode == "ipip")
            ok({"-n", b.ns, "lb", "decap", "attach", "eth0", b.ip4, b.ip6});
    }

    const Node& b1 = lab.backends()[0];
    RunResult r = run_client(lab.client().ns, vip_addr, [&] {
        ok({"lb", "backend", "set", vip, family == 4 ? b1.ip4 : b1.ip6, "--weight", "0"});
    });

    std::map<std::string, int> before, after, held;
    int failed = 0;
    std::string first_error;
    for (const auto& c : r.short_lived) {
        if (!c.error.empty() || c.first != c.second) {
            if (!failed++)
                first_error = c.error.empty() ? c.first + " then " + c.second : c.error;
            continue;
        }
        (c.after_drain ? after : before)[c.first]++;
    }
    EXPECT_EQ(int(r.short_lived.size()), kShort);
    EXPECT_EQ(failed, 0) << "first failure: " << first_error;
    for (const auto& c : r.long_lived) {
        EXPECT_TRUE(c.error.empty()) << c.error;
        EXPECT_EQ(c.first, c.second) << "a held connection moved to another backend";
        held[c.first]++;
    }
    // All three served before the drain, b3 about half (weights 1:1:2).
    int n_before = before["b1"] + before["b2"] + before["b3"];
    int n_after = after["b1"] + after["b2"] + after["b3"];
    EXPECT_GT(held["b1"], 0);
    EXPECT_GT(before["b1"], 0);
    EXPECT_NEAR(double(before["b3"]) / n_before, 0.5, 0.05);
    // After the drain: none to b1, b2:b3 = 1:2.
    EXPECT_EQ(after["b1"], 0);
    EXPECT_NEAR(double(after["b3"]) / n_after, 2.0 / 3, 0.05);
    RecordProperty("spread_before", fmt::format("{}/{}/{}", before["b1"], before["b2"], before["b3"]));
    RecordProperty("spread_after", fmt::format("{}/{}/{}", after["b1"], after["b2"], after["b3"]));

    CmdResult list = xdpctl({"lb", "list", "--json"});
    ASSERT_EQ(list.exit_code, 0) << list;
    auto j = nlohmann::json::parse(list.out);
    EXPECT_EQ(j["counters"]["errors"], 0);
    EXPECT_EQ(j["counters"]["too_big"], 0);

    ok({"lb", "vip", "del", vip});
    if (mode == "ipip")
        for (const auto& b : lab.backends())
            ok({"-n", b.ns, "lb", "decap", "detach", "eth0"});
}

// ---- clients that repeat their source ports, SYN on one CPU, the rest on the other ----

void pin_to_cpu(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0)
        throw std::runtime_error(fmt::format("cannot move to CPU {}", cpu));
}

// One line from a blocking socket (timeouts set), without the newline; empty on error/EOF.
std::string read_line(int fd)
{
    std::string line;
    char c;
    while (line.size() < 64) {
        ssize_t n = recv(fd, &c, 1, 0);
        if (n <= 0)
            return {};
        if (c == '\n')
            return line;
        line += c;
    }
    return line;
}

struct ReuseRun {
    int ok = 0;
    std::vector<std::string> errors;
    std::map<std::string, int> spread;  // backend name -> connections
};

// For each source port: connect from CPU `syn_cpu` (the SYN and the handshake's ACK are
// processed there), then say bye from CPU `data_cpu` and read the name again. Sequential,
// each step bounded by a 3 s socket timeout.
ReuseRun reuse_ports(const Node& client, const std::vector<uint16_t>& ports, int syn_cpu, int data_cpu)
{
    return in_netns(client.ns, [&] {
        ReuseRun out;
        for (uint16_t port : ports) {
            auto fail = [&](const std::string& what) {
                out.errors.push_back(fmt::format("port {}: {}: {}", port, what, strerror(errno)));
            };
            pin_to_cpu(syn_cpu);
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            int one = 1;
            timeval tv{3, 0};
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
            sockaddr_in src{}, dst{};
            src.sin_family = dst.sin_family = AF_INET;
            src.sin_port = htons(port);
            inet_pton(AF_INET, client.ip4.c_str(), &src.sin_addr);
            dst.sin_port = htons(kPort);
            inet_pton(AF_INET, kVip4, &dst.sin_addr);
            std::string first, second;
            if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0)
                fail("bind");
            else if (connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) != 0)
                fail("connect");
            else if ((first = read_line(fd)).empty())
                fail("greeting");
            else {
                pin_to_cpu(data_cpu);
                if (send(fd, "bye\n", 4, MSG_NOSIGNAL) != 4)
                    fail("bye");
                else if ((second = read_line(fd)) != first)
                    fail(fmt::format("answer '{}' after greeting '{}'", second, first));
                else {
                    out.ok++;
                    out.spread[first]++;
                }
            }
            close(fd);
        }
        return out;
    });
}

class LbReuse : public ::testing::Test, protected LbLabSuite {
protected:
    static void SetUpTestSuite() { start_lab(); }
    static void TearDownTestSuite() { stop_lab(); }
    void SetUp() override
    {
        XDPCTL_REQUIRE_ROOT();
        if (std::thread::hardware_concurrency() < 2)
            GTEST_SKIP() << "needs two CPUs: a connection's packets on two CPUs is what it tests";
        ASSERT_TRUE(lab_);
    }
};

// Entries of the pinned connection table.
size_t conntrack_entries()
{
    UniqueFd ct(bpf_obj_get("/sys/fs/bpf/xdpctl/maps/xdpctl_lb_ct"));
    if (!ct)
        throw std::runtime_error("the connection table is not pinned");
    size_t n = 0;
    xdpctl_lb_flow_key k{}, next{};
    const void* prev = nullptr;
    while (bpf_map_get_next_key(ct.get(), prev, &next) == 0) {
        k = next;
        prev = &k;
        n++;
    }
    return n;
}

TEST_F(LbReuse, RepeatedSourcePortsAcrossDrainDeleteAndReAddAreNeverReset)
{
    const LbLab& lab = *lab_;
    const std::string vip = fmt::format("{}:{}/tcp", kVip4, kPort);
    const Node &b1 = lab.backends()[0], &b2 = lab.backends()[1], &b3 = lab.backends()[2];
    auto add_backend = [&](const Node& b, int weight) {
        ok({"lb", "backend", "add", vip, b.ip4, "--mac", b.mac, "--weight", std::to_string(weight)});
    };
    std::vector<uint16_t> ports;
    for (uint16_t p = 20000; p < 20200; p++)
        ports.push_back(p);
    auto expect_clean = [&](const ReuseRun& r, const std::string& phase) {
        EXPECT_EQ(r.ok, int(ports.size())) << phase << ": " << r.errors.size() << " connection(s) failed, first: "
                                            << (r.errors.empty() ? "" : r.errors.front());
    };

    ok({"lb", "vip", "add", vip});
    add_backend(b1, 1);
    add_backend(b2, 3);
    // Every 5-tuple used once on each CPU: both CPUs have seen each flow.
    expect_clean(reuse_ports(lab.client(), ports, 0, 0), "warm-up on CPU 0");
    expect_clean(reuse_ports(lab.client(), ports, 1, 1), "warm-up on CPU 1");

    // Drained: new connections (SYN on CPU 0) leave b1, and their packets on CPU 1 follow.
    ok({"lb", "backend", "set", vip, b1.ip4, "--weight", "0"});
    ReuseRun drained = reuse_ports(lab.client(), ports, 0, 1);
    expect_clean(drained, "after the drain");
    EXPECT_EQ(drained.spread["b1"], 0);

    // The VIP deleted and made again, its backends added in the other order (other slots).
    ok({"lb", "vip", "del", vip});
    ok({"lb", "vip", "add", vip});
    add_backend(b2, 3);
    add_backend(b1, 1);
    expect_clean(reuse_ports(lab.client(), ports, 1, 0), "after the VIP was made again");

    // A backend deleted and another one added in its slot.
    ok({"lb", "backend", "del", vip, b2.ip4});
    add_backend(b3, 3);
    ReuseRun replaced = reuse_ports(lab.client(), ports, 0, 1);
    expect_clean(replaced, "after b2 was replaced by b3");
    EXPECT_EQ(replaced.spread["b2"], 0);
    EXPECT_GT(replaced.spread["b3"], 0);

    // Nothing of a deleted VIP stays in the table.
    EXPECT_GT(conntrack_entries(), 0u);
    ok({"lb", "vip", "del", vip});
    EXPECT_EQ(conntrack_entries(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, LbTraffic,
                         ::testing::Values(std::make_tuple(std::string("dsr"), 4),
                                           std::make_tuple(std::string("ipip"), 4),
                                           std::make_tuple(std::string("dsr"), 6),
                                           std::make_tuple(std::string("ipip"), 6)),
                         [](const auto& info) {
                             return std::get<0>(info.param) + "_ipv" + std::to_string(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace xdpctl::test
