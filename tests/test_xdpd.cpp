// xdpd (issue 14): its Prometheus metrics against `xdpctl stats --json` and `rule list
// --json` after real traffic through the lab's veth, the exposition checked by promtool and
// scraped by a real Prometheus, bad requests and slow clients, SIGHUP/SIGTERM, sd_notify,
// link changes taken up, and the unit file verified. Every daemon the tests start is killed
// on every way out (ChildProcess's destructor), and every wait is bounded.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <bpf/bpf.h>

#include "util/error.h"
#include "netns_lab.h"
#include "service/daemon_config.h"
#include "service/listen_address.h"
#include "util/unique_fd.h"


namespace xdpctl::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string env_or_skip(const char* name)
{
    const char* v = std::getenv(name);
    return v ? v : "";
}

std::string read_file(const std::string& path)
{
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

// A TCP port nobody listens on now (bound and released: a race with other programs is
// possible but unlikely in the test's few seconds).
uint16_t free_port()
{
    UniqueFd s{socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
        throw std::runtime_error("bind for a free port failed");
    socklen_t len = sizeof(a);
    getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
}

// A background process (xdpd, Prometheus) with its output in a log file, SIGKILLed by the
// destructor if still running.
class ChildProcess {
public:
    ChildProcess(const std::vector<std::string>& argv, const std::string& tag,
                 const std::vector<std::string>& extra_env = {})
        : log_(fmt::format("/tmp/xdpctl-test-{}-{}.log", tag, getpid()))
    {
        pid_ = spawn_logged(argv, log_, extra_env);
        // Killed too when meson's time limit kills the test before the destructor runs.
        emergency_slot_ = register_emergency_cleanup(fmt::format("kill -9 {} 2>/dev/null", pid_));
    }
    ~ChildProcess()
    {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
        if (emergency_slot_ >= 0)
            release_emergency_cleanup(emergency_slot_);
        unlink(log_.c_str());
    }
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    pid_t pid() const { return pid_; }
    std::string output() const { return read_file(log_); }

    // The exit status once it exits within `limit` (-1: killed by a signal, -2: still running).
    int wait_exit(std::chrono::milliseconds limit)
    {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            int st = 0;
            if (waitpid(pid_, &st, WNOHANG) == pid_) {
                pid_ = -1;
                return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            }
            std::this_thread::sleep_for(20ms);
        }
        return -2;
    }
    // Polls the output until it contains `text` or `limit` passes.
    bool wait_output(const std::string& text, std::chrono::milliseconds limit) const
    {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            if (output().find(text) != std::string::npos)
                return true;
            std::this_thread::sleep_for(50ms);
        }
        return false;
    }

private:
    std::string log_;
    pid_t pid_ = -1;
    int emergency_slot_ = -1;
};

// A file removed on the way out.
struct RemovedFile {
    std::string path;
    ~RemovedFile() { unlink(path.c_str()); }
};

// A directory under /tmp, removed with everything in it on the way out.
struct TempDir {
    explicit TempDir(const std::string& tag)
        : path(fs::temp_directory_path() / fmt::format("xdpctl-test-{}-{}", tag, getpid()))
    {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir()
    {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    fs::path path;
};

UniqueFd connect_to(uint16_t port)
{
    UniqueFd s{socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
        return UniqueFd{};
    return s;
}

// Reads until the peer closes or `limit` passes; `closed` says which.
std::string read_all(int fd, std::chrono::milliseconds limit, bool* closed = nullptr)
{
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left <= 0ms)
            break;
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, int(left.count())) <= 0)
            break;
        char buf[65536];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            if (closed)
                *closed = true;
            return out;
        }
        out.append(buf, size_t(n));
    }
    if (closed)
        *closed = false;
    return out;
}

// One HTTP exchange with Connection: close: the raw answer ("" when nothing answered).
std::string http_raw(uint16_t port, const std::string& request, std::chrono::milliseconds limit = 5s)
{
    UniqueFd s = connect_to(port);
    if (!s)
        return "";
    send(s.get(), request.data(), request.size(), MSG_NOSIGNAL);
    return read_all(s.get(), limit);
}

int http_status(const std::string& answer)
{
    // "HTTP/1.1 200 OK"
    return answer.size() > 12 ? std::atoi(answer.c_str() + 9) : 0;
}

std::string http_body(const std::string& answer)
{
    auto p = answer.find("\r\n\r\n");
    return p == std::string::npos ? "" : answer.substr(p + 4);
}

std::string get_request(const std::string& path)
{
    return fmt::format("GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
}

std::string scrape(uint16_t port)
{
    std::string a = http_raw(port, get_request("/metrics"));
    EXPECT_EQ(http_status(a), 200) << a.substr(0, 300);
    return http_body(a);
}

// "name{labels}" -> value, as the exposition writes them.
std::map<std::string, std::string> samples(const std::string& text)
{
    std::map<std::string, std::string> m;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#')
            continue;
        auto sp = line.rfind(' ');
        m[line.substr(0, sp)] = line.substr(sp + 1);
    }
    return m;
}

// Every interface counter and rule counter of the CLI's JSON, as the sample it must equal.
std::map<std::string, uint64_t> expected_samples(const nlohmann::json& stats, const nlohmann::json& rules)
{
    std::map<std::string, uint64_t> e;
    const std::map<std::string, std::pair<std::string, std::string>> groups = {
        {"verdict", {"xdpctl_", "verdict"}},
        {"l3", {"xdpctl_l3_", "proto"}},
        {"l4", {"xdpctl_l4_", "proto"}},
        {"malformed", {"xdpctl_malformed_", "reason"}}};
    for (const auto& i : stats["interfaces"])
        for (const auto& [hook, hj] : i["hooks"].items())
            for (const auto& [group, g] : groups)
                for (const auto& [name, v] : hj[group].items())
                    for (const char* what : {"packets", "bytes"})
                        e[fmt::format("{}{}_total{{netns=\"{}\",iface=\"{}\",hook=\"{}\",{}=\"{}\"}}", g.first,
                                      what, i["netns"].get<std::string>(), i["interface"].get<std::string>(), hook,
                                      g.second, name)] = v[what].get<uint64_t>();
    for (const auto& r : rules["rules"])
        for (const char* what : {"packets", "bytes"})
            e[fmt::format("xdpctl_rule_{}_total{{id=\"{}\",action=\"{}\",dir=\"{}\"}}", what, r["id"].get<uint32_t>(),
                          r["action"].get<std::string>(), r["dir"].get<std::string>())] = r[what].get<uint64_t>();
    return e;
}

std::string xdpd_bin()
{
    return env_or_skip("XDPD_BIN");
}

// xdpd on 127.0.0.1:port, once it says it serves (bounded); `extra` goes after the options.
std::unique_ptr<ChildProcess> start_xdpd(uint16_t port, const std::vector<std::string>& extra = {},
                                         const std::vector<std::string>& env = {},
                                         const std::vector<std::string>& prefix = {})
{
    std::vector<std::string> argv = prefix;
    argv.push_back(xdpd_bin());
    for (const auto& a : extra)
        argv.push_back(a);
    if (std::find(extra.begin(), extra.end(), "--config") == extra.end()) {
        argv.push_back("--config");
        argv.push_back("/dev/null");  // not /etc/xdpctl/xdpd.conf of the machine
    }
    if (port) {
        argv.push_back("--metrics-listen");
        argv.push_back(fmt::format("127.0.0.1:{}", port));
    }
    auto p = std::make_unique<ChildProcess>(argv, "xdpd", env);
    if (!p->wait_output("serving metrics on", 5s))
        ADD_FAILURE() << "xdpd did not start:\n" << p->output();
    return p;
}

// ---- no root needed --------------------------------------------------------------------

TEST(XdpdConfig, ParsesAndNamesBadLines)
{
    using namespace xdpctl::service;
    DaemonConfig c = parse_daemon_config("# comment\n\nmetrics-listen = [::1]:9000  # v6\nhttp-timeout=3\n", "f");
    EXPECT_EQ(c.metrics_listen, "[::1]:9000");
    EXPECT_EQ(c.http_timeout, std::chrono::seconds(3));
    EXPECT_EQ(parse_daemon_config("", "f"), DaemonConfig{});

    struct Bad {
        std::string text, message;
    } bad[] = {
        {"metrics-listen\n", "f:1: expected 'key = value'"},
        {"\nfoo = 1\n", "f:2: unknown key 'foo'"},
        {"http-timeout = 0\n", "f:1: http-timeout '0'"},
        {"http-timeout = 5s\n", "f:1: http-timeout '5s'"},
        {"metrics-listen = 127.0.0.1\n", "f:1: listen address '127.0.0.1': no port"},
        {"metrics-listen = ::1:80\n", "f:1: listen address '::1:80': an IPv6 address goes in brackets"},
        {"metrics-listen = 1.2.3.4:65536\n", "f:1: listen address '1.2.3.4:65536': the port"},
        {"metrics-listen =\n", "f:1: metrics-listen has no value"},
    };
    for (const auto& b : bad) {
        try {
            parse_daemon_config(b.text, "f");
            ADD_FAILURE() << "accepted: " << b.text;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), ExitCode::usage);
            EXPECT_NE(std::string(e.what()).find(b.message), std::string::npos) << e.what();
        }
    }
    EXPECT_EQ(parse_listen_address("127.0.0.1:9469").port(), 9469);
    EXPECT_TRUE(parse_listen_address("[::1]:1").address().is_v6());
}

TEST(XdpdUnit, PassesSystemdAnalyzeVerify)
{
    if (system("command -v systemd-analyze >/dev/null") != 0)
        GTEST_SKIP() << "systemd-analyze is not installed (scripts/setup.sh installs it)";
    // The unit as installed names the installed binary; verify needs it to exist.
    const std::string unit = read_file(env_or_skip("XDPD_UNIT"));
    ASSERT_NE(unit.find("Type=notify"), std::string::npos);
    const auto exec = unit.find("ExecStart=");
    const auto bin_end = unit.find(' ', exec);
    std::string local = unit.substr(0, exec) + "ExecStart=" + xdpd_bin() + unit.substr(bin_end);
    const TempDir tmp("unit");
    const fs::path& dir = tmp.path;
    // `verify` runs `man xdpd(8)` for Documentation=: point MANPATH at the page of the sources
    // (installed by meson install_man), as it would be found on an installed system.
    ASSERT_NE(unit.find("Documentation=man:xdpd(8)"), std::string::npos);
    const std::string man_page = env_or_skip("XDPD_MAN");
    fs::create_directories(dir / "man" / "man8");
    fs::copy_file(man_page, dir / "man" / "man8" / "xdpd.8");
    const char* old_manpath = getenv("MANPATH");
    const std::string saved_manpath = old_manpath ? old_manpath : "";
    setenv("MANPATH", (dir / "man").c_str(), 1);
    struct RestoreManpath {
        bool had;
        std::string value;
        ~RestoreManpath() { had ? setenv("MANPATH", value.c_str(), 1) : unsetenv("MANPATH"); }
    } restore_manpath{old_manpath != nullptr, saved_manpath};
    auto verify = [&](const std::string& text) {
        std::ofstream(dir / "xdpd.service") << text;
        return run_cmd({"systemd-analyze", "verify", (dir / "xdpd.service").string()}, 30s);
    };
    CmdResult ok = verify(local);
    EXPECT_EQ(ok.exit_code, 0) << ok;
    EXPECT_EQ(ok.err, "") << ok;
    // The check can fail: a unit with a bad Type= does.
    std::string broken = local;
    broken.replace(broken.find("Type=notify"), 11, "Type=notifyy");
    CmdResult bad = verify(broken);
    EXPECT_TRUE(bad.exit_code != 0 || !bad.err.empty()) << bad;
}

// ---- root: real daemons ------------------------------------------------------------------

class Xdpd : public NoPolicyTest {
protected:
    void SetUp() override
    {
        NoPolicyTest::SetUp();
        if (xdpd_bin().empty())
            GTEST_SKIP() << "XDPD_BIN is not set (meson test sets it)";
    }
    void TearDown() override
    {
        if (geteuid() == 0 && !xdpd_bin().empty()) {  // the VIPs a test made
            CmdResult l = xdpctl({"lb", "list", "--json"});
            const nlohmann::json all = l.exit_code == 0 ? nlohmann::json::parse(l.out) : nlohmann::json::object();
            if (all.contains("vips"))
                for (const auto& v : all["vips"])
                    xdpctl({"lb", "vip", "del", v["vip"].get<std::string>()});
        }
        NoPolicyTest::TearDown();
    }
};

// Known traffic through the lab, then a scrape, `stats --json` and `rule list --json` with
// nothing moving in between: every counter equal.
TEST_F(Xdpd, MetricsEqualTheCliAndPassPromtool)
{
    NetnsLab lab;
    lab.load();
    xdpctl_ok({"rule", "add", "--id", "1", "--proto", "udp", "--dport", "9", "--action", "drop"});
    xdpctl_ok({"rule", "add", "--id", "2", "--src", lab.peer().ipv4 + "/32", "--action", "count"});
    // The DUT's own address as a VIP: the peer reaches it as it is. What the LB forwards goes
    // back out to the peer, which drops it (no XDP program there): counted all the same.
    const std::string vip = lab.dut().ipv4 + ":7777/udp";
    xdpctl_ok({"lb", "vip", "add", vip});
    xdpctl_ok({"lb", "backend", "add", vip, "198.18.0.201", "--mac", "02:00:00:00:00:01", "--weight", "7"});
    const auto t_commit = std::chrono::system_clock::now();
    const uint16_t port = free_port();
    auto d = start_xdpd(port);

    const StatsSnapshot before = lab.stats();
    EXPECT_EQ(udp_through(lab, 9, 5), 0);
    EXPECT_EQ(udp_through(lab, 10, 3), 3);
    lab.ping_from_peer(lab.dut().ipv4, 2);
    EXPECT_EQ(udp_through(lab, 7777, 4), 0);  // load balanced away
    lab.wait_delta(before, [](const CounterMap& c) { return c.count("xdp/verdict/drop") && c.at("xdp/verdict/drop").packets >= 5; });

    const std::string text = scrape(port);
    const nlohmann::json stats = xdpctl_json({"stats", "--all", "--json"});
    const nlohmann::json rules = xdpctl_json({"rule", "list", "--json"});
    const nlohmann::json lb = xdpctl_json({"lb", "list", "--json"});
    const auto got = samples(text);

    const auto want = expected_samples(stats, rules);
    ASSERT_GT(want.size(), 50u);
    for (const auto& [key, value] : want) {
        auto it = got.find(key);
        ASSERT_NE(it, got.end()) << key << " missing from\n" << text;
        EXPECT_EQ(it->second, std::to_string(value)) << key;
    }
    // The traffic is there, not only zeros equal to zeros.
    const std::string dut = fmt::format("netns=\"{}\",iface=\"{}\",hook=\"xdp\"", lab.dut().ns, lab.dut().ifname);
    EXPECT_EQ(got.at("xdpctl_packets_total{" + dut + ",verdict=\"drop\"}"), "5");
    EXPECT_EQ(got.at("xdpctl_rule_packets_total{id=\"1\",action=\"drop\",dir=\"ingress\"}"), "5");
    // 3 UDP to port 10, 2 pings and the 4 to the VIP (filtered before they are balanced);
    // the 5 to port 9 met rule 1 first, which decided them.
    EXPECT_EQ(got.at("xdpctl_rule_packets_total{id=\"2\",action=\"count\",dir=\"ingress\"}"), "9");

    // The load balancer as `lb list --json` has it: 4 datagrams of one flow.
    const auto& v = lb["vips"][0];
    const auto& b = v["backends"][0];
    const std::string vl = fmt::format("vip=\"{}\"", vip), bl = vl + ",backend=\"198.18.0.201\"";
    for (const char* what : {"packets", "bytes", "new_flows"}) {
        EXPECT_EQ(got.at(fmt::format("xdpctl_lb_vip_{}_total{{{}}}", what, vl)),
                  std::to_string(v["counters"][what].get<uint64_t>())) << what;
        EXPECT_EQ(got.at(fmt::format("xdpctl_lb_backend_{}_total{{{}}}", what, bl)),
                  std::to_string(b["counters"][what].get<uint64_t>())) << what;
    }
    EXPECT_EQ(got.at(fmt::format("xdpctl_lb_vip_packets_total{{{}}}", vl)), "4");
    EXPECT_EQ(got.at(fmt::format("xdpctl_lb_backend_new_flows_total{{{}}}", bl)), "1");
    EXPECT_EQ(got.at(fmt::format("xdpctl_lb_backend_weight{{{}}}", bl)), "7");
    EXPECT_EQ(got.at("xdpctl_lb_conntrack_hits_total"), std::to_string(lb["counters"]["conntrack_hits"].get<uint64_t>()));
    EXPECT_EQ(got.at("xdpctl_lb_conntrack_misses_total"), std::to_string(lb["counters"]["conntrack_misses"].get<uint64_t>()));
    EXPECT_EQ(got.at("xdpctl_lb_conntrack_hits_total"), "3");
    for (const auto& [name, value] : lb["counters"].items()) {
        if (name == "conntrack_hits" || name == "conntrack_misses")
            continue;
        EXPECT_EQ(got.at(fmt::format("xdpctl_lb_events_total{{event=\"{}\"}}", name)),
                  std::to_string(value.get<uint64_t>())) << name;
    }

    // Commits: two rules (the lab's load commits nothing new), and the time of the last.
    EXPECT_GE(std::stoull(got.at("xdpctl_policy_commits_total")), 2u);
    const double last = std::stod(got.at("xdpctl_policy_last_commit_timestamp_seconds"));
    const double t = std::chrono::duration<double>(t_commit.time_since_epoch()).count();
    EXPECT_LE(last, t + 1);
    EXPECT_GE(last, t - 60);
    for (const auto& part : {"interfaces", "rules", "lb", "programs"})
        EXPECT_EQ(got.at(fmt::format("xdpctl_scrape_part_ok{{part=\"{}\"}}", part)), "1") << d->output();

    // The format, by Prometheus' own checker (lint included).
    if (system("command -v promtool >/dev/null") == 0) {
        const std::string f = write_temp_file(text, "metrics");
        const RemovedFile metrics_file{f};
        CmdResult c = run_cmd({"sh", "-c", "promtool check metrics < " + f}, 30s);
        EXPECT_EQ(c.exit_code, 0) << c;
        EXPECT_EQ(c.out + c.err, "") << c;
    } else {
        ADD_FAILURE() << "promtool is missing (scripts/setup.sh installs the prometheus package)";
    }
}

// Program runs and run time as `status --json` gives them (counted while
// kernel.bpf_stats_enabled or a BPF_ENABLE_STATS fd is on).
TEST_F(Xdpd, ProgramRunTimeWithBpfStats)
{
    NetnsLab lab;
    lab.load();
    const uint16_t port = free_port();
    auto d = start_xdpd(port);
    const std::string key = fmt::format("xdpctl_program_runs_total{{netns=\"{}\",iface=\"{}\",hook=\"xdp\"}}",
                                        lab.dut().ns, lab.dut().ifname);
    EXPECT_EQ(samples(scrape(port)).at("xdpctl_bpf_stats_enabled"),
              read_file("/proc/sys/kernel/bpf_stats_enabled").substr(0, 1));
    // On for this test only: BPF_ENABLE_STATS keeps the kernel counting while its fd is
    // open (the sysctl is the machine's, and says nothing of it), and a few seconds of it
    // cost other programs little.
    UniqueFd stats_on{bpf_enable_stats(BPF_STATS_RUN_TIME)};
    ASSERT_TRUE(stats_on) << "BPF_ENABLE_STATS failed";
    lab.ping_from_peer(lab.dut().ipv4, 2);
    std::this_thread::sleep_for(200ms);  // the lab is quiet: nothing runs the program after this
    auto got = samples(scrape(port));
    const nlohmann::json st = xdpctl_json({"status", "--json"});
    stats_on = UniqueFd{};
    uint64_t runs = 0, ns = 0;
    for (const auto& i : st["interfaces"])
        if (i["interface"] == lab.dut().ifname)
            for (const auto& p : i["programs"])
                if (p["hook"] == "xdp") {
                    runs = p["run_cnt"].get<uint64_t>();
                    ns = p["run_time_ns"].get<uint64_t>();
                }
    ASSERT_GE(runs, 2u) << st.dump();
    ASSERT_TRUE(got.count(key)) << key;
    EXPECT_EQ(got.at(key), std::to_string(runs));
    const std::string tkey = fmt::format("xdpctl_program_run_seconds_total{{netns=\"{}\",iface=\"{}\",hook=\"xdp\"}}",
                                         lab.dut().ns, lab.dut().ifname);
    EXPECT_NEAR(std::stod(got.at(tkey)), double(ns) / 1e9, 1e-9);
}

// A real Prometheus scrapes xdpd every second; its HTTP API gives xdpctl's numbers.
TEST_F(Xdpd, PrometheusScrapesTheSameNumbers)
{
    if (system("command -v prometheus >/dev/null") != 0)
        GTEST_FAIL() << "prometheus is missing (scripts/setup.sh installs it)";
    NetnsLab lab;
    lab.load();
    xdpctl_ok({"rule", "add", "--id", "1", "--proto", "udp", "--dport", "9", "--action", "drop"});
    const uint16_t port = free_port();
    auto d = start_xdpd(port);
    const StatsSnapshot before = lab.stats();
    EXPECT_EQ(udp_through(lab, 9, 4), 0);
    EXPECT_EQ(udp_through(lab, 10, 2), 2);
    lab.wait_delta(before, [](const CounterMap& c) { return c.count("xdp/verdict/drop") && c.at("xdp/verdict/drop").packets >= 4; });
    const nlohmann::json stats = xdpctl_json({"stats", "--all", "--json"});
    const nlohmann::json rules = xdpctl_json({"rule", "list", "--json"});

    const TempDir tmp("prometheus");
    const fs::path& dir = tmp.path;
    fs::create_directories(dir / "data");
    std::ofstream(dir / "prometheus.yml") << fmt::format(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
        "  - job_name: xdpd\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n", port);
    const uint16_t prom_port = free_port();
    ChildProcess prom({"prometheus", "--config.file=" + (dir / "prometheus.yml").string(),
                       "--storage.tsdb.path=" + (dir / "data").string(),
                       fmt::format("--web.listen-address=127.0.0.1:{}", prom_port)},
                      "prometheus");

    // What Prometheus must hold: the DUT's XDP counters and the rules' packets.
    std::map<std::string, std::string> want;  // "query" -> value
    for (const auto& i : stats["interfaces"]) {
        if (i["interface"] != lab.dut().ifname)
            continue;
        for (const char* verdict : {"pass", "drop"})
            want[fmt::format("xdpctl_packets_total{{iface=\"{}\",hook=\"xdp\",verdict=\"{}\"}}", lab.dut().ifname,
                             verdict)] = std::to_string(i["hooks"]["xdp"]["verdict"][verdict]["packets"].get<uint64_t>());
        want[fmt::format("xdpctl_l4_bytes_total{{iface=\"{}\",hook=\"xdp\",proto=\"udp\"}}", lab.dut().ifname)] =
            std::to_string(i["hooks"]["xdp"]["l4"]["udp"]["bytes"].get<uint64_t>());
    }
    want["xdpctl_rule_packets_total{id=\"1\"}"] = std::to_string(rules["rules"][0]["packets"].get<uint64_t>());
    ASSERT_EQ(want.size(), 4u);
    ASSERT_EQ(want["xdpctl_rule_packets_total{id=\"1\"}"], "4");

    std::map<std::string, std::string> last;
    const auto deadline = std::chrono::steady_clock::now() + 40s;
    while (std::chrono::steady_clock::now() < deadline) {
        last.clear();
        for (const auto& [q, _] : want) {
            CmdResult r = run_cmd({"curl", "-s", "-G", "--max-time", "3",
                                   fmt::format("http://127.0.0.1:{}/api/v1/query", prom_port),
                                   "--data-urlencode", "query=" + q},
                                  5s);
            try {
                auto j = nlohmann::json::parse(r.out);
                if (j["status"] == "success" && j["data"]["result"].size() == 1)
                    last[q] = j["data"]["result"][0]["value"][1].get<std::string>();
            } catch (const std::exception&) {
            }
        }
        if (last == want)
            break;
        std::this_thread::sleep_for(500ms);
    }
    EXPECT_EQ(last, want) << "prometheus:\n" << prom.output().substr(0, 3000);
}

// 404, 405, 431, 400; a slow client holds a connection while another scrape is answered, and
// is dropped at http-timeout.
TEST_F(Xdpd, BadRequestsAndSlowClients)
{
    const uint16_t port = free_port();
    const std::string conf = write_temp_file("http-timeout = 2\n", "xdpd-conf");
    const RemovedFile conf_file{conf};
    auto d = start_xdpd(port, {"--config", conf});

    EXPECT_EQ(http_status(http_raw(port, get_request("/"))), 404);
    EXPECT_EQ(http_status(http_raw(port, get_request("/metricsx"))), 404);
    EXPECT_EQ(http_status(http_raw(port, get_request("/metrics?x=1"))), 200);
    const std::string post = http_raw(port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(http_status(post), 405) << post;
    EXPECT_NE(post.find("Allow: GET, HEAD"), std::string::npos) << post;
    const std::string head = http_raw(port, "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(http_status(head), 200);
    EXPECT_EQ(http_body(head), "");
    const std::string huge = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n";
    EXPECT_EQ(http_status(http_raw(port, huge)), 431);
    EXPECT_EQ(http_status(http_raw(port, "GARBAGE\r\n\r\n")), 400);

    // Keep-alive: two scrapes on one connection.
    {
        UniqueFd s = connect_to(port);
        const std::string two = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        send(s.get(), two.data(), two.size(), MSG_NOSIGNAL);
        const std::string both = read_all(s.get(), 5s);
        size_t n = 0;
        for (size_t p = 0; (p = both.find("HTTP/1.1 200 OK", p)) != std::string::npos; p++)
            n++;
        EXPECT_EQ(n, 2u);
    }

    // Slow clients: half a request line, and a connection that says nothing.
    UniqueFd slow = connect_to(port);
    ASSERT_TRUE(slow);
    send(slow.get(), "GET /metr", 9, MSG_NOSIGNAL);
    UniqueFd idle = connect_to(port);
    ASSERT_TRUE(idle);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(http_status(http_raw(port, get_request("/metrics"), 1500ms)), 200);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
    bool closed = false;
    read_all(slow.get(), 5s, &closed);  // http-timeout is 2 s
    EXPECT_TRUE(closed) << "the slow client was not dropped";
    read_all(idle.get(), 1s, &closed);
    EXPECT_TRUE(closed) << "the idle client was not dropped";
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    EXPECT_EQ(http_status(http_raw(port, get_request("/metrics"))), 200);
}

// sd_notify READY=1; SIGHUP reads the file again (a bad one changes nothing); SIGTERM ends
// xdpd with 0 and leaves the programs attached and filtering.
TEST_F(Xdpd, NotifySighupSigterm)
{
    NetnsLab lab;
    lab.load();
    xdpctl_ok({"rule", "add", "--id", "1", "--proto", "udp", "--dport", "9", "--action", "drop"});

    // systemd's end of NOTIFY_SOCKET.
    const std::string sock_path = fmt::format("/tmp/xdpctl-test-notify-{}", getpid());
    unlink(sock_path.c_str());
    UniqueFd ns{socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path.c_str());
    ASSERT_EQ(bind(ns.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);

    const uint16_t p1 = free_port(), p2 = free_port();
    const std::string conf = write_temp_file(fmt::format("metrics-listen = 127.0.0.1:{}\n", p1), "xdpd-conf");
    const RemovedFile conf_file{conf}, notify_file{sock_path};
    auto d = start_xdpd(0, {"--config", conf}, {"NOTIFY_SOCKET=" + sock_path});
    const std::string ready = read_all(ns.get(), 5s);
    EXPECT_NE(ready.find("READY=1"), std::string::npos) << ready;
    EXPECT_EQ(http_status(http_raw(p1, get_request("/metrics"))), 200);

    std::ofstream(conf) << fmt::format("metrics-listen = 127.0.0.1:{}\n", p2);
    kill(d->pid(), SIGHUP);
    ASSERT_TRUE(d->wait_output(fmt::format("serving metrics on 127.0.0.1:{}", p2), 5s)) << d->output();
    EXPECT_EQ(http_status(http_raw(p2, get_request("/metrics"))), 200);
    EXPECT_FALSE(connect_to(p1)) << "the old address still listens";

    std::ofstream(conf) << "metrics-listen = 127.0.0.1:1\nbogus = 1\n";
    kill(d->pid(), SIGHUP);
    ASSERT_TRUE(d->wait_output(conf + ":2: unknown key 'bogus'", 5s)) << d->output();
    EXPECT_EQ(http_status(http_raw(p2, get_request("/metrics"))), 200);

    kill(d->pid(), SIGTERM);
    EXPECT_EQ(d->wait_exit(5s), 0) << d->output();
    EXPECT_NE(d->output().find("programs stay attached"), std::string::npos);
    // The datapath outlived the daemon: still attached, still dropping.
    EXPECT_EQ(udp_through(lab, 9, 3), 0);
    EXPECT_EQ(udp_through(lab, 10, 2), 2);

    // A bad file at start: exit 2 naming the line.
    const std::string bad = write_temp_file("http-timeout = 0\n", "xdpd-conf");
    const RemovedFile bad_file{bad};
    ChildProcess b({xdpd_bin(), "--config", bad}, "xdpd-bad");
    EXPECT_EQ(b.wait_exit(5s), 2);
    EXPECT_NE(b.output().find(bad + ":1: http-timeout '0'"), std::string::npos) << b.output();
}

// A link that appears in xdpd's namespace is logged, and an --iif-pending rule naming it is
// resolved by a commit xdpd makes (rule list shows it resolved).
TEST_F(Xdpd, LinkChangesResolvePendingIif)
{
    NetnsLab lab;
    const std::string ns = lab.dut().ns;
    const std::string name = "xdxd0";
    xdpctl_ok({"rule", "add", "--id", "1", "--iif", name, "--iif-netns", ns, "--iif-pending", "--action", "drop"});
    auto state = [] { return xdpctl_json({"rule", "list", "--json"})["rules"][0]["iif_state"].get<std::string>(); };
    ASSERT_EQ(state(), "pending");

    // xdpd in the DUT namespace (nsenter keeps the mount namespace, so the same bpffs).
    const uint16_t port = free_port();
    auto d = start_xdpd(0, {"--metrics-listen", fmt::format("127.0.0.1:{}", port)}, {},
                        {"nsenter", "--net=/run/netns/" + ns});
    run_ok({"ip", "-n", ns, "link", "add", name, "type", "veth", "peer", "name", "xdxd1"});
    EXPECT_TRUE(d->wait_output(fmt::format("link {} (ifindex", name), 5s)) << d->output();
    std::string s;
    for (auto deadline = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < deadline;) {
        s = state();
        if (s == "resolved")
            break;
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(s, "resolved") << d->output();
    EXPECT_TRUE(d->wait_output("--iif names resolved again", 2s)) << d->output();
    run_cmd({"ip", "-n", ns, "link", "del", name});
}

}  // namespace
}  // namespace xdpctl::test
