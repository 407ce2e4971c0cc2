// Upgrades across a pinned-layout change (issue 13 item 5): `load --force` of this build over
// pins of another layout carries the policy, sets, load balancer and counters over
// (lib/upgrade/map_upgrade.h).
//
// The old layouts are made here, as the release that pinned them did (the maps it pinned,
// with their types and sizes, filled with known state), so CI needs no old build:
//   - layout 1, xdpctl 0.1.0: a per-CPU connection table, no xdpctl_psmall/xdpctl_pdecide (nor
//     the decision events' xdpctl_rlog/xdpctl_events), no
//     layout record; upgraded with traffic flowing, which must be decided all along;
//   - counters of another layout (shorter rule-counter records, fewer stats entries), as a
//     future change would be: carried exactly;
//   - a policy map of another layout, which no step migrates: refused, nothing changed.
// With XDPCTL_OLD_BIN (an xdpctl built from 37fd14d, the 0.1.0 baseline: docs/architecture.md
// "Upgrades across a layout change" says how), the real old release is upgraded from too.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>

#include "abi/xdpctl_abi.h"
#include "stats/counters.h"
#include "attach/iface_pins.h"
#include "attach/iface_ref.h"
#include "netns_lab.h"
#include "attach/skeleton.h"
#include "util/unique_fd.h"
#include "upgrade/layout_versions.h"
#include "xdpctl_xdp.skel.h"

namespace xdpctl::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string shared_pin(const std::string& name)
{
    return shared_maps_dir() + "/" + name;
}

// Replaces the map pinned at `pin` by a new one of this layout, filled by fill(new_fd); the
// old map is returned open (the attached programs still use it).
UniqueFd repin(const std::string& pin, bpf_map_type type, uint32_t key, uint32_t value, uint32_t entries,
               uint32_t flags, const std::function<void(int)>& fill)
{
    UniqueFd old = open_pinned(pin);
    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
    UniqueFd fd{bpf_map_create(type, "xdpctl_old", key, value, entries, &opts)};
    if (!fd)
        throw std::runtime_error("cannot create the old layout's map for " + pin);
    fill(fd.get());
    unpin(pin);
    pin_fd(fd.get(), pin);
    return old;
}

// Each CPU's value of every key of a per-CPU array, cut or padded to `value` bytes.
void copy_percpu(int from, int to, uint32_t from_value, uint32_t value, uint32_t entries)
{
    const size_t ncpu = size_t(possible_cpus());
    const size_t fs = (from_value + 7) / 8 * 8, ts = (value + 7) / 8 * 8;
    std::vector<uint8_t> a(ncpu * fs), b(ncpu * ts);
    for (uint32_t k = 0; k < entries; k++) {
        ASSERT_EQ(bpf_map_lookup_elem(from, &k, a.data()), 0);
        std::fill(b.begin(), b.end(), 0);
        for (size_t c = 0; c < ncpu; c++)
            std::memcpy(b.data() + c * ts, a.data() + c * fs, std::min(from_value, value));
        ASSERT_EQ(bpf_map_update_elem(to, &k, b.data(), BPF_ANY), 0);
    }
}

uint32_t map_id(int fd)
{
    bpf_map_info info{};
    __u32 len = sizeof(info);
    return bpf_map_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

// Every pin name under maps/ must be a map this build's XDP object declares (or the layout
// record): nothing stale left by the old release.
std::vector<std::string> stale_shared_pins()
{
    SkelPtr<xdpctl_xdp> s{xdpctl_xdp::open()};
    // The layout record, and the one map only userspace writes (xdpd's last-commit time).
    std::set<std::string> known{"layout", "xdpctl_pcommit"};
    bpf_map* map;
    bpf_object__for_each_map(map, s->obj) known.insert(bpf_map__name(map));
    std::vector<std::string> stale;
    for (const auto& e : std::filesystem::directory_iterator(shared_maps_dir()))
        if (!known.count(e.path().filename().string()))
            stale.push_back(e.path().string());
    return stale;
}

// UDP from the peer to the DUT, ports 9 (dropped by rule 1) and 12 (counted by rule 4), a few
// thousand a second until stopped; a socket on the DUT's port 9 counts what a gap in the
// filtering would let through.
class Traffic {
public:
    explicit Traffic(const NetnsLab& lab) : lab_(lab)
    {
        to_.sin_family = AF_INET;
        inet_pton(AF_INET, lab_.dut().ipv4.c_str(), &to_.sin_addr);
        sockaddr_in at = to_;
        at.sin_port = htons(9);
        leak_ = in_netns(lab_.dut().ns, [&] {
            UniqueFd s{socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
            if (bind(s.get(), reinterpret_cast<const sockaddr*>(&at), sizeof(at)) != 0)
                throw std::runtime_error("bind failed");
            return s;
        });
        thread_ = std::thread([this] { run(); });
    }
    ~Traffic() { stop(); }
    void stop()
    {
        stop_ = true;
        if (thread_.joinable())
            thread_.join();
    }
    uint64_t sent(int port) const { return port == 9 ? sent9_ : sent12_; }
    int leaked() const
    {
        int n = 0;
        char buf[16];
        while (recv(leak_.get(), buf, sizeof(buf), 0) > 0)
            n++;
        return n;
    }

private:
    void run()
    {
        in_netns(lab_.peer().ns, [&] {
            UniqueFd s{socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
            sockaddr_in to = to_;
            const auto end = Clock::now() + std::chrono::minutes(2);  // bounded, whatever happens
            while (!stop_ && Clock::now() < end) {
                for (int port : {9, 12}) {
                    to.sin_port = htons(uint16_t(port));
                    if (sendto(s.get(), "u", 1, 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) == 1)
                        (port == 9 ? sent9_ : sent12_)++;
                }
                std::this_thread::sleep_for(milliseconds(1));
            }
            return 0;
        });
    }

    const NetnsLab& lab_;
    sockaddr_in to_{};
    UniqueFd leak_;
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> sent9_{0}, sent12_{0};
    std::thread thread_;
};

class Upgrade : public NoPolicyTest {
protected:
    void TearDown() override
    {
        if (::geteuid() == 0)
            xdpctl({"lb", "vip", "del", "198.19.0.1:80/tcp"});
        NoPolicyTest::TearDown();
    }

    // Rules 1 (drop udp 9) and 4 (count udp 12), a set and a rule on it, one VIP with one
    // backend: a policy decided by the tables, as every 0.1.0 policy was.
    static void make_state(const std::function<void(const std::vector<std::string>&)>& run)
    {
        run({"rule", "add", "--id", "1", "--proto", "udp", "--dport", "9", "--action", "drop"});
        run({"rule", "add", "--id", "4", "--proto", "udp", "--dport", "12", "--action", "count"});
        run({"set", "create", "big"});
        run({"set", "add", "big", "198.19.1.0/24"});
        run({"rule", "add", "--id", "3", "--src", "@big", "--proto", "tcp", "--dport", "80", "--action", "drop"});
        run({"lb", "vip", "add", "198.19.0.1:80/tcp"});
        run({"lb", "backend", "add", "198.19.0.1:80/tcp", "198.19.10.1", "--mac", "02:00:00:00:0a:01"});
    }

    // export and `lb list` without its counters.
    static std::string state() { return xdpctl_export() + xdpctl_lb_config().dump(); }

    static nlohmann::json rule(uint32_t id)
    {
        const nlohmann::json all = xdpctl_json({"rule", "list", "--json"});
        for (const auto& r : all["rules"])
            if (r["id"] == id)
                return r;
        return {};
    }

    // `load --force` while traffic flows (from 0.3 s before it to 0.3 s after), what the
    // traffic sent and what got through the dropped port; rules 1 and 4 must have counted
    // every packet sent (on top of `dropped_before` and `counted_before`).
    static void upgrade_under_traffic(const NetnsLab& lab, uint64_t dropped_before, uint64_t counted_before,
                                      const std::string& what)
    {
        std::optional<Traffic> traffic(std::in_place, lab);
        std::this_thread::sleep_for(milliseconds(300));
        const auto t0 = Clock::now();
        CmdResult up = lab.load_result({"--force"});
        const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
        std::this_thread::sleep_for(milliseconds(300));
        traffic->stop();
        ASSERT_EQ(up.exit_code, 0) << up;
        EXPECT_NE(up.out.find("layout version 1 (xdpctl 0.1.0"), std::string::npos) << up.out;
        last_output = up.out;
        std::this_thread::sleep_for(milliseconds(100));
        const uint64_t dropped = rule(1)["packets"].get<uint64_t>(), counted = rule(4)["packets"].get<uint64_t>();
        const int leaked = traffic->leaked();
        const uint64_t sent9 = traffic->sent(9), sent12 = traffic->sent(12);
        traffic.reset();  // its socket on port 9 closed
        fmt::print("upgrade from {} took {} ms under traffic: {} + {} packets sent, {} + {} counted by rules 1 "
                   "and 4 ({} + {} before), {} passed on the dropped port\n",
                   what, took, sent9, sent12, dropped, counted, dropped_before, counted_before, leaked);
        // Every packet was decided by the old program or the new one: counted by its rule,
        // none let through on port 9.
        EXPECT_GT(sent9, 100u);
        EXPECT_EQ(dropped, dropped_before + sent9);
        EXPECT_EQ(counted, counted_before + sent12);
        EXPECT_EQ(leaked, 0);
    }
    static inline std::string last_output;  // the upgrading load's

    // Layout 1 as 0.1.0 pinned it, from this build's pins: the connection table per CPU
    // (holding `flows` connections), no xdpctl_psmall, xdpctl_pdecide, xdpctl_rlog or
    // xdpctl_events, no layout record.
    static void make_layout_1(int flows)
    {
        const size_t ncpu = size_t(possible_cpus());
        repin(shared_pin("xdpctl_lb_ct"), BPF_MAP_TYPE_LRU_PERCPU_HASH, sizeof(xdpctl_lb_flow_key),
              sizeof(xdpctl_lb_flow), XDPCTL_LB_CT_DEFAULT, 0, [&](int fd) {
                  for (int i = 0; i < flows; i++) {
                      xdpctl_lb_flow_key k{};
                      k.saddr[0] = htonl(0xc6120100u + uint32_t(i));
                      k.daddr[0] = htonl(0xc6130001u);
                      k.sport = htons(uint16_t(40000 + i));
                      k.dport = htons(80);
                      k.proto = IPPROTO_TCP;
                      k.family = AF_INET;
                      std::vector<xdpctl_lb_flow> v(ncpu);  // seen on the last CPU only
                      v.back() = {0, 1, XDPCTL_LB_FLOW_F_VALID, 1};
                      ASSERT_EQ(bpf_map_update_elem(fd, &k, v.data(), BPF_ANY), 0);
                  }
              });
        unpin(shared_pin("xdpctl_psmall"));
        unpin(shared_pin("xdpctl_pdecide"));
        unpin(shared_pin("xdpctl_rlog"));    // decision events: layout 1 had none
        unpin(shared_pin("xdpctl_events"));
        remove_pin_tree(shared_pin("layout"));
    }
};

TEST_F(Upgrade, FromLayout1UnderTrafficKeepsEverythingAndDecidesEveryPacket)
{
    NetnsLab lab;
    lab.load();
    make_state([](const auto& a) { xdpctl_ok(a); });
    ASSERT_EQ(upgrade::recorded_layout_version(), upgrade::kLayoutVersion);
    const std::string before = state();
    make_layout_1(3);

    upgrade_under_traffic(lab, 0, 0, "layout 1");
    EXPECT_NE(last_output.find("3 connection(s) carried over"), std::string::npos) << last_output;
    EXPECT_EQ(state(), before);
    EXPECT_EQ(upgrade::recorded_layout_version(), upgrade::kLayoutVersion);
    EXPECT_TRUE(path_exists(shared_pin("xdpctl_psmall")) && path_exists(shared_pin("xdpctl_pdecide")));
    EXPECT_EQ(stale_shared_pins(), std::vector<std::string>{});
    const uint64_t dropped = rule(1)["packets"].get<uint64_t>();
    EXPECT_EQ(udp_through(lab, 9, 3), 0);
    EXPECT_EQ(rule(1)["packets"].get<uint64_t>(), dropped + 3);
}

TEST_F(Upgrade, CountersOfAnotherLayoutCarriedExactly)
{
    NetnsLab lab;
    lab.load();
    make_state([](const auto& a) { xdpctl_ok(a); });
    EXPECT_EQ(udp_through(lab, 9, 5), 0);
    udp_through(lab, 12, 7);
    const nlohmann::json r1 = rule(1), r4 = rule(4);
    ASSERT_EQ(r1["packets"], 5);
    ASSERT_EQ(r4["packets"], 7);
    const StatsSnapshot stats = lab.stats();

    // Rule counters without their last word (24-byte records), stats for two hooks, not three.
    const std::string stats_pin = lab.dut_pin_dir() + "/stats";
    UniqueFd old_rctr = repin(shared_pin("xdpctl_rctr"), BPF_MAP_TYPE_PERCPU_ARRAY, 4, 24,
                              XDPCTL_POL_COUNTER_SLOTS, 0, [&](int fd) {
                                  copy_percpu(open_pinned(shared_pin("xdpctl_rctr")).get(), fd,
                                              sizeof(xdpctl_rule_ctr), 24, XDPCTL_POL_COUNTER_SLOTS);
                              });
    UniqueFd old_stats = repin(stats_pin, BPF_MAP_TYPE_PERCPU_ARRAY, 4, sizeof(xdpctl_hook_stats), 2, 0,
                               [&](int fd) {
                                   copy_percpu(open_pinned(stats_pin).get(), fd, sizeof(xdpctl_hook_stats),
                                               sizeof(xdpctl_hook_stats), 2);
                               });
    const std::string before = state();

    CmdResult up = lab.load_result({"--force"});
    ASSERT_EQ(up.exit_code, 0) << up;
    EXPECT_NE(up.out.find("xdpctl_rctr recreated in this build's layout, its counters carried over"),
              std::string::npos) << up.out;
    EXPECT_NE(up.out.find("stats recreated in this build's layout"), std::string::npos) << up.out;
    EXPECT_EQ(state(), before);
    const nlohmann::json n1 = rule(1), n4 = rule(4);
    for (const char* f : {"packets", "bytes", "last_hit_ns"}) {
        EXPECT_EQ(n1[f], r1[f]) << f;
        EXPECT_EQ(n4[f], r4[f]) << f;
    }
    EXPECT_EQ(lab.stats().counters, stats.counters);
    // Counting goes on in the new maps.
    EXPECT_EQ(udp_through(lab, 9, 3), 0);
    EXPECT_EQ(rule(1)["packets"], 8);
    EXPECT_EQ(stale_shared_pins(), std::vector<std::string>{});
}

// A load killed anywhere in an upgrade: the next one puts the old maps back and migrates
// them again; no counter is lost.
TEST_F(Upgrade, KilledAnywhereTheNextLoadFinishesLosingNoCounter)
{
    NetnsLab lab;
    lab.load();
    make_state([](const auto& a) { xdpctl_ok(a); });
    EXPECT_EQ(udp_through(lab, 9, 5), 0);
    const nlohmann::json r1 = rule(1);
    const std::string before = state();
    // Rule counters in 24-byte records again, from what is pinned now.
    auto make_old = [] {
        repin(shared_pin("xdpctl_rctr"), BPF_MAP_TYPE_PERCPU_ARRAY, 4, 24, XDPCTL_POL_COUNTER_SLOTS, 0, [](int fd) {
            copy_percpu(open_pinned(shared_pin("xdpctl_rctr")).get(), fd, sizeof(xdpctl_rule_ctr), 24,
                        XDPCTL_POL_COUNTER_SLOTS);
        });
    };
    // How long an upgrading load takes: the shortest of three (another suite's lock hold may
    // stretch one).
    long took = 1L << 30;
    for (int i = 0; i < 3; i++) {
        make_old();
        const auto t0 = Clock::now();
        CmdResult whole = lab.load_result({"--force"});
        took = std::min<long>(took, std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count());
        ASSERT_EQ(whole.exit_code, 0) << whole;
    }
    // Other suites on the host take the writer lock now and then: a long wait, not exit 75.
    std::vector<std::string> argv{xdpctl_bin(), "--wait", "60", "-n", lab.dut().ns, "load", lab.dut().ifname, "--force"};
    std::mt19937 rng(13);
    int killed = 0, attempts = 0, put_back = 0;
    for (; killed < 15 && attempts < 60; attempts++) {
        make_old();
        CmdResult r = run_cmd(argv, milliseconds(rng() % uint64_t(took * 9 / 10 + 1)));
        killed += r.timed_out;
        CmdResult next = run_cmd(argv, std::chrono::seconds(90));
        ASSERT_EQ(next.exit_code, 0) << next;
        put_back += next.out.find("were put back first") != std::string::npos;
        EXPECT_FALSE(path_exists(shared_pin("upgrade"))) << "old maps left aside";
        const nlohmann::json now = rule(1);
        EXPECT_EQ(now["packets"], r1["packets"]) << "killed after part of " << took << " ms";
        EXPECT_EQ(now["bytes"], r1["bytes"]);
        EXPECT_EQ(state(), before);
    }
    fmt::print("upgrade load ({} ms) killed {} times in {} tries; {} of the next loads put old maps back\n", took,
               killed, attempts, put_back);
    EXPECT_EQ(killed, 15);
    EXPECT_GT(put_back, 0) << "no kill came while the old maps were aside";
    EXPECT_EQ(udp_through(lab, 9, 3), 0);
    EXPECT_EQ(rule(1)["packets"], 8);
}

TEST_F(Upgrade, PolicyMapOfAnUnknownLayoutIsRefusedChangingNothing)
{
    NetnsLab lab;
    lab.load();
    make_state([](const auto& a) { xdpctl_ok(a); });
    const std::string before = state();
    const std::string pin = shared_pin("xdpctl_pvlan");
    UniqueFd real = repin(pin, BPF_MAP_TYPE_ARRAY, 4, 64, 100, BPF_F_MMAPABLE, [](int) {});
    UniqueFd fake = open_pinned(pin);
    CmdResult up = lab.load_result({"--force"});
    EXPECT_NE(up.exit_code, 0) << up;
    EXPECT_NE(up.err.find("xdpctl_pvlan: pinned type=2 key=4 value=64 entries=100"), std::string::npos) << up;
    EXPECT_NE(up.err.find("nothing was changed"), std::string::npos) << up;
    // Every pin is where it was, the interface still loaded and filtering.
    EXPECT_EQ(map_id(open_pinned(pin).get()), map_id(fake.get()));
    unpin(pin);
    pin_fd(real.get(), pin);
    EXPECT_EQ(state(), before);
    EXPECT_EQ(udp_through(lab, 9, 3), 0);
    EXPECT_EQ(rule(1)["packets"], 3);
}

// The real old release, when one was built (XDPCTL_OLD_BIN): loaded, given state and traffic
// by its own binary, then upgraded by this one under traffic. Registered only when
// XDPCTL_OLD_BIN is set (below), so that CI, which has no old build, neither runs nor skips
// it: the made-up layout 1 above stands for it there.
class UpgradeFromOldRelease : public Upgrade {
public:
    explicit UpgradeFromOldRelease(std::string old_bin) : old_bin_(std::move(old_bin)) {}
    void TestBody() override;

private:
    std::string old_bin_;
};

[[maybe_unused]] const bool old_release_registered = [] {
    const char* old_bin = std::getenv("XDPCTL_OLD_BIN");
    if (!old_bin || !*old_bin)
        return false;
    const std::string bin = old_bin;
    ::testing::RegisterTest("Upgrade", "FromTheOldReleaseBinaryUnderTraffic", nullptr, nullptr, __FILE__,
                            __LINE__, [bin]() -> Upgrade* { return new UpgradeFromOldRelease(bin); });
    return true;
}();

void UpgradeFromOldRelease::TestBody()
{
    const char* old_bin = old_bin_.c_str();
    // The old release cannot load over maps this build pinned (the fixture's policy reset made
    // them, empty): they go, unless some interface uses them.
    if (!pinned_ifaces().empty())
        GTEST_SKIP() << "xdpctl is loaded on some interface here: the old release would find its maps";
    remove_pin_tree(shared_maps_dir());
    NetnsLab lab;
    auto old = [&](std::vector<std::string> args) {
        args.insert(args.begin(), old_bin);
        CmdResult r = run_cmd(args);
        EXPECT_EQ(r.exit_code, 0) << r;
        return r.out;
    };
    old({"-n", lab.dut().ns, "load", lab.dut().ifname});
    make_state([&](const auto& a) { old(a); });
    EXPECT_EQ(udp_through(lab, 9, 5), 0);
    udp_through(lab, 12, 7);
    const std::string export_before = old({"export"});
    const nlohmann::json lb_before = nlohmann::json::parse(old({"lb", "list", "--json"}));

    upgrade_under_traffic(lab, 5, 7, "the old release");
    EXPECT_EQ(xdpctl_export(), export_before);
    const nlohmann::json lb_after = xdpctl_json({"lb", "list", "--json"});
    ASSERT_EQ(lb_after["vips"].size(), lb_before["vips"].size());
    for (size_t i = 0; i < lb_before["vips"].size(); i++) {
        EXPECT_EQ(lb_after["vips"][i]["vip"], lb_before["vips"][i]["vip"]);
        EXPECT_EQ(lb_after["vips"][i]["backends"].size(), lb_before["vips"][i]["backends"].size());
    }
    EXPECT_EQ(upgrade::recorded_layout_version(), upgrade::kLayoutVersion);
    EXPECT_EQ(stale_shared_pins(), std::vector<std::string>{});
    EXPECT_FALSE(path_exists(std::string(kPinRoot) + "/netns")) << "the old release's pin directory";
    EXPECT_EQ(udp_through(lab, 9, 3), 0);
}

}  // namespace
}  // namespace xdpctl::test
