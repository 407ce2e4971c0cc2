// `xdpctl explain PACKET` / `xdpctl explain --pcap FILE`: what the loaded policy does with a
// packet, and why: the program that would see it runs on the packet (BPF_PROG_TEST_RUN, in
// explain mode: nothing is counted) and reports its verdict, the deciding rule and the
// headers it parsed. lib/explain/explain_run.h says which program and interface.
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <utility>
#include <variant>

#include <fmt/core.h>

#include "command.h"
#include "stats/counters.h"
#include "util/error.h"
#include "explain/explain_run.h"
#include "explain/packet_spec.h"
#include "explain/pcap_file.h"
#include "attach/loader.h"
#include "policy/rule_parse.h"
#include "policy_json.h"

namespace xdpctl::ctl {

using namespace xdpctl::explain;
using namespace xdpctl::policy;

namespace {

struct Opts {
    std::string pcap;
    std::string iface;
    std::string dir = "ingress";
    bool json = false;
    std::vector<std::string> words;
    bool arrow = false;
};

std::string addr_text(bool v6, const __u32* a)
{
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(v6 ? AF_INET6 : AF_INET, a, buf, sizeof(buf));
    return buf;
}

std::vector<std::string> flag_names(uint8_t f)
{
    static const char* names[] = {"fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr"};
    std::vector<std::string> out;
    for (int i = 0; i < 8; i++)
        if (f & (1u << i))
            out.push_back(names[i]);
    return out;
}

bool is_ip(const xdpctl_explain& e)
{
    return e.l3_cnt == XDPCTL_CNT_L3_IPV4 || e.l3_cnt == XDPCTL_CNT_L3_IPV6;
}

// Ports are in network order in the record for TCP/UDP, ICMP type and code are numbers.
bool has_ports(const xdpctl_explain& e)
{
    return e.l4_cnt == XDPCTL_CNT_L4_TCP || e.l4_cnt == XDPCTL_CNT_L4_UDP;
}
bool has_icmp(const xdpctl_explain& e)
{
    return e.l4_cnt == XDPCTL_CNT_L4_ICMP || e.l4_cnt == XDPCTL_CNT_L4_ICMPV6;
}

// Which headers were parsed: the parser stops at a malformed one, so only what it reached.
nlohmann::json headers_json(const xdpctl_explain& e)
{
    const bool v6 = e.l3_cnt == XDPCTL_CNT_L3_IPV6;
    nlohmann::json h = {{"len", e.len}};
    nlohmann::json vlans = nlohmann::json::array();
    for (int i = 0; i < e.n_vlans && i < XDPCTL_MAX_VLANS; i++)
        vlans.push_back(e.vlan_id[i]);
    h["vlans"] = vlans;
    h["ethertype"] = e.l3_proto ? nlohmann::json(fmt::format("{:#06x}", e.l3_proto)) : nlohmann::json();
    h["l3"] = std::string(counter_name(e.l3_cnt));
    bool l3_parsed = is_ip(e) && (!e.malformed || e.malformed >= XDPCTL_CNT_BAD_L4_TRUNCATED);
    if (l3_parsed) {
        h["src"] = addr_text(v6, e.saddr);
        h["dst"] = addr_text(v6, e.daddr);
        h["proto"] = proto_name(e.l4_proto);
        h["fragment"] = e.frag == 2   ? nlohmann::json("later")
                        : e.frag == 1 ? nlohmann::json("first")
                                      : nlohmann::json();
    }
    if (e.l4_cnt < XDPCTL_CNT_MAX)
        h["l4"] = std::string(counter_name(e.l4_cnt));
    if (!e.malformed && has_ports(e)) {
        h["sport"] = ntohs(e.sport);
        h["dport"] = ntohs(e.dport);
        if (e.l4_cnt == XDPCTL_CNT_L4_TCP)
            h["tcp_flags"] = flag_names(e.tcp_flags);
    }
    if (!e.malformed && has_icmp(e)) {
        h["icmp_type"] = e.sport;
        h["icmp_code"] = e.dport;
    }
    h["malformed"] = e.malformed ? nlohmann::json(std::string(counter_name(int(e.malformed))))
                                 : nlohmann::json();
    return h;
}

// "60 bytes, vlan 10, ipv4 198.18.0.2 -> 198.19.0.1, tcp 1234 -> 80 [syn]"
std::string headers_text(const ExplainOutcome& o)
{
    const xdpctl_explain& e = o.rec;
    const nlohmann::json h = headers_json(e);
    std::string s = e.len < o.frame_len
                        ? fmt::format("{} bytes (the program saw the first {}: the test run passes "
                                      "the rest of a frame over a page as fragments)",
                                      o.frame_len, e.len)
                        : fmt::format("{} bytes", e.len);
    for (const auto& v : h["vlans"])
        s += fmt::format(", vlan {}", v.get<int>());
    if (!h.contains("src")) {
        s += ", " + h["l3"].get<std::string>();
        if (e.l3_proto)
            s += fmt::format(" (ethertype {})", h["ethertype"].get<std::string>());
    } else {
        s += fmt::format(", {} {} -> {}, {}", h["l3"].get<std::string>(), h["src"].get<std::string>(),
                         h["dst"].get<std::string>(), h["proto"].get<std::string>());
        if (h.contains("sport"))
            s += fmt::format(" {} -> {}", h["sport"].get<int>(), h["dport"].get<int>());
        if (h.contains("tcp_flags")) {
            std::string f;
            for (const auto& n : h["tcp_flags"])
                f += (f.empty() ? "" : ",") + n.get<std::string>();
            s += " [" + (f.empty() ? "no flags" : f) + "]";
        }
        if (h.contains("icmp_type"))
            s += fmt::format(" type {} code {}", h["icmp_type"].get<int>(), h["icmp_code"].get<int>());
        if (!h["fragment"].is_null())
            s += h["fragment"] == "later" ? ", later fragment (no L4 header)" : ", first fragment";
    }
    if (e.malformed)
        s += ", malformed: " + h["malformed"].get<std::string>();
    return s;
}

std::string decided_by(const ExplainOutcome& o)
{
    const xdpctl_explain& e = o.rec;
    if (e.malformed)
        return "malformed";
    if (!o.policy)
        return "no_policy";
    return e.rule_id ? "rule" : "default";
}

nlohmann::json rule_ref_json(const Explainer& ex, uint32_t id)
{
    nlohmann::json j = {{"id", id}};
    if (const Rule* r = ex.rule(id)) {
        j["action"] = action_name(r->action.kind);
        j["rule"] = format_rule(*r);
    }
    return j;
}

nlohmann::json outcome_json(const Explainer& ex, const ExplainOutcome& o)
{
    const xdpctl_explain& e = o.rec;
    nlohmann::json j = {{"verdict", e.verdict == XDPCTL_ACT_DROP ? "drop" : "pass"},
                        {"decided_by", decided_by(o)}};
    j["rule"] = e.rule_id ? rule_ref_json(ex, e.rule_id) : nlohmann::json();
    nlohmann::json counted = nlohmann::json::array();
    for (uint32_t i = 0; i < e.n_counted && i < XDPCTL_EXPLAIN_MAX_COUNTED; i++)
        counted.push_back(rule_ref_json(ex, e.counted[i]));
    j["counted"] = counted;
    j["counted_total"] = e.n_counted;
    j["hook"] = std::string(hook_name(int(e.hook)));
    j["attached"] = ex.attached();
    j["interface"] = ex.ifname();
    j["netns"] = ex.netns();
    j["ifindex"] = e.ifindex;
    j["headers"] = headers_json(e);
    j["frame_len"] = o.frame_len;
    return j;
}

std::string rule_line(const Explainer& ex, uint32_t id)
{
    const Rule* r = ex.rule(id);
    return r ? fmt::format("rule {}: {}", id, format_rule(*r)) : fmt::format("rule {}", id);
}

std::string verdict_text(const Explainer& ex, const ExplainOutcome& o)
{
    const xdpctl_explain& e = o.rec;
    std::string v = e.verdict == XDPCTL_ACT_DROP ? "drop" : "pass";
    if (e.malformed)
        return fmt::format("{} (malformed frame, {}: malformed frames get 'load --malformed {}')", v,
                           counter_name(int(e.malformed)), malformed_name(ex.malformed_action()));
    if (!o.policy)
        return v + " (no filtering policy is in force)";
    if (!e.rule_id)
        return v + " (no rule decided: the default action)";
    const Rule* r = ex.rule(e.rule_id);
    if (r && r->action.kind == ActionKind::rate_limit)
        return fmt::format("{} (rule {}, rate-limit {}/s: over the rate now)", v, e.rule_id,
                           r->action.rate_pps);
    return fmt::format("{} (rule {})", v, e.rule_id);
}

std::string counted_text(const Explainer& ex, const xdpctl_explain& e)
{
    std::string s;
    for (uint32_t i = 0; i < e.n_counted && i < XDPCTL_EXPLAIN_MAX_COUNTED; i++) {
        const Rule* r = ex.rule(e.counted[i]);
        std::string what = !r ? "" : r->action.kind == ActionKind::rate_limit ? " (rate-limit: within the rate)" : " (count)";
        s += fmt::format("{}rule {}{}", s.empty() ? "" : ", ", e.counted[i], what);
    }
    if (e.n_counted > XDPCTL_EXPLAIN_MAX_COUNTED)
        s += fmt::format(" and {} more", e.n_counted - XDPCTL_EXPLAIN_MAX_COUNTED);
    return s;
}

std::string program_text(const Explainer& ex)
{
    std::string hook(hook_name(ex.hook()));
    if (ex.ifname().empty())
        return fmt::format("{} (no interface given: the packet comes in on lo)", hook);
    IfaceRef ref{ex.netns(), ex.ifname()};
    return fmt::format("{} on {} (ifindex {}){}", hook, ref.display(), ex.ifindex(),
                       ex.attached() ? "" : ": xdpctl is not attached there, the same program ran unattached");
}

void print_one(const GlobalOptions& g, const Opts& o, const Explainer& ex, const ExplainOutcome& out)
{
    if (o.json || g.pretty) {
        print_json(g, outcome_json(ex, out));
        return;
    }
    const xdpctl_explain& e = out.rec;
    fmt::print("verdict: {}\n", verdict_text(ex, out));
    if (e.rule_id)
        fmt::print("decided by: {}\n", rule_line(ex, e.rule_id));
    if (e.n_counted)
        fmt::print("matched on the way: {}\n", counted_text(ex, e));
    fmt::print("program: {}\n", program_text(ex));
    fmt::print("packet: {}\n", headers_text(out));
}

// One line a packet: "3: drop by rule 2 | 60 bytes, ipv4 ..."
void print_pcap_line(const GlobalOptions& g, const Opts& o, const Explainer& ex,
                     const PcapPacket& p, const ExplainOutcome& out)
{
    const xdpctl_explain& e = out.rec;
    if (o.json || g.pretty) {
        nlohmann::json j = outcome_json(ex, out);
        j["packet"] = p.index;
        j["orig_len"] = p.orig_len;
        print_json(g, j);
        return;
    }
    std::string why = e.malformed ? fmt::format("malformed {}", counter_name(int(e.malformed)))
                      : !out.policy ? "no policy"
                      : e.rule_id ? fmt::format("rule {}", e.rule_id)
                                  : "default";
    std::string cut = p.orig_len > p.data.size()
                          ? fmt::format(" (captured {} of {} bytes)", p.data.size(), p.orig_len)
                          : "";
    std::string counted = e.n_counted ? " | matched " + counted_text(ex, e) : "";
    fmt::print("{}: {} by {}{} | {}{}\n", p.index, e.verdict == XDPCTL_ACT_DROP ? "drop" : "pass",
               why, counted, headers_text(out), cut);
}

// explain is a reader and takes no lock: runs that a commit came during are done again
// (against the new policy), so that the rule texts printed are those of the generation the
// program read. Returns the Explainer (whose policy the results name) and what runs gave.
template <typename F>
auto runs_of_one_generation(const std::string& netns, const std::string& iface, Direction dir,
                            F runs)
{
    constexpr int attempts = 10;
    for (int attempt = 1;; attempt++) {
        auto ex = std::make_unique<Explainer>(netns, iface, dir);
        auto results = runs(std::as_const(*ex));
        if (!ex->policy_changed())
            return std::pair{std::move(ex), std::move(results)};
        if (attempt == attempts)
            fail("the policy changed during each of {} tries to explain: try again", attempts);
    }
}

int run_explain(const GlobalOptions& g, const Opts& o, const std::vector<std::string>& words)
{
    Direction dir = Direction::ingress;
    if (o.dir == "egress")
        dir = Direction::egress;
    else if (o.dir != "ingress")
        fail_usage("--dir '{}': expected ingress or egress", o.dir);
    if (!o.iface.empty())
        validate_ifname(o.iface);
    if (!g.netns.empty())
        validate_netns_name(g.netns);

    if (!o.pcap.empty()) {
        if (!words.empty())
            fail_usage("'{}': give a packet or --pcap, not both", words.front());
        std::vector<PcapPacket> pkts = read_pcap(o.pcap);
        // Each packet's outcome, or why it has none.
        using Result = std::variant<ExplainOutcome, std::string>;
        auto [ex, results] = runs_of_one_generation(g.netns, o.iface, dir, [&](const Explainer& e) {
            std::vector<Result> rs;
            for (const auto& p : pkts) {
                try {
                    rs.emplace_back(e.run(p.data));
                } catch (const Error& err) {
                    rs.emplace_back(std::string(err.what()));
                }
            }
            return rs;
        });
        int failed = 0;
        for (size_t i = 0; i < pkts.size(); i++) {
            const PcapPacket& p = pkts[i];
            if (const auto* out = std::get_if<ExplainOutcome>(&results[i])) {
                print_pcap_line(g, o, *ex, p, *out);
                continue;
            }
            failed++;
            const std::string& err = std::get<std::string>(results[i]);
            if (o.json || g.pretty)
                print_json(g, {{"packet", p.index}, {"error", err}});
            else
                fmt::print("{}: error: {}\n", p.index, err);
        }
        std::fflush(stdout);  // the lines before the summary on stderr
        if (failed)
            fail("{} of {} packets could not be explained", failed, pkts.size());
        return 0;
    }

    if (words.empty())
        fail_usage("explain: give a packet (e.g. 'tcp 198.18.0.2:1234 -> 198.19.0.1:80') or --pcap FILE");
    PacketSpec spec = parse_packet_spec(words);
    std::string iface = o.iface;
    if (!spec.iif.empty()) {
        if (!iface.empty() && iface != spec.iif)
            fail_usage("iif '{}': the packet names another interface than --iface '{}'", spec.iif, iface);
        iface = spec.iif;
    }
    const std::vector<uint8_t> frame = build_frame(spec);
    auto [ex, out] = runs_of_one_generation(g.netns, iface, dir,
                                            [&](const Explainer& e) { return e.run(frame); });
    print_one(g, o, *ex, out);
    return 0;
}

}  // namespace

void add_explain_command(CLI::App& app, const GlobalOptions& g, Runner& run)
{
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand(
        "explain",
        "What the policy does with a packet, and why: 'tcp|udp|icmp|icmpv6|proto N "
        "SRC[:PORT] -> DST[:PORT] [vlan ID] [iif IFACE] [flags syn,ack] [fragment] [len N]' "
        "(IPv6 with a port as [ADDR]:PORT), or every packet of --pcap FILE. Changes no counter");
    cmd->add_option("--pcap", o->pcap, "Explain every packet of this capture file (pcap or pcapng, Ethernet)");
    cmd->add_option("-i,--iface", o->iface,
                    "The interface the packet comes in on (or leaves by, --dir egress): what --iif "
                    "rules see, and whose program runs");
    cmd->add_option("--dir", o->dir, "ingress (default) or egress");
    cmd->add_flag("-j,--json", o->json, "JSON output (keys in docs/cli.md); one object a packet");
    cmd->add_option("packet", o->words, "The packet, best quoted as one argument");
    // Unquoted, the packet's "->" looks like an option to CLI11: it is taken as a flag, and
    // put back between the source and the destination (after the protocol and the source,
    // or after `proto N` and the source).
    cmd->add_flag("->", o->arrow, "(the arrow of an unquoted packet)")->group("");
    cmd->callback([&g, &run, o] {
        run = [&g, o] {
            std::vector<std::string> words = o->words;
            bool has_arrow = std::any_of(words.begin(), words.end(), [](const std::string& w) {
                return w.find("->") != std::string::npos;
            });
            size_t at = !words.empty() && words[0] == "proto" ? 3 : 2;
            if (o->arrow && !has_arrow && words.size() >= at)
                words.insert(words.begin() + long(at), "->");
            return run_explain(g, *o, words);
        };
    });
}

}  // namespace xdpctl::ctl
