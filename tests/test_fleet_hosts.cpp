// A fleet of 8 simulated hosts following one etcd key (issue 15, docs/fleet.md). Each host is a
// network namespace xdpctl-fleet-hN plus a mount namespace of its own (its own bpffs, its own
// /run and so its own writer lock) and state directory, with xdpctl loaded on its veth and its
// own xdpd --fleet. A generator namespace (xdpctl-fleet-gen) holds the 3-member TLS etcd
// cluster (on 198.18.0.1) and one veth to each host; UDP from it to each host's ports 7001 and
// 7002 shows which of the two the policy in force there drops.
//
// The cases run in order on the one fleet (building it costs seconds): each leaves the fleet
// converged for the next.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include <fmt/core.h>
#include <gtest/gtest.h>

#include "attach/netns.h"
#include "etcd_cluster.h"
#include "fleet/etcd_client.h"
#include "fleet/fleet_keys.h"
#include "fleet/fleet_status.h"
#include "netns_lab.h"
#include "require_root.h"
#include "service/daemon_config.h"
#include "util/error.h"
#include "util/unique_fd.h"

using namespace xdpctl;
using namespace xdpctl::test;
using namespace std::chrono_literals;

namespace {

constexpr int kHosts = 8;
constexpr const char* kFleet = "lab";
constexpr const char* kGen = "xdpctl-fleet-gen";
constexpr uint16_t kPortA = 7001, kPortB = 7002;
constexpr int kFrames = 3;  // per host and port: a check costs ~0.2 s for the whole fleet

std::string host_ns(int n) { return fmt::format("xdpctl-fleet-h{}", n); }
std::string host_addr(int n) { return fmt::format("198.18.{}.2", n); }
std::string host_id(int n) { return fmt::format("h{}", n); }

const char* env_or_empty(const char* name)
{
    const char* v = std::getenv(name);
    return v ? v : "";
}

// A policy of `rules` rules: fillers that match no test traffic (sources in 198.19.0.0/16)
// and the one rule the traffic checks, dropping UDP to `drop_port`.
std::string policy_text(uint16_t drop_port, int rules)
{
    std::string t = "default pass\n";
    for (int i = 0; i < rules - 1; i++)
        t += fmt::format("rule --src 198.19.{}.{}/32 --proto udp --dport 9 --action drop\n", i / 250, i % 250 + 1);
    t += fmt::format("rule --proto udp --dport {} --action drop\n", drop_port);
    return t;
}

// fork + exec with stdout/stderr to `log`, killed by `death_sig` if this thread ends first.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log, int death_sig)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, death_sig);
        int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        std::vector<char*> a;
        for (auto& s : argv)
            a.push_back(const_cast<char*>(s.c_str()));
        a.push_back(nullptr);
        execvp(a[0], a.data());
        _exit(127);
    }
    return pid;
}

void stop_pid(pid_t& pid, int sig)
{
    if (pid <= 0)
        return;
    kill(pid, sig);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    pid = -1;
}

std::string read_text(const std::string& path)
{
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

struct Host {
    int n = 0;
    std::string dir, state_dir, log;
    pid_t holder = -1;  // `sleep` holding the host's mount namespace (bpffs, /run)
    pid_t xdpd = -1;
    std::vector<std::string> in_host(const std::vector<std::string>& argv) const
    {
        std::vector<std::string> a{"nsenter", "-t", std::to_string(holder), "-m", "-n", "--"};
        a.insert(a.end(), argv.begin(), argv.end());
        return a;
    }
};

class FleetHosts : public ::testing::Test {
protected:
    static void SetUpTestSuite()
    {
        if (geteuid() != 0 || !*env_or_empty("XDPD_BIN"))
            return;
        try {
            build();
        } catch (...) {
            teardown();
            throw;
        }
    }

    static void TearDownTestSuite() { teardown(); }

    void SetUp() override
    {
        XDPCTL_REQUIRE_ROOT();
        if (!*env_or_empty("XDPD_BIN"))
            GTEST_SKIP() << "XDPD_BIN is not set (meson test sets it)";
        ASSERT_TRUE(cluster_) << "the fleet was not built";
    }

    static void build()
    {
        remove_namespaces();
        char tmpl[] = "/tmp/xdpctl-fleet-test.XXXXXX";
        ASSERT_TRUE(mkdtemp(tmpl));
        dir_ = tmpl;
        cleanup_slot_ = register_emergency_cleanup(cleanup_command());
        run_ok({"ip", "netns", "add", kGen});
        run_ok({"ip", "-n", kGen, "link", "set", "lo", "up"});
        run_ok({"ip", "-n", kGen, "addr", "add", "198.18.0.1/32", "dev", "lo"});
        for (int n = 1; n <= kHosts; n++) {
            const std::string ns = host_ns(n), gif = fmt::format("fleet-g{}", n);
            run_ok({"ip", "netns", "add", ns});
            run_ok({"ip", "link", "add", gif, "netns", kGen, "type", "veth", "peer", "name", "eth0", "netns", ns});
            run_ok({"ip", "-n", kGen, "addr", "add", fmt::format("198.18.{}.1/24", n), "dev", gif});
            run_ok({"ip", "-n", kGen, "link", "set", gif, "up"});
            run_ok({"ip", "netns", "exec", kGen, "ethtool", "-K", gif, "tx", "off"});
            run_ok({"ip", "-n", ns, "link", "set", "lo", "up"});
            run_ok({"ip", "-n", ns, "addr", "add", host_addr(n) + "/24", "dev", "eth0"});
            run_ok({"ip", "-n", ns, "link", "set", "eth0", "up"});
            run_ok({"ip", "-n", ns, "route", "add", "default", "via", fmt::format("198.18.{}.1", n)});
        }
        // The cluster's members are children of this thread, in the generator's namespace.
        gen_scope_ = std::make_unique<NetnsScope>(std::string(kGen));
        cluster_ = std::make_unique<EtcdCluster>(EtcdClusterOptions{3, "198.18.0.1", true});
        client_ = std::make_unique<fleet::EtcdClient>(cluster_->client_config());
        first_member_ = cluster_->wait_leader();
        for (int n = 1; n <= kHosts; n++) {
            Host h;
            h.n = n;
            h.dir = fmt::format("{}/h{}", dir_, n);
            h.state_dir = h.dir + "/state";
            h.log = h.dir + "/xdpd.log";
            std::filesystem::create_directories(h.state_dir);
            std::filesystem::permissions(h.state_dir, std::filesystem::perms::owner_all);
            const std::string ready = h.dir + "/ready";
            h.holder = spawn({"ip", "netns", "exec", host_ns(n), "sh", "-c",
                              "mount -t bpf bpf /sys/fs/bpf && mount -t tmpfs -o mode=755 tmpfs /run && "
                              "touch " + ready + " && exec sleep 3600"},
                             h.log, SIGKILL);
            hosts_.push_back(h);
        }
        for (auto& h : hosts_) {
            const std::string ready = h.dir + "/ready";
            for (int i = 0; i < 100 && !std::filesystem::exists(ready); i++)
                std::this_thread::sleep_for(20ms);
            ASSERT_TRUE(std::filesystem::exists(ready)) << read_text(h.log);
            run_ok(h.in_host({xdpctl_bin(), "--state-dir", h.state_dir, "load", "eth0"}));
            start_xdpd(h);
        }
        update_cleanup();
    }

    static void start_xdpd(Host& h)
    {
        std::vector<std::string> a{env_or_empty("XDPD_BIN"), "--config", "/dev/null", "--state-dir", h.state_dir,
                                   "--metrics-listen", host_addr(h.n) + ":9469", "--fleet", kFleet,
                                   "--host", host_id(h.n)};
        auto etcd = cluster_->cli_args();
        // The leader of the start first: the hosts' watches are on the member the leader case
        // kills, so that it tests their fail-over too.
        for (size_t i = 0; i + 1 < etcd.size(); i++)
            if (etcd[i] == "--etcd") {
                auto urls = cluster_->client_urls();
                std::rotate(urls.begin(), urls.begin() + first_member_, urls.end());
                etcd[i + 1].clear();
                for (const auto& u : urls)
                    etcd[i + 1] += (etcd[i + 1].empty() ? "" : ",") + u;
            }
        a.insert(a.end(), etcd.begin(), etcd.end());
        h.xdpd = spawn(h.in_host(a), h.log, SIGTERM);
    }

    static std::string cleanup_command()
    {
        std::string c = fmt::format("ip netns del {} 2>/dev/null;", kGen);
        for (int n = 1; n <= kHosts; n++)
            c += fmt::format(" ip netns del {} 2>/dev/null;", host_ns(n));
        return c + " rm -rf " + dir_;
    }

    // The processes die with this thread (PR_SET_PDEATHSIG); a SIGTERM to the test takes the
    // pids too, by number.
    static void update_cleanup()
    {
        release_emergency_cleanup(cleanup_slot_);
        std::string kill = "kill -9";
        for (auto& h : hosts_)
            kill += fmt::format(" {} {}", h.holder, h.xdpd);
        cleanup_slot_ = register_emergency_cleanup(kill + " 2>/dev/null; " + cleanup_command());
    }

    static void remove_namespaces()
    {
        run_cmd({"ip", "netns", "del", kGen});
        for (int n = 1; n <= kHosts; n++)
            run_cmd({"ip", "netns", "del", host_ns(n)});
    }

    static void teardown()
    {
        for (auto& h : hosts_) {
            stop_pid(h.xdpd, SIGTERM);
            stop_pid(h.holder, SIGKILL);
        }
        hosts_.clear();
        client_.reset();
        cluster_.reset();
        gen_scope_.reset();
        remove_namespaces();
        if (!dir_.empty())
            std::filesystem::remove_all(dir_);
        dir_.clear();
        release_emergency_cleanup(cleanup_slot_);
        cleanup_slot_ = -1;
    }

    // ---- etcd --------------------------------------------------------------------------

    // The put, tried again for up to 5 s while the cluster elects a leader (a member answers
    // "no leader" or "leader changed" then, as to any client): the operator's retry.
    static int64_t put_policy(const std::string& text)
    {
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        for (;;) {
            try {
                return client_->put(fleet::config_key(kFleet), text);
            } catch (const fleet::EtcdError& e) {
                if (std::chrono::steady_clock::now() > deadline)
                    throw;
                std::this_thread::sleep_for(100ms);
            }
        }
    }

    static std::map<std::string, fleet::FleetStatus> statuses()
    {
        std::map<std::string, fleet::FleetStatus> out;
        for (const auto& kv : client_->get_prefix(fleet::status_prefix(kFleet)).kvs)
            out[fleet::host_of_status_key(kFleet, kv.key)] = fleet::status_from_json_text(kv.value);
        return out;
    }

    static std::string describe(const std::map<std::string, fleet::FleetStatus>& s)
    {
        std::string t;
        for (const auto& [h, st] : s)
            t += fmt::format("\n  {}: {}", h, fleet::to_json_text(st));
        return t;
    }

    // Waits until every host's status satisfies `ok`; a test failure with every status and
    // the logs of the hosts that did not otherwise.
    static void wait_statuses(const std::function<bool(const fleet::FleetStatus&)>& ok, const std::string& what,
                              std::chrono::milliseconds limit = 20s)
    {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        std::map<std::string, fleet::FleetStatus> s;
        for (;;) {
            try {
                s = statuses();
                int good = 0;
                for (int n = 1; n <= kHosts; n++)
                    good += s.count(host_id(n)) && ok(s[host_id(n)]);
                if (good == kHosts)
                    return;
            } catch (const std::exception&) {
                // a member that is going; the next poll asks another
            }
            if (std::chrono::steady_clock::now() > deadline)
                break;
            std::this_thread::sleep_for(25ms);
        }
        std::string logs;
        for (auto& h : hosts_)
            if (!s.count(host_id(h.n)) || !ok(s[host_id(h.n)]))
                logs += fmt::format("\n--- {} ---\n{}", host_id(h.n), read_text(h.log));
        FAIL() << "not every host " << what << ":" << describe(s) << logs;
    }

    static void wait_applied(int64_t rev)
    {
        wait_statuses([rev](const fleet::FleetStatus& s) { return s.applied_revision == rev && s.error.empty(); },
                      fmt::format("applied revision {}", rev));
    }

    // ---- traffic -----------------------------------------------------------------------

    // kFrames UDP datagrams from the generator to each host's ports A and B; how many each
    // host's sockets received. Waits (up to 2 s) for every frame the policy should pass to
    // arrive, then 100 ms more for any it should have dropped.
    static std::map<int, std::pair<int, int>> traffic(uint16_t dropped)
    {
        std::map<int, std::pair<UniqueFd, UniqueFd>> socks;
        auto addr = [](int n, uint16_t port) {
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(port);
            inet_pton(AF_INET, host_addr(n).c_str(), &a.sin_addr);
            return a;
        };
        auto bound = [&](int n, uint16_t port) {
            UniqueFd s{socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
            sockaddr_in a = addr(n, port);
            if (bind(s.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
                throw std::runtime_error("bind " + host_addr(n));
            return s;
        };
        for (int n = 1; n <= kHosts; n++)
            socks[n] = in_netns(host_ns(n), [&] { return std::make_pair(bound(n, kPortA), bound(n, kPortB)); });
        // This thread is in the generator's namespace.
        UniqueFd out{socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
        for (int i = 0; i < kFrames; i++)
            for (int n = 1; n <= kHosts; n++)
                for (uint16_t port : {kPortA, kPortB}) {
                    sockaddr_in a = addr(n, port);
                    sendto(out.get(), "x", 1, 0, reinterpret_cast<const sockaddr*>(&a), sizeof a);
                }
        std::map<int, std::pair<int, int>> got;
        auto drain = [&] {
            char buf[16];
            for (auto& [n, s] : socks) {
                while (recv(s.first.get(), buf, sizeof buf, 0) > 0)
                    got[n].first++;
                while (recv(s.second.get(), buf, sizeof buf, 0) > 0)
                    got[n].second++;
            }
        };
        auto passed_all = [&] {
            for (int n = 1; n <= kHosts; n++)
                if ((dropped == kPortA ? got[n].second : got[n].first) < kFrames)
                    return false;
            return true;
        };
        const auto deadline = std::chrono::steady_clock::now() + 2s;
        do {
            std::this_thread::sleep_for(20ms);
            drain();
        } while (!passed_all() && std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(100ms);
        drain();
        return got;
    }

    // Every host drops UDP to `dropped` and passes the other test port: real frames.
    static void expect_dropping(uint16_t dropped)
    {
        auto got = traffic(dropped);
        for (int n = 1; n <= kHosts; n++) {
            const int a = got[n].first, b = got[n].second;
            EXPECT_EQ(a, dropped == kPortA ? 0 : kFrames) << host_id(n) << " port " << kPortA;
            EXPECT_EQ(b, dropped == kPortB ? 0 : kFrames) << host_id(n) << " port " << kPortB;
        }
    }

    static std::string metrics_of(int n)
    {
        return run_ok({"ip", "netns", "exec", host_ns(n), "curl", "-sS", "--max-time", "5",
                       fmt::format("http://{}:9469/metrics", host_addr(n))});
    }

    static inline std::string dir_;
    static inline int cleanup_slot_ = -1;
    static inline std::unique_ptr<NetnsScope> gen_scope_;
    static inline std::unique_ptr<EtcdCluster> cluster_;
    static inline std::unique_ptr<fleet::EtcdClient> client_;
    static inline std::vector<Host> hosts_;
    static inline int first_member_ = 0;      // the member the hosts ask first
    static inline int64_t good_rev_ = 0;      // the revision every host has in force
    static inline uint16_t good_drop_ = 0;    // the port it drops
};

// ---- no root needed --------------------------------------------------------------------

TEST(FleetConfig, FileKeysOptionsAndChecks)
{
    using namespace xdpctl::service;
    DaemonConfig c = parse_daemon_config("etcd = https://10.0.0.1:2379,https://10.0.0.2:2379\nfleet = web\n"
                                         "host = a1\netcd-cacert = /c\netcd-cert = /k.crt\netcd-key = /k.key\n", "f");
    EXPECT_EQ(c.fleet.etcd, (std::vector<std::string>{"https://10.0.0.1:2379", "https://10.0.0.2:2379"}));
    EXPECT_EQ(c.fleet.fleet, "web");
    EXPECT_EQ(c.fleet.host, "a1");
    EXPECT_EQ(c.fleet.cacert, "/c");
    EXPECT_NO_THROW(check_fleet_config(c.fleet));
    // The command line's settings win, field by field.
    FleetConfig cli;
    cli.host = "b2";
    parse_etcd_urls(cli, "https://10.0.0.3:2379");
    FleetConfig m = merge_fleet_config(c.fleet, cli);
    EXPECT_EQ(m.host, "b2");
    EXPECT_EQ(m.fleet, "web");
    EXPECT_EQ(m.etcd, std::vector<std::string>{"https://10.0.0.3:2379"});
    EXPECT_NO_THROW(check_fleet_config(FleetConfig{}));  // no fleet: nothing followed

    auto usage_error = [](const std::function<void()>& f, const std::string& message) {
        try {
            f();
            ADD_FAILURE() << "accepted; expected: " << message;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), ExitCode::usage);
            EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
        }
    };
    usage_error([] { parse_daemon_config("\netcd = ftp://x:1\n", "f"); }, "f:2: etcd URL 'ftp://x:1'");
    usage_error([] { parse_daemon_config("etcd = https://a:1,\n", "f"); }, "etcd URL ''");
    usage_error([] { parse_daemon_config("flet = x\n", "f"); }, "f:1: unknown key 'flet'");
    auto checked = [](const std::string& text) {
        return [text] { check_fleet_config(parse_daemon_config(text, "f").fleet); };
    };
    usage_error(checked("fleet = web\n"), "--fleet web without --etcd");
    usage_error(checked("etcd = https://a:1\n"), "--etcd without --fleet");
    usage_error(checked("fleet = w\netcd = http://a:1\netcd-cacert = /c\n"), "need https://");
    usage_error(checked("fleet = w\netcd = https://a:1\netcd-cert = /c\n"), "go together");
    usage_error([] { check_fleet_files(parse_daemon_config("etcd-key = /nonexistent/k\n", "f").fleet); },
                "--etcd-key /nonexistent/k: No such file");
}

// ---- root: the fleet ---------------------------------------------------------------------

TEST_F(FleetHosts, TenThousandRulePolicyReachesEveryHost)
{
    good_rev_ = put_policy(policy_text(kPortA, 10000));
    good_drop_ = kPortA;
    wait_applied(good_rev_);
    expect_dropping(kPortA);
    const std::string m = metrics_of(1);
    EXPECT_NE(m.find(fmt::format("xdpctl_fleet_applied_revision{{fleet=\"{}\",host=\"h1\"}} {}", kFleet, good_rev_)),
              std::string::npos) << m;
    EXPECT_NE(m.find("xdpctl_fleet_etcd_connected{fleet=\"lab\",host=\"h1\"} 1"), std::string::npos) << m;
    EXPECT_NE(m.find("xdpctl_fleet_last_error{fleet=\"lab\",host=\"h1\"} 0"), std::string::npos) << m;
}

TEST_F(FleetHosts, BadRevisionIsRefusedAndThePreviousStaysInForce)
{
    ASSERT_GT(good_rev_, 0);
    // One bad line, put straight into etcd (push would have refused it).
    std::string bad = policy_text(kPortB, 3) + "rule --proto udp --dport 70000 --action drop\n";
    const int64_t rev = put_policy(bad);
    wait_statuses([&](const fleet::FleetStatus& s) {
        return s.tried_revision == rev && s.applied_revision == good_rev_ && !s.error.empty();
    }, fmt::format("refused revision {}", rev));
    auto s = statuses();
    EXPECT_NE(s["h1"].error.find(fmt::format("config@{}:5", rev)), std::string::npos) << s["h1"].error;
    EXPECT_NE(s["h1"].error.find("70000"), std::string::npos) << s["h1"].error;
    expect_dropping(good_drop_);
    const std::string m = metrics_of(2);
    EXPECT_NE(m.find("xdpctl_fleet_last_error{fleet=\"lab\",host=\"h2\"} 1"), std::string::npos) << m;
}

TEST_F(FleetHosts, NextPutConvergesAfterTheLeaderIsKilled)
{
    ASSERT_GT(good_rev_, 0);
    const int leader = cluster_->kill_leader();
    EXPECT_EQ(leader, first_member_) << "the leader changed since the start: the hosts' watches were elsewhere";
    cluster_->wait_leader();
    good_rev_ = put_policy(policy_text(kPortB, 10000));
    good_drop_ = kPortB;
    wait_applied(good_rev_);
    expect_dropping(kPortB);
    cluster_->start_member(leader);
}

TEST_F(FleetHosts, HostsFilterWhileEtcdIsDownThenCatchUp)
{
    ASSERT_GT(good_rev_, 0);
    for (int i = 0; i < cluster_->size(); i++)
        cluster_->stop_member(i);
    const auto down = std::chrono::steady_clock::now();
    // The metrics go on, saying etcd is gone; the datapath goes on with the last policy.
    bool disconnected = false;
    for (int i = 0; i < 40 && !disconnected; i++) {
        disconnected = metrics_of(3).find("xdpctl_fleet_etcd_connected{fleet=\"lab\",host=\"h3\"} 0") !=
                       std::string::npos;
        if (!disconnected)
            std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(disconnected) << metrics_of(3);
    expect_dropping(good_drop_);
    std::this_thread::sleep_for(10s - (std::chrono::steady_clock::now() - down));
    expect_dropping(good_drop_);
    std::vector<int> all;
    for (int i = 0; i < cluster_->size(); i++)
        all.push_back(i);
    cluster_->start_members(all);
    cluster_->wait_leader();
    good_rev_ = put_policy(policy_text(kPortA, 2));
    good_drop_ = kPortA;
    wait_applied(good_rev_);
    expect_dropping(kPortA);
}

TEST_F(FleetHosts, RestartedXdpdResumesAtTheLatestRevision)
{
    ASSERT_GT(good_rev_, 0);
    Host& h = hosts_[4];
    stop_pid(h.xdpd, SIGTERM);
    // Two revisions while it is down: it must come back at the second.
    put_policy(policy_text(kPortB, 5));
    good_rev_ = put_policy(policy_text(kPortB, 6));
    good_drop_ = kPortB;
    start_xdpd(h);
    update_cleanup();
    wait_applied(good_rev_);
    expect_dropping(kPortB);
    // The revision is in its state directory: the next start applies nothing again (the
    // policy came back with the state directory's restore).
    EXPECT_NE(read_text(h.state_dir + "/fleet/applied").find(fmt::format("\"applied_revision\":{}", good_rev_)),
              std::string::npos);
    stop_pid(h.xdpd, SIGTERM);
    const size_t from = read_text(h.log).size();
    start_xdpd(h);
    update_cleanup();
    std::string since;
    for (int i = 0; i < 100 && since.find("answers; following") == std::string::npos; i++) {
        std::this_thread::sleep_for(50ms);
        since = read_text(h.log).substr(from);
    }
    std::this_thread::sleep_for(300ms);
    since = read_text(h.log).substr(from);
    EXPECT_NE(since.find(fmt::format("revision {} applied before this start", good_rev_)), std::string::npos) << since;
    EXPECT_EQ(since.find(" applied ("), std::string::npos) << since;
    expect_dropping(kPortB);

    // A state directory that cannot be restored: the revision it names is not trusted to be in
    // force, the key is applied again.
    stop_pid(h.xdpd, SIGTERM);
    std::ofstream(h.state_dir + "/manifest") << "{damaged";
    const size_t from2 = read_text(h.log).size();
    start_xdpd(h);
    update_cleanup();
    for (int i = 0; i < 200 && since.find(fmt::format("revision {} applied (", good_rev_)) == std::string::npos; i++) {
        std::this_thread::sleep_for(50ms);
        since = read_text(h.log).substr(from2);
    }
    EXPECT_NE(since.find("the state directory was not restored"), std::string::npos) << since;
    EXPECT_NE(since.find(fmt::format("revision {} applied (", good_rev_)), std::string::npos) << since;
    expect_dropping(kPortB);
}


// ---- the benchmark (bench/fleet_converge.sh runs it; a timing is no test) ----------------

// Median and spread (min-max) of samples in ms.
std::string figures(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return fmt::format("median {:.0f} ms (min {:.0f}, max {:.0f}, n={})", v[v.size() / 2], v.front(), v.back(),
                       v.size());
}

class FleetBench : public FleetHosts {
protected:
    // From the put's answer to the last host's status naming the revision.
    static double converge_ms(const std::string& text)
    {
        const int64_t rev = put_policy(text);
        const auto t0 = std::chrono::steady_clock::now();
        for (;;) {
            auto s = statuses();
            int done = 0;
            for (const auto& [h, st] : s)
                done += st.applied_revision == rev;
            if (done == kHosts)
                return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
            if (std::chrono::steady_clock::now() - t0 > 20s)
                throw std::runtime_error(fmt::format("revision {} not applied everywhere:{}", rev, describe(s)));
            std::this_thread::sleep_for(2ms);
        }
    }

    static std::pair<uint64_t, uint64_t> rss_and_cpu_ticks(pid_t pid)
    {
        uint64_t rss_kb = 0;
        std::istringstream st(read_text(fmt::format("/proc/{}/status", pid)));
        for (std::string line; std::getline(st, line);)
            if (line.rfind("VmRSS:", 0) == 0)
                rss_kb = std::stoull(line.substr(6));
        std::string stat = read_text(fmt::format("/proc/{}/stat", pid));
        std::istringstream f(stat.substr(stat.rfind(')') + 2));
        std::vector<std::string> fields{std::istream_iterator<std::string>(f), {}};
        // Fields 14 and 15 (utime, stime) of proc(5), counted from field 3 here.
        return {rss_kb, std::stoull(fields.at(11)) + std::stoull(fields.at(12))};
    }
};

TEST_F(FleetBench, DISABLED_Converge)
{
    const int rounds = std::atoi(env_or_empty("FLEET_BENCH_ROUNDS")) ?: 7;
    std::vector<double> big, small, one_of_big;
    for (int i = 0; i < rounds; i++) {
        big.push_back(converge_ms(policy_text(i % 2 ? kPortA : kPortB, 10000)));
        // One rule changed in the 10,000-rule policy (the file is still parsed whole).
        one_of_big.push_back(converge_ms(policy_text(i % 2 ? kPortB : kPortA, 10000)));
    }
    uint16_t last = 0;
    for (int i = 0; i < rounds; i++) {
        last = i % 2 ? kPortA : kPortB;
        small.push_back(converge_ms(policy_text(last, 1)));
    }
    std::printf("converge, 8 hosts, 10,000-rule policy replaced: %s\n", figures(big).c_str());
    std::printf("converge, 8 hosts, 1 rule changed in the 10,000-rule policy: %s\n", figures(one_of_big).c_str());
    std::printf("converge, 8 hosts, 1-rule policy changed: %s\n", figures(small).c_str());
    expect_dropping(last);  // the figures are of a fleet that filters

    // What each host's apply took, as xdpd logs it ("revision N applied (X ms)").
    std::vector<double> apply;
    for (auto& h : hosts_) {
        std::istringstream log(read_text(h.log));
        for (std::string line; std::getline(log, line);)
            if (auto at = line.find(" applied ("); at != std::string::npos)
                apply.push_back(std::atof(line.c_str() + at + 10));
    }
    std::printf("one host's apply (xdpctl apply as xdpd's child), every revision above: %s\n", figures(apply).c_str());

    const int idle_s = std::atoi(env_or_empty("FLEET_BENCH_IDLE_S")) ?: 30;
    std::vector<std::pair<uint64_t, uint64_t>> before;
    for (auto& h : hosts_)
        before.push_back(rss_and_cpu_ticks(h.xdpd));
    std::this_thread::sleep_for(std::chrono::seconds(idle_s));
    std::vector<double> rss, cpu;
    const double tick_ms = 1000.0 / double(sysconf(_SC_CLK_TCK));
    for (size_t i = 0; i < hosts_.size(); i++) {
        auto after = rss_and_cpu_ticks(hosts_[i].xdpd);
        rss.push_back(double(after.first) / 1024);
        cpu.push_back(double(after.second - before[i].second) * tick_ms);
    }
    std::sort(rss.begin(), rss.end());
    std::sort(cpu.begin(), cpu.end());
    std::printf("xdpd at rest (watching), RSS: median %.1f MiB (min %.1f, max %.1f, n=%zu)\n", rss[rss.size() / 2],
                rss.front(), rss.back(), rss.size());
    std::printf("xdpd idle CPU over %d s: median %.0f ms (min %.0f, max %.0f) = %.3f%% of a core\n", idle_s,
                cpu[cpu.size() / 2], cpu.front(), cpu.back(), cpu[cpu.size() / 2] / (idle_s * 10.0));
}

}  // namespace
