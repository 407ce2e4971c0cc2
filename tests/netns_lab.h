// A two-namespace lab for the tests that run xdpctl against real interfaces: a veth pair
// between a "peer" namespace (the traffic source) and a "dut" namespace (where xdpctl is
// loaded), plus the helpers those tests share: running a command with a bound on its time,
// running xdpctl itself, entering a namespace from a thread, reading `stats --json`.
//
// The lab is quiet on purpose, so that counter deltas can be compared exactly: no
// link-local addresses (addrgenmode none), no ARP/ND and no solicited-node multicast
// groups (NOARP, static permanent neighbours both ways), no DAD, no router solicitations.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <future>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "attach/netns.h"
#include "attach/pin_layout.h"
#include "require_root.h"

namespace xdpctl::test {

// ---- commands ---------------------------------------------------------------------------

struct CmdResult {
    std::string cmdline;
    int exit_code = -1;  // -1: killed by a signal, or stopped at the time limit
    bool timed_out = false;
    std::string out;
    std::string err;
};

// For failure messages: the command line, its exit code and what it printed.
std::ostream& operator<<(std::ostream& os, const CmdResult& r);

// Runs argv[0] (searched in PATH) without a shell, stdin from /dev/null, capturing stdout
// and stderr. A command still running at `limit` is killed.
CmdResult run_cmd(const std::vector<std::string>& argv,
                  std::chrono::milliseconds limit = std::chrono::seconds(30));

// Same, for setup steps whose failure makes the test meaningless: throws with the output.
std::string run_ok(const std::vector<std::string>& argv);

// Starts argv[0] (searched in PATH) in the background, stdin from /dev/null, stdout and
// stderr into `log_file` (truncated, or appended to; stderr into `err_file` instead when
// one is named), `extra_env` ("K=V") before the environment. Returns its pid; throws when
// it cannot start. The caller kills and reaps it.
pid_t spawn_logged(const std::vector<std::string>& argv, const std::string& log_file,
                   const std::vector<std::string>& extra_env = {}, bool append = false,
                   const std::string& err_file = {});

// A shell command that undoes a test's setup (deletes its namespaces), run if the test is
// killed by SIGTERM, SIGINT, SIGHUP or SIGPIPE before it could clean up itself. Returns the
// slot to release once the test has cleaned up, or -1 when all are taken.
int register_emergency_cleanup(const std::string& shell_cmd);
void release_emergency_cleanup(int slot);

// The xdpctl under test: $XDPCTL_BIN, set by meson's test() env.
std::string xdpctl_bin();
CmdResult xdpctl(const std::vector<std::string>& args);
// A rule (or any) file with `text` under /tmp, named per process and call; `tag` is in the
// name, for a person reading /tmp.
std::string write_temp_file(const std::string& text, const std::string& tag);
// `xdpctl export`'s output; throws when it fails.
std::string xdpctl_export();
// `xdpctl lb list --json` without its counters: the load balancer's configuration.
nlohmann::json xdpctl_lb_config();
// `xdpctl ARGS`, which must succeed (a test failure with its output otherwise).
void xdpctl_ok(const std::vector<std::string>& args);
// The output of `xdpctl ARGS` (a --json command), parsed; a test failure if it fails.
nlohmann::json xdpctl_json(const std::vector<std::string>& args);
// The filtering policy back to none, as the CLI tests start and end: the policy is shared
// by every interface on the host.
void xdpctl_clear_policy();

// The state the hardening tests (kill -9, upgrades) start from, each command given to `run`
// (this build's xdpctl, or an old release's): rules 1 (drop udp 9), 2 (count udp 10) and 4
// (count udp 12), set "big" (198.19.1.0/24) and rule 3 on it (drop tcp 80 from it), VIP
// kLabVip with one backend (198.19.10.1). A policy the tables decide, as every 0.1.0 one was.
inline constexpr const char* kLabVip = "198.19.0.1:80/tcp";
void make_lab_state(const std::function<void(const std::vector<std::string>&)>& run);

// A CLI test that starts and ends with no policy (it is shared by every interface on the
// host); needs root.
class NoPolicyTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        XDPCTL_REQUIRE_ROOT();
        xdpctl_clear_policy();
    }
    void TearDown() override
    {
        if (::geteuid() == 0)
            xdpctl_clear_policy();
    }
    static std::string exported() { return xdpctl_export(); }
};


// ---- counters ---------------------------------------------------------------------------

struct Ctr {
    uint64_t packets = 0;
    uint64_t bytes = 0;
    bool operator==(const Ctr&) const = default;
};
void PrintTo(const Ctr& c, std::ostream* os);

// Counters keyed "hook/group/name", e.g. "xdp/l3/ipv4" or "tc_egress/verdict/pass".
using CounterMap = std::map<std::string, Ctr>;

// One interface's entry of `xdpctl stats --json`.
struct StatsSnapshot {
    CounterMap counters;
    std::vector<std::string> hooks;  // as present in the JSON, e.g. {"tc_egress", "tc_ingress"}

    // after - this, keeping only the counters that moved: compare it with the complete
    // expectation, so that an unexpected packet shows up as an extra entry.
    CounterMap delta_to(const StatsSnapshot& after) const;
    Ctr get(const std::string& key) const;
};

// Picks the entry of (netns, ifname) out of `stats --json` output; throws if it is missing.
StatsSnapshot parse_stats_json(const std::string& json, const std::string& netns,
                               const std::string& ifname);

// ---- the lab ------------------------------------------------------------------------------

struct LabEnd {
    std::string ns;
    std::string ifname;
    std::string mac;
    std::string ipv4;
    std::string ipv6;
};

class NetnsLab {
public:
    // Builds the namespaces and the veth; throws (after removing what it made) on failure.
    NetnsLab();
    // Unloads xdpctl from the lab, removes its pins, deletes both namespaces. A test killed
    // by SIGTERM/SIGINT/SIGHUP (meson's time limit) gets the same from a signal handler.
    ~NetnsLab();
    NetnsLab(const NetnsLab&) = delete;
    NetnsLab& operator=(const NetnsLab&) = delete;

    const LabEnd& peer() const { return peer_; }
    const LabEnd& dut() const { return dut_; }

    // `xdpctl -n DUT_NS ARGS...`
    CmdResult xdpctl_dut(const std::vector<std::string>& args) const;
    // `xdpctl -n DUT_NS load DUT_IF ARGS...`
    CmdResult load_result(const std::vector<std::string>& args) const;
    // The same for a setup step: throws on a non-zero exit.
    void load(const std::vector<std::string>& args = {}) const;
    // xdpctl's counters for the DUT interface.
    StatsSnapshot stats() const;
    // Polls stats() until done(delta since `before`) or `limit` passes; returns the last
    // delta. For frames whose processing the sender cannot wait for (drops, one-way sends).
    CounterMap wait_delta(const StatsSnapshot& before,
                          const std::function<bool(const CounterMap&)>& done,
                          std::chrono::milliseconds limit = std::chrono::seconds(3)) const;

    // `ping -c count` from the peer to addr; throws unless every echo was answered.
    void ping_from_peer(const std::string& addr, int count) const;

    // /sys/fs/bpf/xdpctl/ns/DEV-INO (the DUT namespace's identity) and its interface directory.
    std::string dut_pin_ns_dir() const;
    std::string dut_pin_dir() const;

private:
    void build();
    void teardown() noexcept;

    LabEnd peer_;
    LabEnd dut_;
    int emergency_slot_ = -1;
};

// Sends n UDP datagrams from the peer to the DUT's IPv4 address and `port`; returns how many
// the DUT's socket received within a short wait.
int udp_through(const NetnsLab& lab, uint16_t port, int n);

// Runs fn on a new thread inside the named network namespace and returns its result (or
// rethrows what it threw). Sockets made there stay in that namespace after fn returns.
template <typename F>
auto in_netns(const std::string& ns, F fn) -> decltype(fn())
{
    return std::async(std::launch::async, [&ns, &fn] {
               NetnsScope scope(ns);
               return fn();
           })
        .get();
}

// Unique per test process and per lab, so that parallel test programs and leftovers of a
// killed run never share a name: "xdpctl-t<pid>-<n><suffix>".
std::string unique_ns_name(const std::string& suffix);

}  // namespace xdpctl::test
