// Upgrades across a pinned-layout change (issue 13 item 5): `load --force` of this build over
// pins of another layout carries the policy, sets, load balancer and counters over
// (lib/upgrade/map_upgrade.h).
//
// The old layouts are made here, as the release that pinned them did (the maps it pinned,
// with their types and sizes, filled with known state), so CI needs no old build:
//   - layout 2: rule records at a stride of 10,000 ranks, before ranks were left free
//     between rules; upgraded with traffic flowing;
//   - layout 1, xdpctl 0.1.0: a per-CPU connection table, no xdpctl_psmall/xdpctl_pdecide (nor
//     the decision events' xdpctl_rlog/xdpctl_events, nor the sets' xdpctl_pset/psl1/psplit), no
//     layout record; upgraded with traffic flowing, which must be decided all along;
//   - counters of another layout (shorter rule-counter records, fewer stats entries), as a
//     future change would be: carried exactly;
//   - the policy's and the load balancer's maps in another record layout (rule records, VIP and
//     backend records padded, the stored policy in chunks of another size), as a change of
//     a change of kPolicyRecordLayout/kLbRecordLayout makes them: re-applied to maps made anew under
//     traffic, counters and held flows kept, every packet decided;
//   - the same with a damaged stored policy: refused, the old datapath runs on.
// With XDPCTL_OLD_BIN (an xdpctl built from 37fd14d, the 0.1.0 baseline: docs/architecture.md
// "Upgrades across a layout change" says how), the real old release is upgraded from too.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
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
#include <linux/if_link.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>

#include "abi/xdpctl_abi.h"
#include "stats/counters.h"
#include "attach/iface_pins.h"
#include "attach/iface_ref.h"
#include "lb/conntrack_table.h"
#include "netns_lab.h"
#include "attach/skeleton.h"
#include "util/unique_fd.h"
#include "net/packet_builder.h"
#include "policy/stored_image.h"
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
            xdpctl({"lb", "vip", "del", kLabVip});
        NoPolicyTest::TearDown();
    }

    // The DUT loaded and given make_lab_state's state; `second_backend`: the VIP gets backend
    // 198.19.10.2 too.
    static void load_with_state(const NetnsLab& lab, bool second_backend = false)
    {
        lab.load();
        make_lab_state([](const auto& a) { xdpctl_ok(a); });
        if (second_backend)
            xdpctl_ok({"lb", "backend", "add", kLabVip, "198.19.10.2", "--mac", "02:00:00:00:0a:02"});
    }

    // Port 9 still dropped after an upgrade, each packet counted by rule 1.
    static void still_drops(const NetnsLab& lab)
    {
        const uint64_t dropped = rule(1)["packets"].get<uint64_t>();
        EXPECT_EQ(udp_through(lab, 9, 3), 0);
        EXPECT_EQ(rule(1)["packets"].get<uint64_t>(), dropped + 3);
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
                                      const std::string& what,
                                      const std::string& must_say = "layout version 1 (xdpctl 0.1.0")
    {
        std::optional<Traffic> traffic(std::in_place, lab);
        std::this_thread::sleep_for(milliseconds(300));
        const auto t0 = Clock::now();
        CmdResult up = lab.load_result({"--force"});
        const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
        std::this_thread::sleep_for(milliseconds(300));
        traffic->stop();
        ASSERT_EQ(up.exit_code, 0) << up;
        EXPECT_NE(up.out.find(must_say), std::string::npos) << up.out;
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
    // (holding `flows` connections), no xdpctl_psmall, xdpctl_pdecide, xdpctl_panc, xdpctl_pflow, xdpctl_rlog,
    // xdpctl_events, flow cache (xdpctl_lb_fcache, xdpctl_lb_fgen) or xdpctl_rpurse, no layout record.
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
        unpin(shared_pin("xdpctl_panc"));
        unpin(shared_pin("xdpctl_pflow"));
        unpin(shared_pin("xdpctl_rlog"));    // decision events: layout 1 had none
        unpin(shared_pin("xdpctl_lb_fcache"));  // nor the LB's flow cache
        unpin(shared_pin("xdpctl_lb_fgen"));
        unpin(shared_pin("xdpctl_events"));
        unpin(shared_pin("xdpctl_pset"));  // nor sets' tables of their own
        unpin(shared_pin("xdpctl_psl1"));
        unpin(shared_pin("xdpctl_psplit"));
        unpin(shared_pin("xdpctl_rpurse"));  // nor the rate limit's per-CPU purses
        remove_pin_tree(shared_pin("layout"));
    }
};

TEST_F(Upgrade, FromLayout1UnderTrafficKeepsEverythingAndDecidesEveryPacket)
{
    NetnsLab lab;
    load_with_state(lab);
    ASSERT_EQ(upgrade::recorded_layout_version(), upgrade::kLayoutVersion);
    const std::string before = state();
    make_layout_1(3);

    upgrade_under_traffic(lab, 0, 0, "layout 1");
    EXPECT_NE(last_output.find("3 connection(s) carried over"), std::string::npos) << last_output;
    EXPECT_EQ(state(), before);
    EXPECT_EQ(upgrade::recorded_layout_version(), upgrade::kLayoutVersion);
    EXPECT_TRUE(path_exists(shared_pin("xdpctl_psmall")) && path_exists(shared_pin("xdpctl_pdecide")) &&
                path_exists(shared_pin("xdpctl_panc")));
    EXPECT_EQ(stale_shared_pins(), std::vector<std::string>{});
    still_drops(lab);
}

// Layout 2, before ranks were left free between rules (lib/policy/rank_gaps.h): 10,000 rule
// records per generation and direction, and the anchor lists' element sized for them. The
// policy is read through them (each rule's counter slot from its record at the old stride)
// and committed to new maps, under traffic: every packet decided, every counter exact.
TEST_F(Upgrade, FromLayout2RuleRecordsAtTheOldStrideUnderTraffic)
{
    NetnsLab lab;
    load_with_state(lab);
    const std::string before = state();
    constexpr uint32_t kOldRanks = 10000;
    const UniqueFd now = open_pinned(shared_pin("xdpctl_prule"));
    ASSERT_TRUE(now);
    repin(shared_pin("xdpctl_prule"), BPF_MAP_TYPE_ARRAY, 4, sizeof(xdpctl_rule_rec),
          XDPCTL_POL_GENS * XDPCTL_POL_DIRS * kOldRanks, BPF_F_MMAPABLE, [&](int fd) {
              for (uint32_t gd = 0; gd < XDPCTL_POL_GENS * XDPCTL_POL_DIRS; gd++)
                  for (uint32_t rank = 0; rank < 256; rank++) {  // the lab's few rules and more
                      const uint32_t from = gd * XDPCTL_POL_MAX_RANKS + rank, to = gd * kOldRanks + rank;
                      xdpctl_rule_rec r{};
                      ASSERT_EQ(bpf_map_lookup_elem(now.get(), &from, &r), 0);
                      ASSERT_EQ(bpf_map_update_elem(fd, &to, &r, BPF_ANY), 0);
                  }
          });
    repin(shared_pin("xdpctl_panc"), BPF_MAP_TYPE_ARRAY, 4, 2510848, XDPCTL_POL_GENS * XDPCTL_POL_DIRS,
          BPF_F_MMAPABLE, [](int) {});
    remove_pin_tree(shared_pin("layout"));

    upgrade_under_traffic(lab, 0, 0, "layout 2", "layout version 2");
    EXPECT_EQ(state(), before);
    EXPECT_EQ(upgrade::recorded_layout_version(), upgrade::kLayoutVersion);
    EXPECT_EQ(stale_shared_pins(), std::vector<std::string>{});
    still_drops(lab);
}

TEST_F(Upgrade, CountersOfAnotherLayoutCarriedExactly)
{
    NetnsLab lab;
    load_with_state(lab);
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
    load_with_state(lab);
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

// ---- the policy's and the load balancer's maps in another record layout ----

bpf_map_info info_of(int fd)
{
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_map_get_info_by_fd(fd, &info, &len) != 0)
        throw std::runtime_error("cannot read a map's info");
    return info;
}

// The map pinned at `pin` (an array or a hash) copied into one whose records are `pad` bytes
// longer, this build's fields first: as an xdpctl whose records had one more field pinned it.
// `edit` may change each record (the padded bytes, the key) before it is written.
UniqueFd pad_records(const std::string& pin, uint32_t pad,
                     const std::function<void(const void* key, std::vector<uint8_t>& value)>& edit = {})
{
    UniqueFd real = open_pinned(pin);
    const bpf_map_info info = info_of(real.get());
    return repin(pin, bpf_map_type(info.type), info.key_size, info.value_size + pad, info.max_entries, info.map_flags,
                 [&](int fd) {
                     std::vector<uint8_t> key(info.key_size), next(info.key_size);
                     std::vector<uint8_t> value(info.value_size + pad);
                     for (const void* prev = nullptr; bpf_map_get_next_key(real.get(), prev, next.data()) == 0;
                          prev = key.data()) {
                         key = next;
                         std::fill(value.begin(), value.end(), 0xa5);  // what the later field held
                         ASSERT_EQ(bpf_map_lookup_elem(real.get(), key.data(), value.data()), 0);
                         if (edit)
                             edit(key.data(), value);
                         ASSERT_EQ(bpf_map_update_elem(fd, key.data(), value.data(), BPF_ANY), 0);
                     }
                 });
}

// The stored policy of the active generation in chunks of `chunk` bytes (an xdpctl that
// stored it so); `damage`: everything after the image's magic overwritten.
UniqueFd rechunk_stored_policy(uint32_t chunk, bool damage)
{
    const std::string pin = shared_pin("xdpctl_psrc");
    UniqueFd real = open_pinned(pin);
    const bpf_map_info info = info_of(real.get());
    xdpctl_pol_ctl ctl{};
    const uint32_t zero = 0;
    EXPECT_EQ(bpf_map_lookup_elem(open_pinned(shared_pin("xdpctl_pctl")).get(), &zero, &ctl), 0);
    std::string image = policy::read_stored_image(real.get(), ctl.gen & 1);
    EXPECT_GT(image.size(), 16u);
    if (damage)
        std::fill(image.begin() + 8, image.end(), '\xff');
    return repin(pin, bpf_map_type(info.type), info.key_size, chunk, info.max_entries, info.map_flags, [&](int fd) {
        std::string data(8, '\0');
        const uint64_t len = image.size();
        std::memcpy(data.data(), &len, 8);
        data += image;
        data.resize((data.size() + chunk - 1) / chunk * chunk);
        for (uint32_t c = 0; c * chunk < data.size(); c++) {
            const uint32_t key = policy::stored_image_key(ctl.gen & 1, c);
            ASSERT_EQ(bpf_map_update_elem(fd, &key, data.data() + size_t(c) * chunk, BPF_ANY), 0);
        }
    });
}

// The program attached to the DUT's XDP hook.
UniqueFd attached_xdp(const NetnsLab& lab)
{
    UniqueFd link = open_pinned(IfacePins(lab.dut_pin_dir()).link_xdp);
    bpf_link_info li{};
    __u32 len = sizeof(li);
    if (!link || bpf_link_get_info_by_fd(link.get(), &li, &len) != 0)
        throw std::runtime_error("no XDP link pinned for the DUT");
    return UniqueFd{bpf_prog_get_fd_by_id(li.prog_id)};
}

uint32_t attached_xdp_id(const NetnsLab& lab)
{
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    UniqueFd p = attached_xdp(lab);
    return bpf_prog_get_info_by_fd(p.get(), &info, &len) == 0 ? info.id : 0;
}

constexpr uint16_t kFirstFlow = 41000, kFlows = 24;

xdpctl_lb_flow_key flow_key(uint16_t sport)
{
    xdpctl_lb_flow_key k{};
    k.saddr[0] = htonl(0xc6120701u);  // 198.18.7.1: in no set
    k.daddr[0] = htonl(0xc6130001u);  // the VIP, 198.19.0.1
    k.sport = htons(sport);
    k.dport = htons(80);
    k.proto = IPPROTO_TCP;
    k.family = 4;
    return k;
}

// The backend (the last byte of its MAC) the attached XDP program sends a TCP segment of the
// flow from 198.18.7.1:sport to the VIP to; -1 when it does not forward it. A SYN is
// scheduled by the Maglev table, an ACK by the connection table first.
int backend_for(const NetnsLab& lab, uint16_t sport, bool syn)
{
    net::Ipv4Opts ip;
    ip.src = {198, 18, 7, 1};
    ip.dst = {198, 19, 0, 1};
    net::TcpOpts t;
    t.sport = sport;
    t.dport = 80;
    t.flags = syn ? net::tcp_flags::syn : net::tcp_flags::ack;
    const std::vector<uint8_t> in = net::PacketBuilder().eth(net::kDstMac, net::kSrcMac).ipv4(ip).tcp(t).payload(16).build();
    std::vector<uint8_t> out(in.size() + 256);
    UniqueFd prog = attached_xdp(lab);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = out.data(),
                .data_size_in = uint32_t(in.size()), .data_size_out = uint32_t(out.size()), .repeat = 1);
    if (bpf_prog_test_run_opts(prog.get(), &opts) != 0 || opts.retval != XDP_TX)
        return -1;
    return out[5];
}

// The policy's and the LB's maps (rule records, the stored policy, a compiled table, VIP and
// backend records) in another record layout, under the programs running on this build's:
// the load re-applies both to maps made anew while traffic flows. Every packet is decided by
// the whole policy (counted by its rule, none through the dropped port), counters carry
// exactly, VIP ids and backend slots stay (a held connection keeps its backend, new ones get
// the same Maglev choice).
TEST_F(Upgrade, PolicyAndLbOfAnotherRecordLayoutReappliedUnderTraffic)
{
    NetnsLab lab;
    load_with_state(lab, true);
    // Backend 2 again: the second incarnation of its slot, which the held connection below
    // names and a fresh commit would not give it.
    xdpctl_ok({"lb", "backend", "del", kLabVip, "198.19.10.2"});
    xdpctl_ok({"lb", "backend", "add", kLabVip, "198.19.10.2", "--mac", "02:00:00:00:0a:02"});
    // Rule 1 again, last: its counter slot (the first) is not the one a commit into empty maps
    // would give it.
    xdpctl_ok({"rule", "del", "1"});
    xdpctl_ok({"rule", "add", "--id", "1", "--proto", "udp", "--dport", "9", "--action", "drop"});
    EXPECT_EQ(udp_through(lab, 9, 5), 0);
    udp_through(lab, 12, 7);

    // New connections, and one held on the backend the table would not give it.
    std::vector<int> chosen;
    for (uint16_t f = 0; f < kFlows; f++)
        chosen.push_back(backend_for(lab, kFirstFlow + f, true));
    const auto to1 = std::find(chosen.begin(), chosen.end(), 1), to2 = std::find(chosen.begin(), chosen.end(), 2);
    ASSERT_TRUE(to1 != chosen.end() && to2 != chosen.end()) << "both backends get flows";
    const uint16_t held = uint16_t(kFirstFlow + (to1 - chosen.begin()));
    const uint16_t other = uint16_t(kFirstFlow + (to2 - chosen.begin()));
    UniqueFd ct = open_pinned(shared_pin("xdpctl_lb_ct"));
    xdpctl_lb_flow to_backend2{};
    const xdpctl_lb_flow_key held_key = flow_key(held), other_key = flow_key(other);
    ASSERT_EQ(bpf_map_lookup_elem(ct.get(), &other_key, &to_backend2), 0);
    ASSERT_EQ(bpf_map_update_elem(ct.get(), &held_key, &to_backend2, BPF_ANY), 0);
    lb::void_flow_cache(open_pinned(shared_pin("xdpctl_lb_fgen")).get());  // the datapath sees the write
    ASSERT_EQ(backend_for(lab, held, false), 2);

    const nlohmann::json r2 = rule(2), r3 = rule(3);
    const nlohmann::json lb_before = xdpctl_json({"lb", "list", "--json"});
    const std::string before = state();
    const uint32_t prog_before = attached_xdp_id(lab);

    // The old record layout: one more field at the end of the rule, header, VIP and backend records,
    // the stored policy in 16 KiB chunks, a compiled table of another size.
    UniqueFd real_rules = pad_records(shared_pin("xdpctl_prule"), 8);
    UniqueFd real_hdr = pad_records(shared_pin("xdpctl_phdr"), 8);  // its rule counts unread
    UniqueFd real_src = rechunk_stored_policy(16384, false);
    UniqueFd real_vlan = pad_records(shared_pin("xdpctl_pvlan"), 64);
    UniqueFd real_vips = pad_records(shared_pin("xdpctl_lb_vips"), 8);
    UniqueFd real_backends = pad_records(shared_pin("xdpctl_lb_backends"), 8);

    upgrade_under_traffic(lab, 5, 7, "policy and LB maps of another record layout",
                          "the policy (4 rule(s), 1 set(s)) re-applied to its maps made anew");
    EXPECT_NE(last_output.find("the load balancer (1 VIP(s), 2 backend slot(s)) re-applied"), std::string::npos)
        << last_output;
    EXPECT_NE(attached_xdp_id(lab), prog_before);
    EXPECT_EQ(state(), before);
    EXPECT_EQ(rule(2), r2);
    EXPECT_EQ(rule(3), r3);
    EXPECT_EQ(xdpctl_json({"lb", "list", "--json"}), lb_before) << "LB counters by VIP and backend";
    for (const char* name :
         {"xdpctl_prule", "xdpctl_phdr", "xdpctl_psrc", "xdpctl_pvlan", "xdpctl_lb_vips", "xdpctl_lb_backends"}) {
        UniqueFd now = open_pinned(shared_pin(name));
        SkelPtr<xdpctl_xdp> s{xdpctl_xdp::open()};
        EXPECT_EQ(info_of(now.get()).value_size, bpf_map__value_size(bpf_object__find_map_by_name(s->obj, name)))
            << name << " in this build's layout";
    }
    EXPECT_EQ(stale_shared_pins(), std::vector<std::string>{});
    EXPECT_FALSE(path_exists(shared_pin("upgrade")));

    // The held connection keeps its backend; new ones are scheduled as before.
    EXPECT_EQ(backend_for(lab, held, false), 2) << "the connection table's entry carried";
    for (uint16_t f = 0; f < kFlows; f++)
        EXPECT_EQ(backend_for(lab, kFirstFlow + f, true), chosen[f]) << "flow " << kFirstFlow + f;
    // The policy decides on: counted into the same counters.
    still_drops(lab);
}

// A load that fails after it swapped this interface's program: another interface on the
// shared maps cannot be reloaded (its device was deleted under its pins). Its link goes back
// to the old program and the old maps under their pins: the old datapath whole, deciding.
TEST_F(Upgrade, FailingAfterTheSwapPutsTheOldDatapathBack)
{
    NetnsLab lab, other;
    load_with_state(lab);
    other.load();
    EXPECT_EQ(udp_through(lab, 9, 3), 0);
    const std::string before = state();
    const uint32_t prog = attached_xdp_id(lab);
    const std::vector<std::string> names{"xdpctl_prule", "xdpctl_lb_backends"};
    std::map<std::string, UniqueFd> real;
    for (const auto& n : names)
        real[n] = pad_records(shared_pin(n), 8);
    std::map<std::string, uint32_t> ids;
    for (const auto& n : names)
        ids[n] = map_id(open_pinned(shared_pin(n)).get());
    run_ok({"ip", "-n", other.dut().ns, "link", "del", other.dut().ifname});

    CmdResult up = lab.load_result({"--force"});
    EXPECT_EQ(up.exit_code, 1) << up;
    EXPECT_NE(up.err.find("cannot find the interface of"), std::string::npos) << up;
    EXPECT_EQ(attached_xdp_id(lab), prog) << "the link back on the program it ran";
    for (const auto& n : names)
        EXPECT_EQ(map_id(open_pinned(shared_pin(n)).get()), ids[n]) << n << " back under its pin";
    EXPECT_FALSE(path_exists(shared_pin("upgrade")));
    EXPECT_EQ(udp_through(lab, 9, 2), 0);

    remove_pin_tree(other.dut_pin_dir());  // the deleted device's pins
    for (const auto& n : names) {
        unpin(shared_pin(n));
        pin_fd(real[n].get(), shared_pin(n));
    }
    EXPECT_EQ(state(), before);
    EXPECT_EQ(rule(1)["packets"], 5);
}

// A record layout recorded for the policy's maps that is not this build's (a record that
// changed meaning at the same size): the policy is re-applied though every map's sizes match.
TEST_F(Upgrade, AnotherRecordLayoutStampAloneReappliesThePolicy)
{
    NetnsLab lab;
    load_with_state(lab);
    EXPECT_EQ(udp_through(lab, 9, 4), 0);
    ASSERT_EQ(upgrade::recorded_group_layout("policy"), upgrade::kPolicyRecordLayout);
    const std::string before = state();
    const nlohmann::json r1 = rule(1);
    remove_pin_tree(shared_pin("layout/policy-" + std::to_string(upgrade::kPolicyRecordLayout)));
    make_pin_dir(shared_pin("layout/policy-" + std::to_string(upgrade::kPolicyRecordLayout + 6)));

    CmdResult up = lab.load_result({"--force"});
    ASSERT_EQ(up.exit_code, 0) << up;
    EXPECT_NE(up.out.find("the policy (4 rule(s), 1 set(s)) re-applied"), std::string::npos) << up.out;
    EXPECT_EQ(up.out.find("the load balancer ("), std::string::npos) << up.out;
    EXPECT_EQ(upgrade::recorded_group_layout("policy"), upgrade::kPolicyRecordLayout);
    EXPECT_EQ(state(), before);
    EXPECT_EQ(rule(1), r1);
    still_drops(lab);
}

// The connection table in another layout. Values of another size are read at this build's
// offsets: carried, a held connection keeps its backend. Keys of another size cannot be read:
// nothing is carried and each connection is scheduled again by its VIP's Maglev table, made
// again from the same backends: the held connection (on the backend the table would not give
// it) moves, every other one keeps its backend.
TEST_F(Upgrade, ConnectionTableOfAnotherLayoutCarriedOrScheduledAgain)
{
    NetnsLab lab;
    load_with_state(lab, true);
    struct Case {
        const char* what;
        uint32_t key_pad, value_pad;
        bool carried;
        const char* says;
    };
    const Case cases[] = {
        {"values 8 bytes longer", 0, 8, true, "3 connection(s) carried over"},
        {"keys 8 bytes longer", 8, 0, false, "no connection was carried"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.what);
        const std::string pin = shared_pin("xdpctl_lb_ct");
        {
            UniqueFd ct = open_pinned(pin);
            xdpctl_lb_flow_key k{}, next{};
            std::vector<xdpctl_lb_flow_key> all;
            for (const void* prev = nullptr; bpf_map_get_next_key(ct.get(), prev, &next) == 0; prev = &k)
                all.push_back(k = next);
            for (const auto& key : all)
                bpf_map_delete_elem(ct.get(), &key);
        }
        // Three connections: two where the table put them, one held on the other backend.
        std::vector<int> chosen;
        for (uint16_t f = 0; f < 3; f++)
            chosen.push_back(backend_for(lab, kFirstFlow + f, true));
        uint16_t sport = kFirstFlow + 3;
        int fourth = backend_for(lab, sport, true);
        for (; fourth == chosen[0] && sport < kFirstFlow + 200; fourth = backend_for(lab, ++sport, true))
            ;
        ASSERT_NE(fourth, chosen[0]) << "no flow went to the other backend";
        UniqueFd ct = open_pinned(pin);
        xdpctl_lb_flow to_other{};
        const xdpctl_lb_flow_key held = flow_key(kFirstFlow), other = flow_key(sport);
        ASSERT_EQ(bpf_map_lookup_elem(ct.get(), &other, &to_other), 0);
        for (uint16_t f = kFirstFlow + 3; f <= sport; f++) {
            const xdpctl_lb_flow_key extra = flow_key(f);
            ASSERT_EQ(bpf_map_delete_elem(ct.get(), &extra), 0);
        }
        ASSERT_EQ(bpf_map_update_elem(ct.get(), &held, &to_other, BPF_ANY), 0);
        lb::void_flow_cache(open_pinned(shared_pin("xdpctl_lb_fgen")).get());  // the datapath sees the write
        ASSERT_EQ(backend_for(lab, kFirstFlow, false), fourth);

        const bpf_map_info info = info_of(ct.get());
        UniqueFd real = repin(pin, bpf_map_type(info.type), info.key_size + c.key_pad, info.value_size + c.value_pad,
                              info.max_entries, info.map_flags, [&](int fd) {
                                  xdpctl_lb_flow_key k{}, next{};
                                  std::vector<uint8_t> key(info.key_size + c.key_pad), value(info.value_size + c.value_pad);
                                  for (const void* prev = nullptr; bpf_map_get_next_key(ct.get(), prev, &next) == 0;
                                       prev = &k) {
                                      k = next;
                                      std::fill(value.begin(), value.end(), 0xa5);
                                      std::fill(key.begin(), key.end(), 0);
                                      std::memcpy(key.data(), &k, sizeof(k));
                                      ASSERT_EQ(bpf_map_lookup_elem(ct.get(), &k, value.data()), 0);
                                      ASSERT_EQ(bpf_map_update_elem(fd, key.data(), value.data(), BPF_ANY), 0);
                                  }
                              });
        CmdResult up = lab.load_result({"--force"});
        ASSERT_EQ(up.exit_code, 0) << up;
        EXPECT_NE(up.out.find(c.says), std::string::npos) << up.out;
        // An established connection's next segment.
        int kept = 0;
        const int held_now = backend_for(lab, kFirstFlow, false);
        kept += held_now == fourth;
        for (uint16_t f = 1; f < 3; f++)
            kept += backend_for(lab, kFirstFlow + f, false) == chosen[f];
        fmt::print("connection table with {}: {} of 3 connections kept their backend\n", c.what, kept);
        EXPECT_EQ(held_now, c.carried ? fourth : chosen[0]);
        EXPECT_EQ(kept, c.carried ? 3 : 2);
        EXPECT_EQ(info_of(open_pinned(pin).get()).key_size, sizeof(xdpctl_lb_flow_key));
    }
}

// The same change of layout with a damaged stored policy, then with a backend record naming
// no VIP: refused before anything changed, the old programs attached and deciding.
TEST_F(Upgrade, DamagedStateOfAnotherLayoutIsRefusedAndTheOldDatapathRuns)
{
    NetnsLab lab;
    load_with_state(lab);
    EXPECT_EQ(udp_through(lab, 9, 3), 0);
    const std::string before = state();
    const uint32_t prog = attached_xdp_id(lab);

    struct Case {
        const char* what;
        std::function<std::vector<UniqueFd>()> damage;
        const char* says;
    };
    const Case cases[] = {
        {"a damaged stored policy",
         [] {
             std::vector<UniqueFd> real;
             real.push_back(pad_records(shared_pin("xdpctl_prule"), 8));
             real.push_back(rechunk_stored_policy(16384, true));
             return real;
         },
         "the pinned policy (record layout"},
        {"a backend of no VIP",
         [] {
             std::vector<UniqueFd> real;
             real.push_back(pad_records(shared_pin("xdpctl_lb_backends"), 8, [](const void*, std::vector<uint8_t>& v) {
                 xdpctl_lb_backend b;
                 std::memcpy(&b, v.data(), sizeof(b));
                 if (b.flags & XDPCTL_LB_BE_F_USED)
                     b.vip_id = 77;
                 std::memcpy(v.data(), &b, sizeof(b));
             }));
             return real;
         },
         "serves VIP id 77, which no VIP has"},
    };
    const std::vector<std::string> names{"xdpctl_prule", "xdpctl_psrc", "xdpctl_lb_backends"};
    for (const auto& c : cases) {
        SCOPED_TRACE(c.what);
        std::map<std::string, UniqueFd> real;
        std::map<std::string, uint32_t> ids;
        for (const auto& n : names)
            real[n] = open_pinned(shared_pin(n));
        std::vector<UniqueFd> held = c.damage();
        for (const auto& n : names)
            ids[n] = map_id(open_pinned(shared_pin(n)).get());

        CmdResult up = lab.load_result({"--force"});
        EXPECT_EQ(up.exit_code, 1) << up;
        EXPECT_NE(up.err.find(c.says), std::string::npos) << up;
        EXPECT_NE(up.err.find("nothing was changed"), std::string::npos) << up;
        EXPECT_NE(up.err.find("'xdpctl restore' rebuilds them"), std::string::npos) << up;
        // Every pin where it was, the same program attached and filtering.
        for (const auto& n : names)
            EXPECT_EQ(map_id(open_pinned(shared_pin(n)).get()), ids[n]) << n;
        EXPECT_FALSE(path_exists(shared_pin("upgrade")));
        EXPECT_EQ(attached_xdp_id(lab), prog);
        EXPECT_EQ(udp_through(lab, 9, 2), 0);
        for (const auto& n : names) {
            unpin(shared_pin(n));
            pin_fd(real[n].get(), shared_pin(n));
        }
    }
    EXPECT_EQ(state(), before);
    EXPECT_EQ(rule(1)["packets"], 7);
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
    make_lab_state([&](const auto& a) { old(a); });
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
