// Backend health checks (issue 14 item 5): the rise/fall state machine and the --check
// syntax (no root), the checks in export/apply and the state manifest, and xdpd checking
// three real backends: a client, the LB (xdpctl on its veth, xdpd in its namespace) and
// three backends on one bridge (tests/lb_lab.h). The backends run Boost.Asio
// servers (a TCP service on 8080 that says its name, an HTTP /healthz on 8081). One is
// stopped (its listeners closed, its connections kept): within fall x interval it gets
// weight 0, no new connection reaches it and a connection it holds still works; started
// again, it is back in rotation within rise x interval with its configured weight.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>  // boost 1.74 asio uses std::exchange without it (C++20)

#include <boost/asio.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>


#include "lb/health_check.h"
#include "lb/lb_config.h"
#include "lb/lb_store.h"
#include "service/health_checker.h"
#include "lb_lab.h"
#include "netns_lab.h"
#include "state/state_dir.h"
#include "state/state_json.h"
#include "util/error.h"
#include "util/writer_lock.h"
#include "util/unique_fd.h"

extern char** environ;

namespace xdpctl::test {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
using lb::CheckSpec;
using service::HealthChecker;

// ---- no root: the state machine and the syntax ----------------------------------------

TEST(HealthMachine, FallsAfterFallFailuresRisesAfterRisePasses)
{
    lb::HealthMachine m;
    EXPECT_TRUE(m.up());
    EXPECT_FALSE(m.record(false, 2, 3));
    EXPECT_FALSE(m.record(false, 2, 3));
    EXPECT_FALSE(m.record(true, 2, 3));  // a pass breaks the run
    EXPECT_EQ(m.fail_run(), 0u);
    EXPECT_FALSE(m.record(false, 2, 3));
    EXPECT_FALSE(m.record(false, 2, 3));
    EXPECT_TRUE(m.record(false, 2, 3));  // the third in a row
    EXPECT_FALSE(m.up());
    EXPECT_FALSE(m.record(false, 2, 3));  // down stays down: no second change
    EXPECT_FALSE(m.record(true, 2, 3));
    EXPECT_FALSE(m.record(false, 2, 3));  // a failure breaks the passes
    EXPECT_FALSE(m.record(true, 2, 3));
    EXPECT_TRUE(m.record(true, 2, 3));
    EXPECT_TRUE(m.up());
    EXPECT_EQ(m.ok_run(), 2u);

    lb::HealthMachine down(false);  // as xdpd finds a backend a check took out before
    EXPECT_TRUE(down.record(true, 1, 1));
    EXPECT_TRUE(down.up());
}

TEST(HealthCheckSyntax, ParsesFormatsAndNamesBadValues)
{
    EXPECT_EQ(lb::parse_check_type("tcp").type, CheckSpec::Type::tcp);
    EXPECT_EQ(lb::parse_check_type("none").type, CheckSpec::Type::none);
    CheckSpec h = lb::parse_check_type("http:/a:b/healthz:204");
    EXPECT_EQ(h.type, CheckSpec::Type::http);
    EXPECT_EQ(h.path, "/a:b/healthz");
    EXPECT_EQ(h.expect, 204);
    EXPECT_EQ(lb::parse_check_type("http:/").expect, 200);
    EXPECT_EQ(lb::format_check_type(h), "http:/a:b/healthz:204");
    EXPECT_EQ(lb::parse_check_duration("150ms", "x"), 150ms);
    EXPECT_EQ(lb::parse_check_duration("1.5s", "x"), 1500ms);
    EXPECT_EQ(lb::format_check_duration(1500ms), "1500ms");
    EXPECT_EQ(lb::format_check_duration(2000ms), "2s");

    struct Bad {
        lb::CheckOptions o;
        std::string message;
    } bad[] = {
        {{"udp", "", "", -1, -1, -1}, "--check 'udp'"},
        {{"http:x", "", "", -1, -1, -1}, "must start with '/'"},
        {{"http:/x:999", "", "", -1, -1, -1}, "HTTP status '999'"},
        {{"http:/a b", "", "", -1, -1, -1}, "space or control"},
        {{"tcp", "1m", "", -1, -1, -1}, "--check-interval '1m'"},
        {{"tcp", "99999999999999999999999s", "", -1, -1, -1}, "--check-interval '99999999999999999999999s'"},
        {{"tcp", "1.5.5s", "", -1, -1, -1}, "--check-interval '1.5.5s'"},
        {{"tcp", "0.5ms", "", -1, -1, -1}, "whole milliseconds"},
        {{"tcp", "10ms", "", -1, -1, -1}, "--check-interval 10ms"},
        {{"tcp", "100ms", "200ms", -1, -1, -1}, "--check-timeout 200ms"},
        {{"tcp", "", "", 101, -1, -1}, "--rise 101"},
        {{"tcp", "", "", -1, -1, 70000}, "--check-port 70000"},
        {{"", "1s", "", -1, -1, -1}, "need --check"},
        {{"none", "", "", -1, 3, -1}, "--check none takes no other"},
    };
    for (const auto& b : bad) {
        try {
            lb::check_from_options(b.o);
            ADD_FAILURE() << b.o.check << " " << b.o.interval << ": no error";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), ExitCode::usage);
            EXPECT_NE(std::string(e.what()).find(b.message), std::string::npos) << e.what();
        }
    }
}

TEST(HealthCheckSyntax, ConfigLinesAndManifestRoundTrip)
{
    lb::LbConfig c;
    const lb::VipSpec v = lb::parse_vip("198.18.100.1:80/tcp");
    lb::CheckOptions o{"http:/healthz:204", "200ms", "100ms", 2, 3, 8081};
    c.add_vip(v, lb::VipOptions{}, lb::check_from_options(o));
    lb::BackendSpec b1{lb::parse_ip("198.18.1.11"), lb::parse_mac("02:00:00:00:01:11"), 5, {}};
    lb::BackendSpec b2{lb::parse_ip("198.18.1.12"), lb::parse_mac("02:00:00:00:01:12"), 1,
                       lb::check_from_options({"tcp", "", "", -1, -1, -1})};
    lb::BackendSpec b3{lb::parse_ip("198.18.1.13"), lb::parse_mac("02:00:00:00:01:13"), 1,
                       lb::check_from_options({"none", "", "", -1, -1, -1})};
    for (const auto& b : {b1, b2, b3})
        c.add_backend(v, b);
    EXPECT_EQ(lb::format_lb_config(c),
              "lb vip 198.18.100.1:80/tcp --mode dsr --check http:/healthz:204 --check-port 8081 "
              "--check-interval 200ms --check-timeout 100ms --rise 2 --fall 3\n"
              "lb backend 198.18.100.1:80/tcp 198.18.1.11 --mac 02:00:00:00:01:11 --weight 5\n"
              "lb backend 198.18.100.1:80/tcp 198.18.1.12 --mac 02:00:00:00:01:12 --weight 1 --check tcp "
              "--check-interval 2s --check-timeout 1s --rise 2 --fall 3\n"
              "lb backend 198.18.100.1:80/tcp 198.18.1.13 --mac 02:00:00:00:01:13 --weight 1 --check none\n");
    const lb::LbConfig back = state::lb_from_json(state::lb_to_json(c), "manifest");
    EXPECT_EQ(lb::format_lb_config(back), lb::format_lb_config(c));
    EXPECT_TRUE(lb::lb_diff(c, back).empty());
    // A check change alone is a change of its own, not a VIP made again.
    lb::LbConfig other = back;
    other.vips[0].check->rise = 4;
    const auto d = lb::lb_diff(c, other);
    ASSERT_EQ(d.size(), 1u);
    EXPECT_NE(d[0].find("(health check changed)"), std::string::npos) << d[0];

    lb::LbConfig any_port;
    EXPECT_THROW(any_port.add_vip(lb::parse_vip("198.18.100.2:0/tcp"), lb::VipOptions{},
                                  lb::check_from_options({"tcp", "", "", -1, -1, -1})),
                 Error);
    EXPECT_THROW(any_port.add_vip(lb::parse_vip("198.18.100.2:80/tcp"), lb::VipOptions{},
                                  lb::check_from_options({"none", "", "", -1, -1, -1})),
                 Error);
}

// ---- root: the CLI ---------------------------------------------------------------------

class HealthCli : public NoPolicyTest {
protected:
    void TearDown() override
    {
        if (::geteuid() == 0)
            xdpctl({"lb", "vip", "del", "198.18.100.1:80/tcp"});
        NoPolicyTest::TearDown();
    }
};

TEST_F(HealthCli, ApplyExportRoundTripAndBadLinesChangeNothing)
{
    const std::string text =
        "lb vip 198.18.100.1:80/tcp --mode dsr --check http:/healthz:200 --check-port 8081 "
        "--check-interval 150ms --check-timeout 100ms --rise 2 --fall 3\n"
        "lb backend 198.18.100.1:80/tcp 198.18.1.11 --mac 02:00:00:00:01:11 --weight 1\n"
        "lb backend 198.18.100.1:80/tcp 198.18.1.12 --mac 02:00:00:00:01:12 --weight 2 --check tcp "
        "--check-interval 1s --check-timeout 500ms --rise 1 --fall 1\n";
    xdpctl_ok({"apply", write_temp_file("default pass\n" + text, "health")});
    const std::string exp = exported();
    EXPECT_NE(exp.find(text), std::string::npos) << exp;
    // Applying what export printed changes nothing.
    CmdResult again = xdpctl({"apply", write_temp_file(exp, "health")});
    EXPECT_EQ(again.exit_code, 0) << again;
    EXPECT_EQ(exported(), exp);

    CmdResult bad = xdpctl({"apply", write_temp_file(exp + "lb backend 198.18.100.1:80/tcp 198.18.1.13 --mac "
                                                           "02:00:00:00:01:13 --check http:/x --rise 0\n",
                                                     "health")});
    EXPECT_EQ(bad.exit_code, 2) << bad;
    EXPECT_NE(bad.err.find("--rise 0"), std::string::npos) << bad;
    EXPECT_EQ(exported(), exp);

    // lb check set/del and what lb list --json shows.
    xdpctl_ok({"lb", "check", "set", "198.18.100.1:80/tcp", "198.18.1.11", "--check", "none"});
    xdpctl_ok({"lb", "check", "del", "198.18.100.1:80/tcp", "198.18.1.12"});
    const auto j = xdpctl_json({"lb", "list", "--json"});
    const auto& bes = j["vips"][0]["backends"];
    ASSERT_EQ(bes.size(), 2u);
    EXPECT_EQ(bes[0]["health"]["state"], "unchecked");
    EXPECT_EQ(bes[0]["own_check"]["type"], "none");
    EXPECT_EQ(bes[1]["health"]["state"], "up");
    EXPECT_EQ(bes[1]["health"]["check"]["type"], "http:/healthz:200");
    EXPECT_EQ(bes[1]["effective_weight"], 2);
    CmdResult nob = xdpctl({"lb", "check", "set", "198.18.100.1:80/tcp", "198.18.1.99", "--check", "tcp"});
    EXPECT_EQ(nob.exit_code, 2) << nob;
}

TEST_F(HealthCli, DownBackendKeepsItsConfiguredWeightThroughExportStateAndRestore)
{
    const char* dir = std::getenv("XDPCTL_STATE_DIR");
    if (!dir || !*dir)
        GTEST_SKIP() << "XDPCTL_STATE_DIR is not set (meson test sets it)";
    const std::string vip = "198.18.100.1:80/tcp";
    xdpctl_ok({"apply", write_temp_file("default pass\nlb vip " + vip + " --check tcp --check-interval 200ms "
                                        "--check-timeout 100ms\nlb backend " + vip +
                                        " 198.18.1.11 --mac 02:00:00:00:01:11 --weight 3\nlb backend " + vip +
                                        " 198.18.1.12 --mac 02:00:00:00:01:12 --weight 1\n",
                                        "health")});
    const std::string before = exported();
    {
        // What xdpd does when the check fails `fall` times: through the LB store.
        lb::LbStore store;
        ASSERT_TRUE(store.maps().set_down(lb::parse_vip(vip), lb::parse_ip("198.18.1.11"), true));
        EXPECT_FALSE(store.maps().set_down(lb::parse_vip(vip), lb::parse_ip("198.18.1.11"), true)) << "no change";
    }
    auto b = xdpctl_json({"lb", "list", "--json"})["vips"][0]["backends"][0];
    EXPECT_EQ(b["health"]["state"], "down");
    EXPECT_EQ(b["weight"], 3);
    EXPECT_EQ(b["effective_weight"], 0);
    // export, and so apply and the state directory, keep the configured weight.
    EXPECT_EQ(exported(), before);
    // A new weight while down is the one it comes back with; apply keeps it down.
    xdpctl_ok({"lb", "backend", "set", vip, "198.18.1.11", "--weight", "4"});
    b = xdpctl_json({"lb", "list", "--json"})["vips"][0]["backends"][0];
    EXPECT_EQ(b["weight"], 4);
    EXPECT_EQ(b["effective_weight"], 0);
    xdpctl_ok({"lb", "backend", "set", vip, "198.18.1.11", "--weight", "3"});
    xdpctl_ok({"apply", write_temp_file(before, "health")});
    b = xdpctl_json({"lb", "list", "--json"})["vips"][0]["backends"][0];
    EXPECT_EQ(b["health"]["state"], "down");
    EXPECT_EQ(b["effective_weight"], 0);
    auto saved = state::StateDir(dir).load();
    ASSERT_TRUE(saved);
    EXPECT_EQ(lb::format_lb_config(saved->lb), before.substr(before.find("lb vip")));

    // The "reboot": every pin gone (not recorded), then restore.
    xdpctl_ok({"--state-dir", "", "unload", "--all", "--yes"});
    EXPECT_TRUE(xdpctl_json({"lb", "list", "--json"})["vips"].empty());
    xdpctl_ok({"restore"});
    EXPECT_EQ(exported(), before);
    b = xdpctl_json({"lb", "list", "--json"})["vips"][0]["backends"][0];
    EXPECT_EQ(b["health"]["state"], "up");
    EXPECT_EQ(b["effective_weight"], 3);
}

// ---- root: xdpd and real backends --------------------------------------------------------

constexpr uint16_t kPort = 8080, kHealthPort = 8081;
constexpr auto kInterval = 150ms;
constexpr uint32_t kRise = 2, kFall = 3;
// xdpd's commit takes the host-wide writer lock, which other xdpctl commands on the host
// (other test programs) may hold for a moment: the slack on a change reaching the maps.
constexpr auto kLockSlack = 3000ms;

// A backend: on 8080 it says its name, then answers each line with its name again; on 8081
// an HTTP/1.0 server whose every answer is 200. stop() closes the listeners only: the
// connections it holds go on.
class Backend {
public:
    Backend(const std::string& ns, std::string name) : name_(std::move(name)), thread_(ns)
    {
        thread_.run([this] { listen(); });
    }
    ~Backend() { thread_.stop(); }
    void stop()
    {
        thread_.run([this] {
            for (auto& a : acceptors_)
                a->close();  // the pending accept holds it too: closed, not just dropped
            acceptors_.clear();
        });
    }
    void start() { thread_.run([this] { listen(); }); }

private:
    void listen()
    {
        for (uint16_t port : {kPort, kHealthPort}) {
            auto a = std::make_shared<tcp::acceptor>(thread_.io());
            a->open(tcp::v4());
            // Not inherited by xdpd and the commands the test starts: a copy there would keep
            // the port listening after stop().
            fcntl(a->native_handle(), F_SETFD, FD_CLOEXEC);
            a->set_option(tcp::acceptor::reuse_address(true));
            a->bind(tcp::endpoint(tcp::v4(), port));
            a->listen();
            accept(a, port == kHealthPort);
            acceptors_.push_back(a);
        }
    }
    struct Session : std::enable_shared_from_this<Session> {
        Session(tcp::socket s, std::string m) : sock(std::move(s)), msg(std::move(m)) {}
        tcp::socket sock;
        std::string msg;
        asio::streambuf in;
        void serve(bool http)
        {
            auto self = shared_from_this();
            if (http) {
                asio::async_read_until(sock, in, "\r\n\r\n", [self](boost::system::error_code ec, size_t) {
                    if (ec)
                        return;
                    self->msg = "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
                    asio::async_write(self->sock, asio::buffer(self->msg), [self](boost::system::error_code, size_t) {
                        boost::system::error_code ignored;
                        self->sock.shutdown(tcp::socket::shutdown_both, ignored);
                    });
                });
                return;
            }
            asio::async_write(sock, asio::buffer(msg), [self](boost::system::error_code ec, size_t) {
                if (!ec)
                    self->next_line();
            });
        }
        void next_line()
        {
            auto self = shared_from_this();
            asio::async_read_until(sock, in, '\n', [self](boost::system::error_code ec, size_t n) {
                if (ec)
                    return;
                self->in.consume(n);
                asio::async_write(self->sock, asio::buffer(self->msg), [self](boost::system::error_code e2, size_t) {
                    if (!e2)
                        self->next_line();
                });
            });
        }
    };
    void accept(const std::shared_ptr<tcp::acceptor>& a, bool http)
    {
        a->async_accept([this, a, http](boost::system::error_code ec, tcp::socket s) {
            if (!ec)
                std::make_shared<Session>(std::move(s), name_ + "\n")->serve(http);
            if (ec != asio::error::operation_aborted && a->is_open())
                accept(a, http);
        });
    }

    std::string name_;
    NetnsIoThread thread_;
    std::vector<std::shared_ptr<tcp::acceptor>> acceptors_;
};

// A client connection to the VIP, made in the client's namespace (a socket stays in the
// namespace it was made in); blocking with a 2 s limit on each read.
class Conn {
public:
    explicit Conn(const std::string& client_ns)
    {
        fd_ = in_netns(client_ns, [] { return UniqueFd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)); });
        timeval tv{2, 0};
        setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(kPort);
        inet_pton(AF_INET, kVip4, &a.sin_addr);
        if (connect(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
            error_ = fmt::format("connect: {}", strerror(errno));
        else
            name_ = line();
    }
    // The backend's name ("" and error() set when the connection failed).
    const std::string& name() const { return name_; }
    const std::string& error() const { return error_; }
    // Sends a line, returns the answer.
    std::string ask()
    {
        if (send(fd_.get(), "ping\n", 5, MSG_NOSIGNAL) != 5) {
            error_ = fmt::format("send: {}", strerror(errno));
            return "";
        }
        return line();
    }

private:
    std::string line()
    {
        std::string s;
        char c;
        while (true) {
            ssize_t n = recv(fd_.get(), &c, 1, 0);
            if (n <= 0) {
                error_ = n == 0 ? "closed" : fmt::format("recv: {}", strerror(errno));
                return "";
            }
            if (c == '\n')
                return s;
            s += c;
        }
    }
    UniqueFd fd_;
    std::string name_, error_;
};

// xdpd in the LB's namespace (nsenter keeps the mount namespace: the same bpffs), its
// output in a file; SIGTERMed by the destructor.
class Xdpd {
public:
    explicit Xdpd(const std::string& ns) : log_(fmt::format("/tmp/xdpctl-test-health-xdpd-{}.log", getpid()))
    {
        const char* bin = std::getenv("XDPD_BIN");
        std::vector<std::string> argv{"nsenter", "--net=/run/netns/" + ns, bin ? bin : "xdpd", "--config",
                                      "/dev/null", "--metrics-listen", "127.0.0.1:0", "--state-dir", ""};
        pid_ = spawn_logged(argv, log_);
        slot_ = register_emergency_cleanup(fmt::format("kill -9 {} 2>/dev/null", pid_));
    }
    ~Xdpd()
    {
        kill(pid_, SIGTERM);
        waitpid(pid_, nullptr, 0);
        release_emergency_cleanup(slot_);
        unlink(log_.c_str());
    }
    std::string output() const
    {
        std::ifstream f(log_);
        std::stringstream s;
        s << f.rdbuf();
        return s.str();
    }
    // The port it serves metrics on, from its log ("serving metrics on 127.0.0.1:PORT/metrics").
    uint16_t metrics_port() const
    {
        const std::string out = output(), tag = "serving metrics on 127.0.0.1:";
        const size_t at = out.find(tag);
        return at == std::string::npos ? 0 : uint16_t(std::stoi(out.substr(at + tag.size())));
    }

private:
    std::string log_;
    pid_t pid_ = -1;
    int slot_ = -1;
};

// GET /metrics from xdpd, in the LB's namespace.
std::string scrape(const std::string& ns, uint16_t port)
{
    return in_netns(ns, [port] {
        asio::io_context io;
        tcp::socket s(io);
        s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
        const std::string req = "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n";
        asio::write(s, asio::buffer(req));
        std::string body;
        boost::system::error_code ec;
        asio::read(s, asio::dynamic_buffer(body), ec);
        return body;
    });
}

// The backend's entry in `lb list --json`.
nlohmann::json backend_json(const std::string& ip)
{
    const auto j = xdpctl_json({"lb", "list", "--json"});
    for (const auto& b : j["vips"][0]["backends"])
        if (b["address"] == ip)
            return b;
    return {};
}

// Polls until the backend's effective weight is `want`; returns how long it took (or
// `limit` when it did not happen).
std::chrono::milliseconds wait_weight(const std::string& ip, uint32_t want, std::chrono::milliseconds limit)
{
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < limit) {
        if (backend_json(ip)["effective_weight"] == want)
            return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
        std::this_thread::sleep_for(20ms);
    }
    return limit;
}

class HealthDaemon : public NoPolicyTest {
protected:
    void SetUp() override
    {
        NoPolicyTest::SetUp();
        if (!std::getenv("XDPD_BIN"))
            GTEST_SKIP() << "XDPD_BIN is not set (meson test sets it)";
    }
    void TearDown() override
    {
        if (::geteuid() == 0)
            xdpctl({"lb", "vip", "del", fmt::format("{}:{}/tcp", kVip4, kPort)});
        NoPolicyTest::TearDown();
    }
};

TEST_F(HealthDaemon, FailedBackendOutOfRotationHeldConnectionStaysRecoveredBackendBack)
{
    LbLab lab;
    std::vector<std::unique_ptr<Backend>> servers;
    for (size_t i = 0; i < lab.backends().size(); i++)
        servers.push_back(std::make_unique<Backend>(lab.backends()[i].ns, fmt::format("b{}", i + 1)));
    const std::string vip = fmt::format("{}:{}/tcp", kVip4, kPort);
    xdpctl_ok({"lb", "vip", "add", vip, "--check", "http:/healthz:200", "--check-port", std::to_string(kHealthPort),
               "--check-interval", lb::format_check_duration(kInterval), "--check-timeout", "100ms", "--rise",
               std::to_string(kRise), "--fall", std::to_string(kFall)});
    const uint32_t weights[] = {1, 2, 1};
    for (size_t i = 0; i < 3; i++) {
        const Node& b = lab.backends()[i];
        std::vector<std::string> args{"lb",   "backend", "add", vip, b.ip4, "--mac", b.mac, "--weight",
                                      std::to_string(weights[i])};
        if (i == 2) {  // its own check: TCP to the service port
            for (const char* a : {"--check", "tcp", "--check-interval", "150ms", "--check-timeout", "100ms"})
                args.push_back(a);
        }
        xdpctl_ok(args);
    }
    Xdpd xdpd(lab.lb().ns);
    const std::string b2 = lab.backends()[1].ip4;
    // Every backend checked and passing.
    const auto t_ready = std::chrono::steady_clock::now();
    for (const auto& b : lab.backends())
        while (backend_json(b.ip4)["health"].value("checks", 0) < 2 &&
               std::chrono::steady_clock::now() - t_ready < 5s)
            std::this_thread::sleep_for(20ms);
    for (const auto& b : lab.backends()) {
        const auto j = backend_json(b.ip4);
        ASSERT_GE(j["health"].value("checks", 0), 2) << j.dump() << "\n" << xdpd.output();
        EXPECT_EQ(j["health"]["state"], "up") << j.dump();
        EXPECT_EQ(j["health"]["consecutive_failures"], 0) << j.dump();
    }

    // Connections that b2 holds: opened until one lands there.
    std::vector<std::unique_ptr<Conn>> held;
    Conn* on_b2 = nullptr;
    for (int i = 0; i < 60 && !on_b2; i++) {
        held.push_back(std::make_unique<Conn>(lab.client().ns));
        ASSERT_EQ(held.back()->error(), "") << "connection " << i;
        if (held.back()->name() == "b2")
            on_b2 = held.back().get();
    }
    ASSERT_NE(on_b2, nullptr) << "no connection reached b2 (weight 2 of 4) in 60";

    // b2 stops listening: out of rotation within fall x interval (+ the slack of a poll).
    servers[1]->stop();
    const auto fall_limit = kFall * kInterval + kLockSlack;
    const auto took = wait_weight(b2, 0, fall_limit);
    ASSERT_LT(took, fall_limit) << backend_json(b2).dump() << "\n" << xdpd.output();
    std::printf("b2 out of rotation %lld ms after it stopped listening (fall x interval = %lld ms)\n",
                (long long)took.count(), (long long)(kFall * kInterval).count());
    {
        const auto j = backend_json(b2);
        EXPECT_EQ(j["weight"], 2) << "the configured weight must stay";
        EXPECT_EQ(j["health"]["state"], "down");
        EXPECT_GE(j["health"]["consecutive_failures"], kFall);
        EXPECT_NE(j["health"]["last_error"].get<std::string>().find("connect"), std::string::npos) << j.dump();
        EXPECT_NE(xdpd.output().find("health: backend " + b2 + " of VIP " + vip + " down after 3 failed"),
                  std::string::npos)
            << xdpd.output();
        // export (and so the state directory) keeps the configured weight.
        EXPECT_NE(xdpctl_export().find("lb backend " + vip + " " + b2 + " --mac " + lab.backends()[1].mac +
                                       " --weight 2\n"),
                  std::string::npos);
        const std::string m = scrape(lab.lb().ns, xdpd.metrics_port());
        EXPECT_NE(m.find(fmt::format("xdpctl_lb_backend_up{{vip=\"{}\",backend=\"{}\"}} 0\n", vip, b2)),
                  std::string::npos)
            << m;
        EXPECT_NE(m.find(fmt::format("xdpctl_lb_backend_up{{vip=\"{}\",backend=\"{}\"}} 1\n", vip,
                                     lab.backends()[0].ip4)),
                  std::string::npos);
        EXPECT_NE(m.find(fmt::format("xdpctl_lb_health_check_failures_total{{vip=\"{}\",backend=\"{}\"}}", vip, b2)),
                  std::string::npos);
    }
    // No new connection reaches b2 (it would be refused: nothing listens there), every one
    // completes; the connection b2 holds still works.
    std::map<std::string, int> spread;
    for (int i = 0; i < 60; i++) {
        Conn c(lab.client().ns);
        EXPECT_EQ(c.error(), "") << "new connection " << i << " after b2 went down";
        spread[c.name()]++;
    }
    EXPECT_EQ(spread.count("b2"), 0u);
    EXPECT_GT(spread["b1"], 0);
    EXPECT_GT(spread["b3"], 0);
    EXPECT_EQ(on_b2->ask(), "b2") << on_b2->error();
    for (auto& c : held)
        EXPECT_EQ(c->ask(), c->name()) << c->error();

    // b2 listens again: back within rise x interval, with weight 2. Meanwhile another
    // writer holds the lock: xdpd's state changes, its commit waits for the lock (tried
    // again every 100 ms; xdpd never blocks on it).
    const std::string up_line = "health: backend " + b2 + " of VIP " + vip + " up after 2 passed";
    {
        WriterLock other;
        servers[1]->start();
        const auto rise_limit = kRise * kInterval + 1500ms;  // to the state change: no lock needed
        const auto t0 = std::chrono::steady_clock::now();
        while (xdpd.output().find(up_line) == std::string::npos && std::chrono::steady_clock::now() - t0 < rise_limit)
            std::this_thread::sleep_for(20ms);
        ASSERT_NE(xdpd.output().find(up_line), std::string::npos) << xdpd.output();
        std::this_thread::sleep_for(300ms);
        EXPECT_EQ(backend_json(b2)["effective_weight"], 0) << "no commit while another writer holds the lock";
        EXPECT_NE(scrape(lab.lb().ns, xdpd.metrics_port()).find("xdpctl_scrape_part_ok"), std::string::npos)
            << "xdpd serves while its commit waits";
    }
    // Other test programs on the host take the lock too (briefly): a few seconds of slack.
    ASSERT_LT(wait_weight(b2, 2, kLockSlack), kLockSlack) << backend_json(b2).dump() << "\n" << xdpd.output();
    EXPECT_EQ(backend_json(b2)["health"]["state"], "up");
    spread.clear();
    for (int i = 0; i < 60; i++) {
        Conn c(lab.client().ns);
        EXPECT_EQ(c.error(), "");
        spread[c.name()]++;
    }
    EXPECT_GT(spread["b2"], 0) << "b2 back in rotation";
    EXPECT_EQ(backend_json(lab.backends()[2].ip4)["health"]["state"], "up") << "b3's TCP check passes throughout";

    // A check changed while xdpd runs is taken up at its next poll: b1 answers 200 where
    // its own check now wants 404, so it goes down; its check removed, the VIP's applies again.
    const std::string b1 = lab.backends()[0].ip4;
    xdpctl_ok({"lb", "check", "set", vip, b1, "--check", "http:/other:404", "--check-port",
               std::to_string(kHealthPort), "--check-interval", "150ms", "--check-timeout", "100ms", "--fall", "2"});
    const auto poll_limit = HealthChecker::kConfigPoll + 2 * kInterval + kLockSlack;
    ASSERT_LT(wait_weight(b1, 0, poll_limit), poll_limit) << backend_json(b1).dump() << "\n" << xdpd.output();
    EXPECT_EQ(backend_json(b1)["health"]["last_error"], "HTTP status 200, expected 404");
    xdpctl_ok({"lb", "check", "del", vip, b1});
    ASSERT_LT(wait_weight(b1, 1, poll_limit + kRise * kInterval), poll_limit + kRise * kInterval)
        << backend_json(b1).dump() << "\n" << xdpd.output();
    EXPECT_EQ(backend_json(lab.backends()[2].ip4)["health"]["changes"], 0);
}

}  // namespace
}  // namespace xdpctl::test
