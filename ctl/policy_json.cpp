#include "policy_json.h"

#include <fmt/core.h>

#include "policy/iif_resolve.h"
#include "policy/rule_parse.h"

namespace xdpctl::ctl {

using namespace xdpctl::policy;

namespace {
std::string addr_text(const AddrMatch& a)
{
    return a.kind == AddrMatch::Kind::set ? "@" + a.set : format_prefix(a.prefix);
}
std::string ports_text(const PortRange& p)
{
    return p.lo == p.hi ? std::to_string(p.lo) : fmt::format("{}-{}", p.lo, p.hi);
}
}  // namespace

std::string iif_state(const Rule& r, const IifIndexes& resolved)
{
    if (r.iif.empty())
        return "";
    auto it = resolved.find(r.id);
    if (it != resolved.end() && it->second != 0)
        return "resolved";
    return r.iif_pending ? "pending" : "missing";
}

std::string match_text(const Rule& r, const IifIndexes& resolved)
{
    // The rule's own options minus id, priority, direction and action: what it matches.
    std::string s;
    auto add = [&](const std::string& part) { s += (s.empty() ? "" : " ") + part; };
    if (r.src.kind != AddrMatch::Kind::any)
        add("src " + addr_text(r.src));
    if (r.dst.kind != AddrMatch::Kind::any)
        add("dst " + addr_text(r.dst));
    if (r.proto)
        add(proto_name(*r.proto));
    if (!r.sport.any())
        add("sport " + ports_text(r.sport));
    if (!r.dport.any())
        add("dport " + ports_text(r.dport));
    if (r.vlan)
        add(fmt::format("vlan {}", *r.vlan));
    if (!r.iif.empty()) {
        std::string state = iif_state(r, resolved);
        add("iif " + r.iif + (r.iif_netns.empty() ? "" : " netns " + r.iif_netns) +
            (state == "resolved" ? "" : " (" + state + ")"));
    }
    if (!r.tcp_flags.any()) {
        std::string f = format_rule(r);
        auto p = f.find("--tcp-flags ");
        add("flags " + f.substr(p + 12, f.find(' ', p + 12) - p - 12));
    }
    if (r.fragment)
        add("fragment");
    return s.empty() ? "any" : s;
}

std::string action_text(const Action& a)
{
    if (a.kind == ActionKind::rate_limit)
        return fmt::format("rate-limit {}", a.rate_pps);
    return action_name(a.kind);
}

nlohmann::json rule_json(const Rule& r, const IifIndexes& resolved)
{
    nlohmann::json m = nlohmann::json::object();
    if (r.src.kind != AddrMatch::Kind::any)
        m["src"] = addr_text(r.src);
    if (r.dst.kind != AddrMatch::Kind::any)
        m["dst"] = addr_text(r.dst);
    if (r.proto)
        m["proto"] = proto_name(*r.proto);
    if (!r.sport.any())
        m["sport"] = ports_text(r.sport);
    if (!r.dport.any())
        m["dport"] = ports_text(r.dport);
    if (r.vlan)
        m["vlan"] = *r.vlan;
    if (!r.iif.empty())
        m["iif"] = r.iif;
    if (!r.iif_netns.empty())
        m["iif_netns"] = r.iif_netns;
    if (r.iif_pending)
        m["iif_pending"] = true;
    if (!r.tcp_flags.any())
        m["tcp_flags"] = {{"mask", r.tcp_flags.mask}, {"value", r.tcp_flags.value}};
    if (r.fragment)
        m["fragment"] = true;
    nlohmann::json j = {{"id", r.id},
                        {"priority", r.priority},
                        {"dir", r.dir == Direction::egress ? "egress" : "ingress"},
                        {"match", m},
                        {"action", action_name(r.action.kind)},
                        {"rule", format_rule(r)}};
    if (r.action.kind == ActionKind::rate_limit) {
        j["rate_pps"] = r.action.rate_pps;
        j["burst"] = r.action.burst;
    }
    if (r.log_rate)
        j["log_rate"] = r.log_rate;
    if (!r.iif.empty()) {
        auto it = resolved.find(r.id);
        j["iif_state"] = iif_state(r, resolved);
        j["iif_ifindex"] = it == resolved.end() ? 0 : it->second;
    }
    return j;
}

nlohmann::json policy_json(const Policy& p, const IifIndexes& resolved,
                           const std::map<uint32_t, RuleCounters>& counters,
                           const std::map<uint32_t, RuleCounters>* before, double interval)
{
    nlohmann::json rules = nlohmann::json::array();
    for (const Rule* r : evaluation_order(p)) {
        nlohmann::json j = rule_json(*r, resolved);
        auto it = counters.find(r->id);
        RuleCounters c = it == counters.end() ? RuleCounters{} : it->second;
        j["packets"] = c.packets;
        j["bytes"] = c.bytes;
        j["last_hit_ns"] = c.last_hit_ns;
        if (r->log_rate) {
            j["events"] = c.events;
            j["events_not_sent"] = c.events_not_sent;
        }
        if (before) {
            auto b = before->find(r->id);
            uint64_t bp = b == before->end() ? 0 : b->second.packets;
            uint64_t bb = b == before->end() ? 0 : b->second.bytes;
            j["pps"] = double(c.packets - bp) / interval;
            j["bps"] = double(c.bytes - bb) * 8.0 / interval;
        }
        rules.push_back(j);
    }
    return {{"default", action_name(p.default_action)}, {"rules", rules}};
}

}  // namespace xdpctl::ctl
