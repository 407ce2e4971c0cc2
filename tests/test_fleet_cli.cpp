// Fleets (issue 15), the client side: the etcd client against a real 3-member cluster with
// TLS client certificates (tests/etcd_cluster.h), and `xdpctl fleet push|status`.
#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "etcd_cluster.h"
#include "fleet/etcd_client.h"

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

}  // namespace
}  // namespace xdpctl::test
