// Decision events (issue 14 item 4): --log in the rule grammar, the image and export; then on
// the lab's veth, a --log drop rule's events read by `xdpctl trace` into a pcap that tcpdump
// reads back as exactly the frames sent, the per-rule rate cap with what it did not send
// counted, and the TC hook.
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netpacket/packet.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>
#include <tuple>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "netns_lab.h"
#include "packet_builder.h"
#include "policy/policy_binary.h"
#include "policy/rule_parse.h"
#include "service/daemon_config.h"
#include "util/error.h"
#include "util/unique_fd.h"

namespace xdpctl::test {
namespace {

using policy::parse_rule;

// ---- the grammar (no root) ------------------------------------------------------------------

TEST(TraceRuleGrammar, LogAndLogRateParseFormatAndEncode)
{
    policy::Rule r = parse_rule({"--proto", "udp", "--action", "drop", "--log"});
    EXPECT_EQ(r.log_rate, policy::kDefaultLogRate);
    EXPECT_NE(policy::format_rule(r).find("--action drop --log"), std::string::npos) << policy::format_rule(r);

    r = parse_rule({"--log-rate", "7", "--log", "--action", "rate-limit", "100"});
    EXPECT_EQ(r.log_rate, 7u);
    const std::string text = policy::format_rule(r);
    EXPECT_NE(text.find("--log --log-rate 7"), std::string::npos) << text;
    // format -> parse is the identity (what export and apply rely on)
    std::istringstream words(text);
    std::vector<std::string> args{std::istream_iterator<std::string>(words), {}};
    EXPECT_EQ(parse_rule(args), r);

    // The policy image keeps it, and reads an image without it.
    policy::Policy p;
    p.rules = {r, parse_rule({"--id", "9", "--fragment", "--action", "pass"})};
    p.rules[0].id = 8;
    EXPECT_EQ(policy::decode_policy(policy::encode_policy(p, {}), "test", nullptr), p);
}

TEST(TraceRuleGrammar, BadLogOptionsNameTheToken)
{
    struct Bad {
        std::vector<std::string> args;
        std::string says;
    };
    const std::vector<Bad> bad = {
        {{"--action", "drop", "--log-rate", "5"}, "--log-rate goes with --log"},
        {{"--action", "drop", "--log", "--log-rate", "0"}, "--log-rate '0'"},
        {{"--action", "drop", "--log", "--log-rate", "lots"}, "--log-rate 'lots'"},
        {{"--action", "drop", "--log", "--log-rate", "1000001"}, "--log-rate '1000001'"},
        {{"--action", "count", "--log"}, "count rule"},
        {{"--action", "drop", "--log", "--log"}, "--log given twice"},
    };
    for (const auto& b : bad) {
        try {
            parse_rule(b.args);
            ADD_FAILURE() << "accepted: " << b.says;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), ExitCode::usage);
            EXPECT_NE(std::string(e.what()).find(b.says), std::string::npos) << e.what();
        }
    }
}

TEST(TraceXdpdConfig, KeepEvents)
{
    EXPECT_EQ(service::parse_daemon_config("", "f").keep_events, 0u);
    EXPECT_EQ(service::parse_daemon_config("keep-events = 50\n", "f").keep_events, 50u);
    for (const char* bad : {"keep-events = 100001\n", "keep-events = -1\n", "keep-events = 5x\n"}) {
        try {
            service::parse_daemon_config(bad, "f");
            ADD_FAILURE() << "accepted: " << bad;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), ExitCode::usage);
            EXPECT_NE(std::string(e.what()).find("f:1: keep-events"), std::string::npos) << e.what();
        }
    }
}

// ---- the lab ------------------------------------------------------------------------------------

constexpr uint16_t kPort = 7777;

// A command running in the background (`xdpctl trace ARGS`, or any argv), stdout and
// stderr to files.
class TraceRun {
public:
    explicit TraceRun(const std::vector<std::string>& args) : TraceRun(trace_argv(args), 0) {}
    TraceRun(std::vector<std::string> argv, int)
        : out_(fmt::format("/tmp/xdpctl-test-trace-{}-{}.out", getpid(), n_)),
          err_(fmt::format("/tmp/xdpctl-test-trace-{}-{}.err", getpid(), n_++))
    {
        pid_ = spawn_logged(argv, out_, {}, false, err_);
    }
    ~TraceRun()
    {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
        std::filesystem::remove(out_);
        std::filesystem::remove(err_);
    }
    // Trace opens the ring and then reads its counters: give it that long before sending.
    void wait_started() const { std::this_thread::sleep_for(std::chrono::milliseconds(700)); }
    // Its exit code once it ends by itself (--count), or SIGINT at `limit`; -1 if killed.
    int finish(std::chrono::milliseconds limit, bool interrupt_now = false)
    {
        const auto end = std::chrono::steady_clock::now() + (interrupt_now ? std::chrono::seconds(5) : limit);
        int status = 0;
        bool sent_int = false;
        for (;;) {
            if (interrupt_now && !sent_int) {
                kill(pid_, SIGINT);
                sent_int = true;
            }
            pid_t r = waitpid(pid_, &status, WNOHANG);
            if (r == pid_)
                break;
            if (std::chrono::steady_clock::now() > end) {
                if (!sent_int) {
                    kill(pid_, SIGINT);
                    sent_int = true;
                } else {
                    kill(pid_, SIGKILL);
                    waitpid(pid_, &status, 0);
                    break;
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::string out() const { return slurp(out_); }
    std::string err() const { return slurp(err_); }

private:
    static std::vector<std::string> trace_argv(const std::vector<std::string>& args)
    {
        std::vector<std::string> argv{xdpctl_bin(), "trace"};
        argv.insert(argv.end(), args.begin(), args.end());
        return argv;
    }
    static std::string slurp(const std::string& path)
    {
        std::ifstream f(path);
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str();
    }
    static inline int n_ = 0;
    std::string out_, err_;
    pid_t pid_ = -1;
};

// A packet socket in `ns` bound to `ifname`: frames sent on it leave by that interface (from
// the peer: into the DUT's XDP and TC ingress; from the DUT: through its TC egress).
UniqueFd raw_socket(const std::string& ns, const std::string& ifname)
{
    return in_netns(ns, [&] {
        UniqueFd fd{socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0)};
        if (!fd)
            throw std::runtime_error(std::string("socket: ") + strerror(errno));
        sockaddr_ll ll{};
        ll.sll_family = AF_PACKET;
        ll.sll_ifindex = int(if_nametoindex(ifname.c_str()));
        if (bind(fd.get(), reinterpret_cast<sockaddr*>(&ll), sizeof(ll)) != 0)
            throw std::runtime_error(std::string("bind: ") + strerror(errno));
        return fd;
    });
}

// UDP frames to kPort, source ports 40001.., each with its own payload length and bytes.
std::vector<std::vector<uint8_t>> known_frames(int n, size_t payload = 0)
{
    std::vector<std::vector<uint8_t>> out;
    for (int i = 0; i < n; i++) {
        PacketBuilder b;
        b.eth(kDstMac, kSrcMac).ipv4({}).udp(uint16_t(40001 + i), kPort).payload(payload ? payload : size_t(10 + i),
                                                                                  uint8_t(0x30 + i));
        out.push_back(b.build());
    }
    return out;
}

// `egress_drop`: the frames leave through a TC egress program that drops them, which the
// packet socket hears of as ENOBUFS (the qdisc layer's NET_XMIT_DROP).
void send_all(int fd, const std::vector<std::vector<uint8_t>>& frames, bool egress_drop = false)
{
    for (const auto& f : frames) {
        const ssize_t n = send(fd, f.data(), f.size(), 0);
        if (egress_drop && n < 0 && errno == ENOBUFS)
            continue;
        ASSERT_EQ(n, ssize_t(f.size())) << strerror(errno);
    }
}

// The frames of a pcap as tcpdump prints them: `-xx` hex dump lines after each header line.
struct TcpdumpFrame {
    std::string header;
    std::vector<uint8_t> bytes;
};

std::vector<TcpdumpFrame> tcpdump_read(const std::string& pcap)
{
    CmdResult r = run_cmd({"tcpdump", "-r", pcap, "-nn", "-xx", "-tt"});
    EXPECT_EQ(r.exit_code, 0) << r;
    std::vector<TcpdumpFrame> out;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("\t0x", 0) == 0 && !out.empty()) {
            std::istringstream hex(line.substr(line.find(':') + 1));
            for (std::string w; hex >> w;)
                for (size_t i = 0; i + 1 < w.size() + 1 && i < w.size(); i += 2)
                    out.back().bytes.push_back(uint8_t(std::stoul(w.substr(i, 2), nullptr, 16)));
        } else if (!line.empty()) {
            out.push_back({line, {}});
        }
    }
    return out;
}

std::vector<nlohmann::json> json_lines(const std::string& text)
{
    std::vector<nlohmann::json> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!line.empty())
            out.push_back(nlohmann::json::parse(line));
    return out;
}

nlohmann::json rule_entry(uint32_t id)
{
    const nlohmann::json list = xdpctl_json({"rule", "list", "--json"});
    for (const auto& r : list["rules"])
        if (r["id"] == id)
            return r;
    ADD_FAILURE() << "no rule " << id;
    return {};
}

uint32_t add_rule(const std::vector<std::string>& args)
{
    std::vector<std::string> argv{"rule", "add"};
    argv.insert(argv.end(), args.begin(), args.end());
    CmdResult r = xdpctl(argv);
    EXPECT_EQ(r.exit_code, 0) << r;
    return uint32_t(std::stoul(r.out));
}

class Trace : public NoPolicyTest {};

// Known frames into a --log drop rule on XDP: trace --count N prints them and writes a pcap
// that tcpdump reads as exactly those frames; the rule counts them as sent.
TEST_F(Trace, XdpDropRuleEventsToPcapAsSent)
{
    NetnsLab lab;
    lab.load({"--hook", "xdp"});
    const uint32_t id = add_rule({"--src", "198.18.0.1/32", "--proto", "udp", "--dport", std::to_string(kPort),
                                  "--action", "drop", "--log"});
    const auto frames = known_frames(5);
    const std::string pcap = fmt::format("/tmp/xdpctl-test-trace-{}.pcap", getpid());
    TraceRun t({"--count", "5", "--pcap", pcap, "--json"});
    t.wait_started();
    UniqueFd raw = raw_socket(lab.peer().ns, lab.peer().ifname);
    send_all(raw.get(), frames);
    ASSERT_EQ(t.finish(std::chrono::seconds(10)), 0) << t.err();

    const auto events = json_lines(t.out());
    ASSERT_EQ(events.size(), frames.size()) << t.out() << t.err();
    for (size_t i = 0; i < events.size(); i++) {
        const auto& e = events[i];
        ASSERT_TRUE(e.is_object()) << t.out();
        EXPECT_EQ(e["rule"], id);
        EXPECT_EQ(e["verdict"], "drop");
        EXPECT_EQ(e["hook"], "xdp");
        EXPECT_EQ(e["iface"], lab.dut().ifname + "@" + lab.dut().ns);
        EXPECT_EQ(e["src"], "198.18.0.1");
        EXPECT_EQ(e["dst"], "198.19.0.2");
        EXPECT_EQ(e["sport"], 40001 + int(i));
        EXPECT_EQ(e["dport"], kPort);
        EXPECT_EQ(e["len"], frames[i].size());
    }

    const auto dumped = tcpdump_read(pcap);
    ASSERT_EQ(dumped.size(), frames.size());
    for (size_t i = 0; i < frames.size(); i++) {
        EXPECT_NE(dumped[i].header.find(fmt::format("198.18.0.1.{} > 198.19.0.2.{}: UDP", 40001 + i, kPort)),
                  std::string::npos)
            << dumped[i].header;
        EXPECT_EQ(dumped[i].bytes, frames[i]) << "frame " << i;
    }
    const nlohmann::json r = rule_entry(id);
    EXPECT_EQ(r["log_rate"], policy::kDefaultLogRate);
    EXPECT_EQ(r["packets"], frames.size());
    EXPECT_EQ(r["events"], frames.size());
    EXPECT_EQ(r["events_not_sent"], 0);
    std::filesystem::remove(pcap);
}

// 10x the rate offered at once: what trace got stays within the rule's rate (its one-second
// burst plus what the time taken refilled), every packet is either sent or counted as not
// sent, and SIGINT ends trace with the pcap holding exactly what it printed.
TEST_F(Trace, RateCapHoldsAtTenTimesTheRate)
{
    NetnsLab lab;
    lab.load({"--hook", "xdp"});
    constexpr int kRate = 20, kOffered = 10 * kRate;
    const uint32_t id = add_rule({"--src", "198.18.0.1/32", "--proto", "udp", "--action", "drop", "--log",
                                  "--log-rate", std::to_string(kRate)});
    const std::string pcap = fmt::format("/tmp/xdpctl-test-trace-rate-{}.pcap", getpid());
    TraceRun t({"--pcap", pcap});
    t.wait_started();
    UniqueFd raw = raw_socket(lab.peer().ns, lab.peer().ifname);
    const auto frame = known_frames(1)[0];
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kOffered; i++)
        ASSERT_EQ(send(raw.get(), frame.data(), frame.size(), 0), ssize_t(frame.size()));
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the last events to the reader
    ASSERT_EQ(t.finish(std::chrono::milliseconds(0), true), 0) << t.err();

    const nlohmann::json r = rule_entry(id);
    const uint64_t sent = r["events"], not_sent = r["events_not_sent"];
    EXPECT_EQ(r["packets"], kOffered);
    EXPECT_EQ(sent + not_sent, uint64_t(kOffered)) << r;
    // Slack: each CPU's share rounds up to a whole event.
    const double cap = kRate * (1.0 + took) + 2.0;
    EXPECT_LE(double(sent), cap) << "took " << took << " s";
    EXPECT_GE(sent, uint64_t(kRate) / 4) << "the burst sent far too little";

    std::istringstream lines(t.out());
    uint64_t printed = 0;
    for (std::string l; std::getline(lines, l);)
        printed += l.find(fmt::format("rule {} drop udp 198.18.0.1:40001 -> 198.19.0.2:{}", id, kPort)) !=
                   std::string::npos;
    EXPECT_EQ(printed, sent) << t.out();
    EXPECT_NE(t.err().find(fmt::format("{} events", sent)), std::string::npos) << t.err();
    EXPECT_EQ(tcpdump_read(pcap).size(), sent) << "the pcap holds what trace printed, flushed at SIGINT";
    std::filesystem::remove(pcap);
}

// The TC hook: an egress --log rule's events carry hook tc-egress.
TEST_F(Trace, TcEgressRuleSendsEvents)
{
    NetnsLab lab;
    lab.load({"--hook", "tc"});
    const uint32_t id = add_rule({"--dir", "egress", "--dst", "198.19.0.2/32", "--proto", "udp", "--action",
                                  "drop", "--log", "--log-rate", "1000"});
    const auto frames = known_frames(3);
    TraceRun t({"--count", "3", "--rule", std::to_string(id), "--json"});
    t.wait_started();
    UniqueFd raw = raw_socket(lab.dut().ns, lab.dut().ifname);
    send_all(raw.get(), frames, true);
    ASSERT_EQ(t.finish(std::chrono::seconds(10)), 0) << t.err();
    const auto events = json_lines(t.out());
    ASSERT_EQ(events.size(), frames.size()) << t.out() << t.err();
    for (size_t i = 0; i < events.size(); i++) {
        EXPECT_EQ(events[i]["hook"], "tc-egress");
        EXPECT_EQ(events[i]["rule"], id);
        EXPECT_EQ(events[i]["sport"], 40001 + int(i));
        EXPECT_EQ(events[i]["caplen"], frames[i].size());
    }
}

// The XDP program's paths (from `status --json`) and JIT size.
// The XDP program's paths, JIT bytes and name, as `status` shows them.
std::tuple<std::vector<std::string>, uint64_t, std::string> xdp_program()
{
    const nlohmann::json st = xdpctl_json({"status", "--json"});
    for (const auto& i : st["interfaces"])
        for (const auto& p : i["programs"])
            if (p["hook"] == "xdp")
                return {p["paths"].get<std::vector<std::string>>(), p["jited_bytes"].get<uint64_t>(),
                        p["name"].get<std::string>()};
    ADD_FAILURE() << "no XDP program: " << st.dump();
    return {};
}

// The log code is in a program only while a rule has --log: a policy without one runs the
// very program it ran before (same JIT size), whichever shape decides it (small rules, whose
// own program has no log path at all; the tables, whose records the loader reads back to
// know).
TEST_F(Trace, LogPathOnlyWhileARuleLogs)
{
    NetnsLab lab;
    lab.load({"--hook", "xdp"});
    using Paths = std::vector<std::string>;
    add_rule({"--proto", "udp", "--dport", "9", "--action", "drop"});
    const auto [paths0, jit0, name0] = xdp_program();
    EXPECT_EQ(paths0, Paths{"small"});
    EXPECT_EQ(name0, "xdpctl_sml_only");
    const uint32_t logging = add_rule({"--proto", "udp", "--dport", "10", "--action", "drop", "--log"});
    const auto [paths1, jit1, name1] = xdp_program();
    EXPECT_EQ(paths1, (Paths{"small", "log"}));
    EXPECT_EQ(name1, "xdpctl_xdp") << "the small rules' own program has no log path";
    xdpctl_ok({"rule", "del", std::to_string(logging)});
    const auto [paths2, jit2, name2] = xdp_program();
    EXPECT_EQ(paths2, Paths{"small"});
    EXPECT_EQ(name2, name0);
    EXPECT_EQ(jit2, jit0);

    // The tables: more rules than the small shape takes, on several fields.
    std::string file = "default pass\n";
    for (int i = 0; i < 12; i++)
        file += fmt::format("rule --id {} --src 198.18.{}.0/24 --proto udp --dport {} --action drop{}\n", 100 + i, i, 1000 + i,
                            i == 11 ? " --log" : "");
    const std::string path = write_temp_file(file, "trace-tables");
    xdpctl_ok({"apply", path});
    const auto [paths3, jit3, name3] = xdp_program();
    EXPECT_NE(std::find(paths3.begin(), paths3.end(), "tables"), paths3.end());
    EXPECT_NE(std::find(paths3.begin(), paths3.end(), "log"), paths3.end());
    xdpctl_ok({"rule", "del", "111"});
    const auto [paths4, jit4, name4] = xdp_program();
    EXPECT_EQ(name4, name3);
    EXPECT_NE(std::find(paths4.begin(), paths4.end(), "tables"), paths4.end());
    EXPECT_EQ(std::find(paths4.begin(), paths4.end(), "log"), paths4.end());
    EXPECT_LT(jit4, jit3);
    std::filesystem::remove(path);
}

// GET `path` from 127.0.0.1:port: {status code, body}; {0, ""} when nothing answers.
std::pair<int, std::string> http_get(uint16_t port, const std::string& path)
{
    UniqueFd s{socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{2, 0};
    setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
        return {0, ""};
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if (send(s.get(), req.data(), req.size(), 0) != ssize_t(req.size()))
        return {0, ""};
    std::string resp;
    char buf[4096];
    for (ssize_t n; (n = recv(s.get(), buf, sizeof buf, 0)) > 0;)
        resp.append(buf, size_t(n));
    const auto body = resp.find("\r\n\r\n");
    if (resp.rfind("HTTP/1.1 ", 0) != 0 || body == std::string::npos)
        return {0, resp};
    return {std::stoi(resp.substr(9, 3)), resp.substr(body + 4)};
}

// xdpd with keep-events = 3 serves the last three events of a --log rule at /events.
TEST_F(Trace, XdpdKeepsTheLastEvents)
{
    const char* xdpd = std::getenv("XDPD_BIN");
    if (!xdpd || !*xdpd)
        GTEST_SKIP() << "XDPD_BIN is not set (meson test sets it)";
    NetnsLab lab;
    lab.load({"--hook", "xdp"});
    const uint32_t id = add_rule({"--src", "198.18.0.1/32", "--proto", "udp", "--action", "drop", "--log"});
    const std::string conf = write_temp_file("keep-events = 3\n", "trace-xdpd");
    const uint16_t port = uint16_t(20000 + getpid() % 20000);
    TraceRun d({xdpd, "--config", conf, "--metrics-listen", fmt::format("127.0.0.1:{}", port), "--state-dir", ""}, 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::pair<int, std::string> got;
    while ((got = http_get(port, "/events")).first != 200 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_EQ(got.first, 200) << got.second << d.err() << d.out();

    UniqueFd raw = raw_socket(lab.peer().ns, lab.peer().ifname);
    send_all(raw.get(), known_frames(5));
    std::vector<int> sports;
    while (std::chrono::steady_clock::now() < deadline) {
        got = http_get(port, "/events");
        sports.clear();
        for (const auto& e : nlohmann::json::parse(got.second))
            if (e["rule"] == id)
                sports.push_back(e["sport"].get<int>());
        if (sports.size() == 3 && sports.back() == 40005)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(sports, (std::vector<int>{40003, 40004, 40005})) << got.second;
    EXPECT_EQ(http_get(port, "/nothing").first, 404);
    EXPECT_EQ(d.finish(std::chrono::milliseconds(0), true), 0) << d.out() << d.err();
    std::filesystem::remove(conf);
}

// --log and --log-rate survive export -> apply; a rule without --log stays without.
TEST_F(Trace, ExportRoundTripsLog)
{
    add_rule({"--src", "198.18.0.0/24", "--action", "drop", "--log", "--log-rate", "7"});
    add_rule({"--src", "198.18.1.0/24", "--action", "pass", "--log"});
    add_rule({"--src", "198.18.2.0/24", "--action", "drop"});
    const std::string first = exported();
    EXPECT_NE(first.find("--log --log-rate 7"), std::string::npos) << first;
    xdpctl_clear_policy();
    const std::string file = write_temp_file(first, "trace-export");
    CmdResult a = xdpctl({"apply", file});
    ASSERT_EQ(a.exit_code, 0) << a;
    EXPECT_EQ(exported(), first);
    std::filesystem::remove(file);

    // A bad --log-rate in a file names its line and changes nothing.
    const std::string bad = write_temp_file("rule --action drop\nrule --action drop --log --log-rate x\n", "trace-bad");
    CmdResult b = xdpctl({"apply", bad});
    EXPECT_EQ(b.exit_code, 2) << b;
    EXPECT_NE(b.err.find(":2"), std::string::npos) << b;
    EXPECT_NE(b.err.find("--log-rate 'x'"), std::string::npos) << b;
    EXPECT_EQ(exported(), first);
    std::filesystem::remove(bad);
}

}  // namespace
}  // namespace xdpctl::test
