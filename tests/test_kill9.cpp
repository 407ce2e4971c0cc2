// kill -9 anywhere (issue 13): every command that changes state, killed with SIGKILL at
// random moments while traffic flows, must leave a state the next command works on, a
// `status` that is consistent, an `export` (and `lb list`) equal to the state before the
// command or the state it would have made, and traffic decided by one of them.
//
// Each kind of command is first run to the end once, from a known state A, giving the state
// B it makes (and how long it takes); then, again and again: back to A, the command started
// and killed after a random part of that time, the state checked to be A or B. The kill
// moments are spread over the run (one at a random point of each of n equal parts, kill_at):
// n of them leave no stretch of the run unvisited wider than two parts, where n uniformly
// random moments leave gaps of ~ln(n) parts, so fewer kills visit the run as closely.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <random>
#include <thread>

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>

#include "netns_lab.h"
#include "util/unique_fd.h"

namespace xdpctl::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// UDP from the peer to the DUT, ports 9 (dropped by rule 1) and 12 (counted by rule 4, then
// passed to no socket), a few thousand packets a second, until stopped: the kills happen
// under traffic. (Port 10 is the probes'.)
class Traffic {
public:
    explicit Traffic(const NetnsLab& lab) : lab_(lab), thread_([this] { run(); }) {}
    ~Traffic()
    {
        stop_ = true;
        thread_.join();
    }
    uint64_t sent() const { return sent_; }

private:
    void run()
    {
        in_netns(lab_.peer().ns, [&] {
            UniqueFd s{socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
            sockaddr_in to{};
            to.sin_family = AF_INET;
            inet_pton(AF_INET, lab_.dut().ipv4.c_str(), &to.sin_addr);
            const auto end = Clock::now() + std::chrono::minutes(5);  // bounded, whatever happens
            while (!stop_ && Clock::now() < end) {
                for (int i = 0; i < 10; i++) {
                    to.sin_port = htons(i % 2 ? 12 : 9);
                    sendto(s.get(), "k", 1, 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to));
                    sent_++;
                }
                std::this_thread::sleep_for(milliseconds(2));
            }
            return 0;
        });
    }

    const NetnsLab& lab_;
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> sent_{0};
    std::thread thread_;
};

// When to kill attempt `attempt` of a phase of `parts` kills over the first `span_ms` of a
// run: at a random point of part `attempt % parts` of `parts` equal parts (attempts whose
// command ended before its kill go on to the next part, and round again from the first).
milliseconds kill_at(std::mt19937_64& rng, int attempt, int parts, long span_ms)
{
    const uint64_t span = uint64_t(span_ms), part = uint64_t(attempt % parts);
    const uint64_t lo = span * part / uint64_t(parts), hi = span * (part + 1) / uint64_t(parts);
    return milliseconds(lo + rng() % (hi - lo + 1));
}

class Kill9 : public NoPolicyTest {
protected:
    struct State {
        std::string policy;  // export
        std::string lb;      // lb list --json, without counters
        bool operator==(const State&) const = default;
    };

    static State state() { return {xdpctl_export(), xdpctl_lb_config().dump()}; }

    // The lab's interface as `status --json` shows it; "" when it is not listed.
    static std::string iface_state(const NetnsLab& lab)
    {
        const nlohmann::json st = xdpctl_json({"status", "--json"});
        std::string found;
        std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& j) {
            if (j.is_object()) {
                if (j.contains("interface") && j["interface"] == lab.dut().ifname && j.contains("state"))
                    found = j["state"].get<std::string>();
                for (const auto& [_, v] : j.items())
                    walk(v);
            } else if (j.is_array()) {
                for (const auto& v : j)
                    walk(v);
            }
        };
        walk(st);
        return found;
    }

    static uint64_t rule_packets(uint32_t id)
    {
        const nlohmann::json all = xdpctl_json({"rule", "list", "--json"});
        for (const auto& r : all["rules"])
            if (r["id"] == id)
                return r["packets"].get<uint64_t>();
        return 0;
    }
};

TEST_F(Kill9, EveryWriterKilledAnywhereLeavesBeforeOrAfter)
{
    NetnsLab lab;
    lab.load();
    std::mt19937_64 rng(9);

    // State A: the rules the traffic checks, a small set, one VIP with one backend.
    make_lab_state([](const auto& a) { xdpctl_ok(a); });
    const State a = state();
    const std::string a_file = write_temp_file(a.policy, "kill9-a");
    const std::string small_set = write_temp_file("198.19.1.0/24\n", "kill9-small");

    // 10,000 rules: A's four and 9,996 more.
    std::string big_policy = a.policy;
    for (uint32_t i = 0; i < 9996; i++)
        big_policy += fmt::format("rule --id {} --src 198.18.{}.{}/32 --proto tcp --dport {} --action drop\n",
                                  1000 + i, 128 + i / 250, i % 250 + 1, 1 + i % 60000);
    const std::string big_file = write_temp_file(big_policy, "kill9-10k");
    // 1,000,000 distinct /32s.
    std::string million;
    million.reserve(16 << 20);
    for (uint32_t i = 0; i < 1000000; i++) {
        const uint32_t addr = 0x0b000000u + i * 7;
        million += fmt::format("{}.{}.{}.{}\n", addr >> 24, (addr >> 16) & 255, (addr >> 8) & 255, addr & 255);
    }
    const std::string million_file = write_temp_file(million, "kill9-1m");

    struct Kind {
        const char* name;
        std::vector<std::string> cmd;   // from A, makes B
        std::vector<std::string> undo;  // from B, back to A
        int kills;  // commands really killed (not finished first) before the next kind
    };
    const std::string bin = xdpctl_bin();
    std::vector<Kind> kinds = {
        {"rule add", {"rule", "add", "--id", "900", "--src", "198.19.2.0/24", "--action", "drop"}, {"rule", "del", "900"}, 36},
        {"apply 10k", {"apply", big_file}, {"apply", a_file}, 20},
        {"set load 1M", {"set", "load", "big", million_file}, {"set", "load", "big", small_set}, 12},
        {"lb backend add",
         {"lb", "backend", "add", "198.19.0.1:80/tcp", "198.19.10.2", "--mac", "02:00:00:00:0a:02"},
         {"lb", "backend", "del", "198.19.0.1:80/tcp", "198.19.10.2"},
         27},
    };

    Traffic traffic(lab);
    int kills = 0;
    for (const Kind& k : kinds) {
        SCOPED_TRACE(k.name);
        std::vector<std::string> argv{bin};
        argv.insert(argv.end(), k.cmd.begin(), k.cmd.end());
        // To the end: B, and how long the command takes. The shortest of three runs: another
        // test may share the CPUs, and a kill meant for "before the end" must come before the
        // end of a fast run too. B is read after the first (reading it again after the others
        // costs seconds where it holds the million prefixes, and reads the same).
        long took = 0;
        State b;
        for (int run = 0; run < 3; run++) {
            const auto t0 = Clock::now();
            CmdResult whole = run_cmd(argv);
            const long ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
            took = run == 0 ? ms : std::min(took, ms);
            ASSERT_EQ(whole.exit_code, 0) << whole;
            if (run == 0) {
                b = state();
                ASSERT_NE(a, b);
            }
            xdpctl_ok(k.undo);
            ASSERT_EQ(state(), a);
        }
        const auto phase = Clock::now();
        int killed = 0, attempts = 0;
        // Bounded: a command that mostly finishes before its kill ends the phase too.
        for (; killed < k.kills && attempts < 3 * k.kills; attempts++) {
            // Most of them before the end (the end may come sooner than in the first run).
            const auto limit = kill_at(rng, attempts, k.kills, took * 8 / 10);
            CmdResult r = run_cmd(argv, limit);
            killed += r.timed_out;
            // The next command works: reading, then writing back to A.
            const State s = state();
            EXPECT_TRUE(s == a || s == b) << "killed after " << limit.count() << " ms: neither before nor after";
            if (s == b) {
                xdpctl_ok(k.undo);
            } else if (!(s == a)) {
                ASSERT_EQ(xdpctl({"apply", a_file}).exit_code, 0);
            }
            EXPECT_EQ(iface_state(lab), "loaded");
        }
        EXPECT_EQ(udp_through(lab, 9, 3), 0);
        EXPECT_EQ(udp_through(lab, 10, 3), 3);
        fmt::print("{}: {} ms a run, {} killed of {} in {:.1f} s\n", k.name, took, killed, attempts,
                   std::chrono::duration<double>(Clock::now() - phase).count());
        EXPECT_EQ(killed, k.kills);
        kills += killed;
    }

    // The programs themselves: a reload killed keeps the old program or puts the new one in;
    // a first load killed leaves nothing or a partial load that the next load finishes.
    const std::vector<std::string> reload{bin, "-n", lab.dut().ns, "load", lab.dut().ifname, "--force"};
    const std::vector<std::string> load{bin, "-n", lab.dut().ns, "load", lab.dut().ifname};
    auto t0 = Clock::now();
    ASSERT_EQ(run_cmd(reload).exit_code, 0);
    const auto reload_ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
    constexpr int kLoadKills = 15;
    int killed = 0;
    for (int i = 0; killed < kLoadKills && i < 3 * kLoadKills; i++) {
        CmdResult r = run_cmd(reload, kill_at(rng, i, kLoadKills, reload_ms * 8 / 10));
        killed += r.timed_out;
        EXPECT_EQ(iface_state(lab), "loaded") << "load --force killed";
        EXPECT_EQ(state(), a);
    }
    EXPECT_EQ(killed, kLoadKills) << "load --force";
    kills += killed;
    killed = 0;
    for (int i = 0; killed < kLoadKills && i < 3 * kLoadKills; i++) {
        CmdResult un = lab.xdpctl_dut({"unload", lab.dut().ifname});
        ASSERT_EQ(un.exit_code, 0) << un;
        CmdResult r = run_cmd(load, kill_at(rng, i, kLoadKills, reload_ms * 8 / 10));
        killed += r.timed_out;
        const std::string st = iface_state(lab);
        EXPECT_TRUE(st == "" || st == "partial" || st == "loaded") << st;
        if (st != "loaded") {
            // What the interrupted load left is finished (or cleaned up) by the next one.
            CmdResult again = lab.load_result({});
            ASSERT_EQ(again.exit_code, 0) << again;
        }
        EXPECT_EQ(iface_state(lab), "loaded");
        EXPECT_EQ(state(), a);
    }
    EXPECT_EQ(killed, kLoadKills) << "load";
    kills += killed;

    fmt::print("{} commands killed\n", kills);
    EXPECT_GE(kills, 125);
    // Traffic was decided all along by rules of A or B: port 9 dropped, port 10 counted.
    EXPECT_GT(traffic.sent(), 1000u);
    EXPECT_GT(rule_packets(1), 100u);
    EXPECT_GT(rule_packets(4), 100u);
    EXPECT_EQ(udp_through(lab, 9, 3), 0);
    EXPECT_EQ(udp_through(lab, 10, 3), 3);
    xdpctl_ok({"lb", "vip", "del", "198.19.0.1:80/tcp"});
}

}  // namespace
}  // namespace xdpctl::test
