// xdpctl-pktgen: a packet generator for benchmarks on veth (and any interface with XDP
// transmit), built on BPF_PROG_TEST_RUN's live-frames mode since this kernel has no pktgen
// module. Prints the achieved rate every second and one JSON line at the end.
// Exit codes: 0 done, 1 runtime error, 2 usage error.
#include <arpa/inet.h>

#include <cstdio>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "generator.h"
#include "util/libbpf_log.h"
#include "attach/netns.h"

using namespace xdpctl;
using namespace xdpctl::pktgen;

namespace {

Mac parse_mac(const std::string& s, const char* what)
{
    Mac m{};
    unsigned b[6];
    char tail;
    if (std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
                    &b[5], &tail) != 6)
        fail_usage("{} '{}': expected a MAC address like 02:00:00:00:00:02", what, s);
    for (int i = 0; i < 6; i++)
        m[size_t(i)] = uint8_t(b[i]);
    return m;
}

std::string mac_str(const Mac& m)
{
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4],
                       m[5]);
}

std::string rate_str(double pps)
{
    if (pps >= 1e6)
        return fmt::format("{:.3f} Mpps", pps / 1e6);
    if (pps >= 1e3)
        return fmt::format("{:.3f} kpps", pps / 1e3);
    return fmt::format("{:.0f} pps", pps);
}

}  // namespace

int main(int argc, char** argv)
{
    CLI::App app{"xdpctl-pktgen: send frames out of an interface through XDP transmit "
                 "(BPF_PROG_TEST_RUN live frames), for benchmarks"};
    app.name("xdpctl-pktgen");

    GenConfig c;
    std::string netns, src, dst, sport = "1024", dport = "9", proto = "udp", flows = "seq";
    std::string dst_mac, src_mac, cpus;
    bool ipv6 = false, quiet = false;
    int vlan = 0;
    app.add_option("iface", c.iface, "Interface to send from (one end of a veth)")->required();
    app.add_option("--netns", netns,
                   "Run in this network namespace (/run/netns/NAME, as 'ip netns add' makes)");
    app.add_option("-t,--threads", c.threads, "Sending threads, one per CPU")
        ->capture_default_str();
    app.add_option("--cpus", cpus, "CPUs for the threads, comma-separated (default: the first ones)");
    app.add_option("-s,--size", c.frame_size,
                   "Frame size in bytes with the 4-byte FCS, as RFC 2544 counts (64-1518)")
        ->capture_default_str();
    app.add_flag("-6,--ipv6", ipv6, "IPv6 (default addresses 2001:2::1 -> 2001:2::2)");
    app.add_option("--proto", proto, "udp or tcp (TCP frames carry ACK)")
        ->check(CLI::IsMember({"udp", "tcp"}))
        ->capture_default_str();
    app.add_option("--vlan", vlan, "Add an 802.1Q tag with this VLAN ID");
    app.add_option("--src", src,
                   "Source addresses: ADDR, PREFIX/LEN or FIRST-LAST (default 198.18.0.1)");
    app.add_option("--dst", dst,
                   "Destination addresses: ADDR, PREFIX/LEN or FIRST-LAST (default 198.18.0.2)");
    app.add_option("--sport", sport, "Source ports: PORT or FIRST-LAST")->capture_default_str();
    app.add_option("--dport", dport, "Destination ports: PORT or FIRST-LAST")->capture_default_str();
    app.add_option("--flows", flows,
                   "How frames walk the ranges: seq (every combination in turn) or random")
        ->check(CLI::IsMember({"seq", "random"}))
        ->capture_default_str();
    app.add_option("-c,--count", c.count, "Stop after this many frames in all");
    app.add_option("-d,--duration", c.duration,
                   "Stop after this many seconds (default 10 when no --count)");
    app.add_option("-r,--rate", c.rate, "Target frames per second in all; 0: as fast as possible")
        ->capture_default_str();
    app.add_option("--batch", c.batch, "Frames per test-run batch (1-256)")->capture_default_str();
    app.add_option("--dst-mac", dst_mac,
                   "Destination MAC (default broadcast; give the peer's for its IP stack to "
                   "treat frames as its own)");
    app.add_option("--src-mac", src_mac, "Source MAC (default the interface's)");
    app.add_flag("-q,--quiet", quiet, "No per-second lines, only the final JSON");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        return rc == 0 ? 0 : int(ExitCode::usage);
    }

    libbpf_log_start();
    try {
        if (!cpus.empty()) {
            for (const auto& part : CLI::detail::split(cpus, ',')) {
                unsigned cpu;
                if (!CLI::detail::lexical_cast(part, cpu))
                    fail_usage("--cpus '{}': expected CPU numbers separated by commas", cpus);
                c.cpus.push_back(cpu);
            }
            if (app.count("--threads") == 0)
                c.threads = unsigned(c.cpus.size());
        }
        c.src = parse_addr_range(src.empty() ? (ipv6 ? "2001:2::1" : "198.18.0.1") : src, "--src");
        c.dst = parse_addr_range(dst.empty() ? (ipv6 ? "2001:2::2" : "198.18.0.2") : dst, "--dst");
        if (ipv6 && (!c.src.ipv6 || !c.dst.ipv6))
            fail_usage("--ipv6 with an IPv4 --src or --dst");
        c.sport = parse_port_range(sport, "--sport");
        c.dport = parse_port_range(dport, "--dport");
        c.tcp = proto == "tcp";
        c.order = flows == "random" ? FlowOrder::random : FlowOrder::sequential;
        if (app.count("--vlan")) {
            if (vlan < 0 || vlan > 4094)
                fail_usage("--vlan {}: VLAN IDs are 0 to 4094", vlan);
            c.vlan = uint16_t(vlan);
        }
        if (!dst_mac.empty())
            c.dst_mac = parse_mac(dst_mac, "--dst-mac");
        if (!src_mac.empty())
            c.src_mac = parse_mac(src_mac, "--src-mac");
        if (!c.count && c.duration <= 0 && app.count("--duration") == 0)
            c.duration = 10;
        validate(c);
        for (const AddrRange* r : {&c.src, &c.dst})
            if (!in_benchmark_ranges(*r))
                fmt::print(stderr,
                           "xdpctl-pktgen: warning: {} is outside the benchmarking ranges "
                           "198.18.0.0/15 and 2001:2::/48\n",
                           r->str());

        NetnsScope ns(netns);
        const GenResult r = run(c, [&](double t, uint64_t total, double pps) {
            if (!quiet)
                fmt::print("{:7.2f} s  {:>14}  {:>14} frames\n", t, rate_str(pps), total);
            std::fflush(stdout);
        });

        // veth counts what its peer took and what a full ring refused; frames sent while the
        // peer has no NAPI (no XDP program, GRO off) are dropped before either counter.
        const uint64_t accounted = r.xmit.xmit + r.xmit.errors;
        const uint64_t lost = r.xmit.errors + (r.packets > accounted ? r.packets - accounted : 0);
        if (r.xmit.known && lost)
            fmt::print(stderr,
                       "xdpctl-pktgen: warning: the peer of '{}' did not take {} of {} frames: a "
                       "veth peer takes XDP frames only with an XDP program or GRO on "
                       "(ethtool -K PEER gro on), and drops them when its ring is full\n",
                       c.iface, lost, r.packets);
        nlohmann::json j = {
            {"tool", "xdpctl-pktgen"},
            {"iface", c.iface},
            {"netns", netns},
            {"driver", r.dev.driver},
            {"threads", c.threads},
            {"size", c.frame_size},
            {"frame_bytes", r.frame_bytes},
            {"family", c.src.ipv6 ? "ipv6" : "ipv4"},
            {"proto", c.tcp ? "tcp" : "udp"},
            {"vlan", c.vlan ? nlohmann::json(*c.vlan) : nlohmann::json(nullptr)},
            {"src", c.src.str()},
            {"dst", c.dst.str()},
            {"sport", c.sport.str()},
            {"dport", c.dport.str()},
            {"flows", r.flows},
            {"order", flows},
            {"dst_mac", mac_str(c.dst_mac.value_or(Mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}))},
            {"target_pps", c.rate},
            {"packets", r.packets},
            {"duration_s", r.seconds},
            {"pps", r.seconds > 0 ? double(r.packets) / r.seconds : 0.0},
            {"interrupted", r.interrupted},
        };
        if (r.xmit.known)
            j["peer"] = {{"delivered", r.xmit.xmit}, {"not_delivered", lost}};
        j["per_thread"] = nlohmann::json::array();
        for (const auto& t : r.threads)
            j["per_thread"].push_back({{"cpu", t.cpu},
                                       {"packets", t.packets},
                                       {"pps", t.seconds > 0 ? double(t.packets) / t.seconds : 0.0}});
        fmt::print("{}\n", j.dump());
        return r.interrupted ? 130 : 0;
    } catch (const Error& e) {
        fmt::print(stderr, "xdpctl-pktgen: {}\n", e.what());
        return int(e.code());
    } catch (const std::exception& e) {
        fmt::print(stderr, "xdpctl-pktgen: {}\n", e.what());
        return int(ExitCode::runtime);
    }
}
