// Fleets (issue 15), the client side: the etcd client against a real 3-member cluster with
// TLS client certificates (tests/etcd_cluster.h), and `xdpctl fleet push|status`.
#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include <fmt/core.h>
#include <gtest/gtest.h>

#include "etcd_cluster.h"
#include "fleet/etcd_client.h"
#include "fleet/fleet_keys.h"
#include "fleet/fleet_status.h"
#include "netns_lab.h"

namespace xdpctl::test {
namespace {

using namespace std::chrono_literals;
using fleet::EtcdClient;
using fleet::EtcdError;
using fleet::EtcdWatchEvent;

// One cluster for the whole program: starting one takes ~2 s. Tests that stop members start
// them again before they end.
EtcdCluster& cluster()
{
    static EtcdCluster c;
    return c;
}

// Starts again every member a test stopped, also when it failed half-way.
struct RestartMembers {
    ~RestartMembers()
    {
        for (int i = 0; i < cluster().size(); i++)
            cluster().start_member(i);
        cluster().wait_leader();
    }
};

// Watches `key` from `from` on a thread until `n` events came (or 10 s passed).
std::future<std::vector<EtcdWatchEvent>> watch_n(fleet::EtcdConfig cfg, const std::string& key, int64_t from, size_t n)
{
    return std::async(std::launch::async, [=] {
        EtcdClient client(cfg);
        std::vector<EtcdWatchEvent> got;
        std::atomic<bool> stop{false};
        auto give_up = std::async(std::launch::async, [&] {
            for (int i = 0; i < 100 && !stop; i++)
                std::this_thread::sleep_for(100ms);
            stop = true;
        });
        client.watch(key, from, [&](const EtcdWatchEvent& e) {
            got.push_back(e);
            return got.size() < n;
        }, stop);
        stop = true;
        return got;
    });
}

TEST(EtcdClient, PutGetPrefixAndDelete)
{
    EtcdClient c(cluster().client_config());
    const std::string value = std::string("line 1\nline 2 \"quoted\" \\ \x01\xff", 27);
    const int64_t r1 = c.put("/t/pgp/a", value);
    const int64_t r2 = c.put("/t/pgp/b", "2");
    c.put("/t/pgp0", "outside the prefix");
    EXPECT_GT(r1, 0);
    EXPECT_EQ(r2, r1 + 1);

    auto a = c.get("/t/pgp/a");
    ASSERT_EQ(a.kvs.size(), 1u);
    EXPECT_EQ(a.kvs[0].key, "/t/pgp/a");
    EXPECT_EQ(a.kvs[0].value, value);
    EXPECT_EQ(a.kvs[0].mod_revision, r1);
    EXPECT_GE(a.header_revision, r2);
    EXPECT_TRUE(c.get("/t/pgp/none").kvs.empty());

    auto p = c.get_prefix("/t/pgp/");
    ASSERT_EQ(p.kvs.size(), 2u);
    EXPECT_EQ(p.kvs[0].key, "/t/pgp/a");
    EXPECT_EQ(p.kvs[1].key, "/t/pgp/b");
    EXPECT_EQ(p.kvs[1].value, "2");

    EXPECT_GT(c.del("/t/pgp/b"), r2);
    EXPECT_EQ(c.get_prefix("/t/pgp/").kvs.size(), 1u);
    // What etcd itself holds, through etcdctl.
    EXPECT_EQ(cluster().etcdctl({"get", "--print-value-only", "/t/pgp0"}), "outside the prefix\n");
}

TEST(EtcdClient, WatchStreamsFromARevision)
{
    EtcdClient c(cluster().client_config());
    const int64_t first = c.put("/t/watch", "v1");
    auto got = watch_n(cluster().client_config(), "/t/watch", first, 4);
    std::this_thread::sleep_for(200ms);
    c.put("/t/watch", "v2");
    c.put("/t/watch-other", "not watched");
    c.del("/t/watch");
    c.put("/t/watch", "v3");
    auto events = got.get();
    ASSERT_EQ(events.size(), 4u);
    EXPECT_EQ(events[0].kv.value, "v1");  // from `first` on: history too
    EXPECT_EQ(events[0].kv.mod_revision, first);
    EXPECT_EQ(events[1].kv.value, "v2");
    EXPECT_EQ(events[2].type, EtcdWatchEvent::Type::Delete);
    EXPECT_EQ(events[3].type, EtcdWatchEvent::Type::Put);
    EXPECT_EQ(events[3].kv.value, "v3");
}

TEST(EtcdClient, WatchReturnsSoonAfterStop)
{
    EtcdClient c(cluster().client_config());
    std::atomic<bool> stop{false};
    auto t0 = std::chrono::steady_clock::now();
    auto w = std::async(std::launch::async, [&] {
        c.watch("/t/quiet", 0, [](const EtcdWatchEvent&) { return true; }, stop);
    });
    std::this_thread::sleep_for(300ms);
    stop = true;
    ASSERT_EQ(w.wait_for(2s), std::future_status::ready);
    w.get();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

TEST(EtcdClient, WatchFromACompactedRevisionSaysCompacted)
{
    EtcdClient c(cluster().client_config());
    const int64_t old = c.put("/t/compact", "1");
    c.put("/t/compact", "2");
    const int64_t last = c.put("/t/compact", "3");
    c.compact(last);
    std::atomic<bool> stop{false};
    try {
        c.watch("/t/compact", old, [](const EtcdWatchEvent&) { return true; }, stop);
        FAIL() << "watch from a compacted revision returned";
    } catch (const EtcdError& e) {
        EXPECT_EQ(e.kind(), EtcdError::Kind::Compacted) << e.what();
        EXPECT_EQ(e.compact_revision(), last) << e.what();
    }
    // What is left is read again from the compaction on.
    auto events = watch_n(cluster().client_config(), "/t/compact", last, 1).get();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kv.value, "3");
}

TEST(EtcdClient, FailsOverToTheNextMember)
{
    EtcdCluster& cl = cluster();
    RestartMembers restart;
    cl.stop_member(0);  // the first endpoint
    EtcdClient c(cl.client_config());
    const int64_t r = c.put("/t/failover", "x");
    EXPECT_NE(c.endpoint(), cl.client_url(0));
    EXPECT_EQ(c.get("/t/failover").kvs.at(0).mod_revision, r);
    cl.start_member(0);

    // The leader killed: a member that lost it is left for the next, the write goes through.
    const int leader = cl.kill_leader();
    fleet::EtcdConfig cfg = cl.client_config(3000ms);
    std::rotate(cfg.endpoints.begin(), cfg.endpoints.begin() + leader, cfg.endpoints.end());  // it first
    EtcdClient c2(cfg);
    const int64_t r2 = c2.put("/t/failover", "after the leader went");
    EXPECT_GT(r2, r);
    EXPECT_NE(c2.endpoint(), cl.client_url(leader));
}

TEST(EtcdClient, WatchFollowsToAnotherMember)
{
    EtcdCluster& cl = cluster();
    RestartMembers restart;
    EtcdClient c(cl.client_config());
    const int64_t from = c.put("/t/watch-failover", "before") + 1;
    // The watcher's first member is member 0; it goes while the watch runs.
    auto got = watch_n(cl.client_config(), "/t/watch-failover", from, 2);
    std::this_thread::sleep_for(300ms);
    c.put("/t/watch-failover", "one");
    std::this_thread::sleep_for(200ms);
    cl.kill_member(0);
    EtcdClient other([&] {
        auto cfg = cl.client_config(3000ms);
        cfg.endpoints.erase(cfg.endpoints.begin());
        return cfg;
    }());
    other.put("/t/watch-failover", "two");
    auto events = got.get();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].kv.value, "one");
    EXPECT_EQ(events[1].kv.value, "two");
}

TEST(EtcdClient, MemberWithoutQuorumIsLeftForTheNext)
{
    EtcdCluster& cl = cluster();
    RestartMembers restart;
    fleet::EtcdConfig one = cl.client_config(1500ms);
    one.endpoints = {cl.client_url(0)};
    EtcdClient c(one);
    const int64_t from = c.put("/t/quorum", "x") + 1;
    cl.stop_member(1);
    cl.stop_member(2);
    // A watch there would wait for ever for events no leader commits: etcd refuses or cancels
    // it (the client asks for a leader), and the member counts as one that does not answer.
    std::atomic<bool> stop{false};
    const auto t0 = std::chrono::steady_clock::now();
    try {
        c.watch("/t/quorum", from, [](const EtcdWatchEvent&) { return true; }, stop);
        FAIL() << "a watch on a member without a leader returned";
    } catch (const EtcdError& e) {
        EXPECT_EQ(e.kind(), EtcdError::Kind::Unreachable) << e.what();
        EXPECT_NE(std::string(e.what()).find("no leader"), std::string::npos) << e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    try {
        c.put("/t/quorum", "y");
        FAIL() << "a put without a quorum succeeded";
    } catch (const EtcdError& e) {
        EXPECT_EQ(e.kind(), EtcdError::Kind::Unreachable) << e.what();
    }
}

TEST(EtcdClient, ClientWithoutCertificateIsRefused)
{
    fleet::EtcdConfig cfg = cluster().client_config();
    cfg.tls.cert.clear();
    cfg.tls.key.clear();
    EtcdClient c(cfg);
    try {
        c.put("/t/nocert", "x");
        FAIL() << "etcd took a write from a client without a certificate";
    } catch (const EtcdError& e) {
        EXPECT_EQ(e.kind(), EtcdError::Kind::Tls) << e.what();
        EXPECT_NE(std::string(e.what()).find("certificate"), std::string::npos) << e.what();
    }
    EXPECT_EQ(cluster().etcdctl({"get", "--print-value-only", "/t/nocert"}), "");
}

TEST(EtcdClient, MemberCertificateIsVerified)
{
    fleet::EtcdConfig cfg = cluster().client_config();
    cfg.tls.cacert.clear();  // the system's CAs: they did not sign the test's members
    EtcdClient c(cfg);
    try {
        c.get("/t/x");
        FAIL() << "a member with a certificate of an unknown CA was trusted";
    } catch (const EtcdError& e) {
        EXPECT_EQ(e.kind(), EtcdError::Kind::Tls) << e.what();
        EXPECT_NE(std::string(e.what()).find("not trusted"), std::string::npos) << e.what();
    }
}

// ---- xdpctl fleet push|status ------------------------------------------------------------------

const char* kGoodPolicy =
    "default pass\n"
    "set web 198.18.0.0/16 !198.18.5.0/24\n"
    "rule --id 5 --src @web --proto udp --dport 9 --action drop\n"
    "rule --id 6 --priority 10 --proto icmp --action count\n"
    "# no --mac: each host looks the backend up in its own neighbour table\n"
    "lb vip 198.19.0.1:80/tcp\n"
    "lb backend 198.19.0.1:80/tcp 198.19.10.1\n";

CmdResult fleet_cmd(const std::vector<std::string>& args, const std::vector<std::string>& etcd = cluster().cli_args())
{
    std::vector<std::string> argv = {xdpctl_bin(), "fleet"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), etcd.begin(), etcd.end());
    return run_cmd(argv);
}

// The fleet's config key: its mod_revision and text (0, "" when absent).
std::pair<int64_t, std::string> config_of(const std::string& fleet_name)
{
    EtcdClient c(cluster().client_config());
    auto r = c.get(fleet::config_key(fleet_name));
    return r.kvs.empty() ? std::pair<int64_t, std::string>{0, ""} : std::pair{r.kvs[0].mod_revision, r.kvs[0].value};
}

// A host's report, as xdpd writes it.
void report(const std::string& fleet_name, const std::string& host, int64_t applied, int64_t tried,
            const std::string& error = "", double age_s = 1)
{
    fleet::FleetStatus st{host, applied, tried, error,
                          std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count() - age_s,
                          "0.1.0"};
    EtcdClient(cluster().client_config()).put(fleet::status_key(fleet_name, host), fleet::to_json_text(st));
}

TEST(FleetPush, ValidFilePrintsTheRevisionTheKeyHolds)
{
    const std::string file = write_temp_file(kGoodPolicy, "fleet-good");
    CmdResult r = fleet_cmd({"push", "--fleet", "push-ok", file});
    ASSERT_EQ(r.exit_code, 0) << r;
    const auto [rev, text] = config_of("push-ok");
    EXPECT_EQ(r.out, fmt::format("{}\n", rev)) << r;
    EXPECT_EQ(text, kGoodPolicy);  // the file as it is, comments too: each host parses it
    EXPECT_EQ(r.err, "") << r;     // https: no warning

    CmdResult j = fleet_cmd({"push", "--json", "--fleet", "push-ok", file});
    ASSERT_EQ(j.exit_code, 0) << j;
    auto doc = nlohmann::json::parse(j.out);
    EXPECT_EQ(doc.at("revision").get<int64_t>(), config_of("push-ok").first);
    EXPECT_GT(doc.at("revision").get<int64_t>(), rev);
}

TEST(FleetPush, BadLineIsRefusedAndNothingIsPut)
{
    const std::string good = write_temp_file(kGoodPolicy, "fleet-good");
    ASSERT_EQ(fleet_cmd({"push", "--fleet", "push-bad", good}).exit_code, 0);
    const auto before = config_of("push-bad");
    struct Case {
        std::string text, expect;
    };
    for (const Case& c : std::vector<Case>{
             {"default pass\nrule --proto udp --dport 9 --action drop\nrule --dport 80 --bogus --action drop\n",
              ":3: "},
             {"default pass\nlb vip 198.19.0.1:80/tcp --mode sideways\n", ":2: "},
             {"default pass\nlb backend 198.19.0.1:80/tcp 198.19.10.1\n", ":2: "},
             // Parses, but apply refuses it: no such set; addresses of two families.
             {"default pass\nrule --src @nosuch --action drop\n", "nosuch"},
             {"default pass\nrule --src 198.18.0.0/16 --dst 2001:2::/48 --action drop\n", "2001:2::/48"},
         }) {
        const std::string file = write_temp_file(c.text, "fleet-bad");
        CmdResult r = fleet_cmd({"push", "--fleet", "push-bad", file});
        EXPECT_EQ(r.exit_code, 2) << r;
        EXPECT_NE(r.err.find(file), std::string::npos) << r;
        EXPECT_NE(r.err.find(c.expect), std::string::npos) << r;
        EXPECT_EQ(r.out, "") << r;
    }
    CmdResult r = fleet_cmd({"push", "--fleet", "push-bad",
                             write_temp_file("default pass\nrule --dport 80 --bogus --action drop\n", "fleet-bad")});
    EXPECT_NE(r.err.find("--bogus"), std::string::npos) << r;  // the token
    EXPECT_EQ(config_of("push-bad"), before);                  // nothing put
}

TEST(FleetPush, FileOverEtcdsRequestLimitSaysSo)
{
    std::string text = "default pass\n";
    for (int i = 0; i < 100000; i++)
        text += fmt::format("set big 10.{}.{}.{}/32\n", i >> 16, (i >> 8) & 255, i & 255);
    text += "rule --src @big --action drop\n";
    ASSERT_GT(text.size(), 2u << 20);
    CmdResult r = fleet_cmd({"push", "--fleet", "too-big", write_temp_file(text, "fleet-big")});
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_NE(r.err.find("more than etcd takes in one request: its --max-request-bytes"), std::string::npos) << r;
    EXPECT_EQ(config_of("too-big").first, 0);
}

TEST(FleetPush, UsageErrors)
{
    const std::string file = write_temp_file(kGoodPolicy, "fleet-good");
    const std::string ca = cluster().ca_file(), cert = cluster().cert_file();
    for (const auto& etcd : std::vector<std::vector<std::string>>{
             {"--etcd", "ftp://127.0.0.1:2379"},
             {"--etcd", "https://127.0.0.1:99999"},
             {"--etcd", cluster().endpoints(), "--etcd-cacert", ca, "--etcd-cert", cert},  // no key
             {"--etcd", "http://127.0.0.1:1", "--etcd-cacert", ca},                        // TLS files, no https
         }) {
        CmdResult r = fleet_cmd({"push", "--fleet", "f", file}, etcd);
        EXPECT_EQ(r.exit_code, 2) << r;
    }
    CmdResult r = fleet_cmd({"push", "--fleet", "a/b", file});
    EXPECT_EQ(r.exit_code, 2) << r;
    EXPECT_NE(r.err.find("fleet name 'a/b'"), std::string::npos) << r;
    r = fleet_cmd({"push", "--fleet", "f", "--wait", "-1", file});
    EXPECT_EQ(r.exit_code, 2) << r;
}

TEST(FleetStatus, ListsEveryHostInSyncBehindOrRefused)
{
    const std::string name = "status-mix";
    ASSERT_EQ(fleet_cmd({"push", "--fleet", name, write_temp_file(kGoodPolicy, "fleet-good")}).exit_code, 0);
    const int64_t rev = config_of(name).first;
    report(name, "host-sync", rev, rev, "", 3);
    report(name, "host-behind", rev - 1, rev - 1, "", 120);
    report(name, "host-refused", rev - 1, rev, "config@" + std::to_string(rev) + ":3: unknown option '--bogus'", 7200);

    CmdResult r = fleet_cmd({"status", "--fleet", name, "--json"});
    ASSERT_EQ(r.exit_code, 0) << r;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j.at("config_revision").get<int64_t>(), rev);
    std::map<std::string, nlohmann::json> hosts;
    for (const auto& h : j.at("hosts"))
        hosts[h.at("host").get<std::string>()] = h;
    ASSERT_EQ(hosts.size(), 3u) << r.out;
    EXPECT_TRUE(hosts["host-sync"].at("in_sync").get<bool>());
    EXPECT_EQ(hosts["host-sync"].at("applied_revision").get<int64_t>(), rev);
    EXPECT_NEAR(hosts["host-sync"].at("age_s").get<double>(), 3, 2);
    EXPECT_FALSE(hosts["host-behind"].at("in_sync").get<bool>());
    EXPECT_EQ(hosts["host-behind"].at("applied_revision").get<int64_t>(), rev - 1);
    EXPECT_FALSE(hosts["host-refused"].at("in_sync").get<bool>());
    EXPECT_EQ(hosts["host-refused"].at("tried_revision").get<int64_t>(), rev);
    EXPECT_NE(hosts["host-refused"].at("error").get<std::string>().find("--bogus"), std::string::npos);

    r = fleet_cmd({"status", "--fleet", name});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_NE(r.out.find(fmt::format("fleet {}: config revision {}, 3 host(s), 1 in sync", name, rev)), std::string::npos)
        << r.out;
    auto line_of = [&](const std::string& host) {
        size_t at = r.out.find("\n" + host + " ");
        return at == std::string::npos ? std::string() : r.out.substr(at + 1, r.out.find('\n', at + 1) - at - 1);
    };
    EXPECT_NE(line_of("host-sync").find(" yes "), std::string::npos) << r.out;
    EXPECT_NE(line_of("host-sync").find(" 3s "), std::string::npos) << r.out;
    EXPECT_NE(line_of("host-behind").find(" behind "), std::string::npos) << r.out;
    EXPECT_NE(line_of("host-behind").find(" 2m "), std::string::npos) << r.out;
    EXPECT_NE(line_of("host-refused").find(fmt::format("revision {} refused: config@{}:3: unknown option '--bogus'", rev, rev)),
              std::string::npos)
        << r.out;
    EXPECT_NE(line_of("host-refused").find(" 2h "), std::string::npos) << r.out;
}

// `push --wait` against hosts the test plays: each answers the new revision once it is there.
struct WaitRun {
    std::future<CmdResult> cmd;
    int64_t rev = 0;
};
WaitRun push_and_wait(const std::string& name, const std::string& wait_s)
{
    const int64_t old = config_of(name).first;
    const std::string file = write_temp_file(kGoodPolicy, "fleet-good");
    WaitRun w;
    w.cmd = std::async(std::launch::async, [=] { return fleet_cmd({"push", "--fleet", name, "--wait", wait_s, file}); });
    for (int i = 0; i < 100 && config_of(name).first == old; i++)
        std::this_thread::sleep_for(50ms);
    w.rev = config_of(name).first;
    EXPECT_GT(w.rev, old);
    return w;
}

TEST(FleetPush, WaitSucceedsOnceEveryHostApplied)
{
    const std::string name = "wait-ok";
    report(name, "a", 0, 0);
    report(name, "b", 0, 0);
    WaitRun w = push_and_wait(name, "20");
    std::this_thread::sleep_for(200ms);
    report(name, "a", w.rev, w.rev);
    EXPECT_EQ(w.cmd.wait_for(300ms), std::future_status::timeout) << "returned before host b applied it";
    report(name, "b", w.rev, w.rev);
    ASSERT_EQ(w.cmd.wait_for(5s), std::future_status::ready);
    CmdResult r = w.cmd.get();
    EXPECT_EQ(r.exit_code, 0) << r;
    EXPECT_NE(r.out.find(fmt::format("{}\na: applied (revision {})\nb: applied (revision {})\n", w.rev, w.rev, w.rev)),
              std::string::npos)
        << r;
}

TEST(FleetPush, WaitFailsWhenAHostRefuses)
{
    const std::string name = "wait-refused";
    report(name, "a", 0, 0);
    report(name, "b", 0, 0);
    WaitRun w = push_and_wait(name, "20");
    report(name, "a", w.rev, w.rev);
    report(name, "b", 0, w.rev, "config@" + std::to_string(w.rev) + ":2: no such set 'x'");
    ASSERT_EQ(w.cmd.wait_for(5s), std::future_status::ready);
    CmdResult r = w.cmd.get();
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_NE(r.out.find("a: applied"), std::string::npos) << r;
    EXPECT_NE(r.out.find(fmt::format("b: refused: config@{}:2: no such set 'x' (revision 0 stays in force)", w.rev)),
              std::string::npos)
        << r;
    EXPECT_NE(r.err.find("1 of 2 host(s) refused it, 0 did not apply it"), std::string::npos) << r;
}

TEST(FleetPush, WaitTimesOutOnAQuietHost)
{
    const std::string name = "wait-timeout";
    report(name, "a", 0, 0);
    report(name, "quiet", 0, 0);
    const auto t0 = std::chrono::steady_clock::now();
    WaitRun w = push_and_wait(name, "1");
    report(name, "a", w.rev, w.rev);
    CmdResult r = w.cmd.get();
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_NE(r.out.find("quiet: not applied within 1 s (revision 0 in force)"), std::string::npos) << r;
    EXPECT_NE(r.err.find("0 of 2 host(s) refused it, 1 did not apply it within 1 s"), std::string::npos) << r;
    EXPECT_GE(took, 1s);
    EXPECT_LT(took, 4s);
}

TEST(FleetCli, ClientWithoutCertificateIsRefusedByEtcd)
{
    CmdResult r = fleet_cmd({"status", "--fleet", "f"}, {"--etcd", cluster().endpoints(), "--etcd-cacert", cluster().ca_file()});
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_NE(r.err.find("client certificate"), std::string::npos) << r;
    const std::string before = cluster().etcdctl({"get", "--print-value-only", fleet::config_key("nocert")});
    r = fleet_cmd({"push", "--fleet", "nocert", write_temp_file(kGoodPolicy, "fleet-good")},
                  {"--etcd", cluster().endpoints(), "--etcd-cacert", cluster().ca_file()});
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_EQ(cluster().etcdctl({"get", "--print-value-only", fleet::config_key("nocert")}), before);
}

TEST(FleetCli, PlainHttpWorksWithAWarning)
{
    EtcdCluster plain({.members = 1, .tls = false});
    CmdResult r = fleet_cmd({"push", "--fleet", "plain", write_temp_file(kGoodPolicy, "fleet-good")}, plain.cli_args());
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_NE(r.err.find("warning: etcd over plain HTTP (" + plain.client_url(0) +
                         "): anyone on the network can read the fleet's policy and change the firewall"),
              std::string::npos)
        << r;
    EXPECT_EQ(plain.etcdctl({"get", "--print-value-only", fleet::config_key("plain")}), std::string(kGoodPolicy) + "\n");
}

}  // namespace
}  // namespace xdpctl::test
