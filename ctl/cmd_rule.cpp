// `xdpctl rule add|del|list`: one commit per change; ids are stable, counters follow them.
#include <algorithm>
#include <chrono>
#include <thread>

#include <fmt/core.h>

#include "command.h"
#include "util/error.h"
#include "util/heap_pages.h"
#include "policy/iif_resolve.h"
#include "policy/policy_store.h"
#include "policy/rule_listing.h"
#include "policy/rule_parse.h"
#include "policy_json.h"
#include "state/state_record.h"

namespace xdpctl::ctl {

using namespace xdpctl::policy;

void rule_add(const GlobalOptions& g, const std::vector<std::string>& args)
{
    Rule r = parse_rule(args);
    bind_iif_netns(r, g.netns);
    require_iif_exists(r);
    allow_huge_heap_pages();  // one commit, then exit (util/heap_pages.h)
    PolicyStore store;
    store.exits_after_commit();
    Policy p = store.current_rules();  // its sets unchanged: left undecoded
    if (r.id)
        for (const auto& existing : p.rules)
            if (existing.id == r.id)
                fail_usage("--id {}: a rule with this id exists ('xdpctl rule del {}' first)",
                           r.id, r.id);
    check_rule_can_match(p, r);
    const state::RulesChangeFrom change(p, p.rules.size(), 0, 1);
    p.rules.push_back(r);
    Policy done = store.commit_sets_as_read(std::move(p));  // no set changed
    fmt::print("{}\n", done.rules.back().id);
    exit_done();
}

namespace {

void rule_del(const std::vector<uint32_t>& ids)
{
    for (size_t i = 0; i < ids.size(); i++)
        if (std::count(ids.begin(), ids.begin() + i, ids[i]))
            fail_usage("rule id {} given twice", ids[i]);
    allow_huge_heap_pages();
    PolicyStore store;
    store.exits_after_commit();
    Policy p = store.current_rules();  // its sets unchanged: left undecoded
    // The rules deleted lie in [first, last]: the state directory records the change as
    // that stretch replaced by the rules of it that stay.
    size_t first = p.rules.size(), last = 0;
    for (uint32_t id : ids) {
        auto it = std::find_if(p.rules.begin(), p.rules.end(),
                               [&](const Rule& r) { return r.id == id; });
        if (it == p.rules.end())
            fail_usage("no rule with id {} ('xdpctl rule list' shows them)", id);
        first = std::min(first, size_t(it - p.rules.begin()));
        last = std::max(last, size_t(it - p.rules.begin()));
    }
    const state::RulesChangeFrom change(p, first, last + 1 - first, last + 1 - first - ids.size());
    std::erase_if(p.rules, [&](const Rule& r) { return std::count(ids.begin(), ids.end(), r.id) > 0; });
    store.commit_sets_as_read(std::move(p));  // no set changed
    for (uint32_t id : ids)
        fmt::print("deleted rule {}\n", id);
    exit_done();
}

void rule_list(const GlobalOptions& g, bool json, double interval)
{
    PolicyStore store(Access::read);
    RuleListing listing = read_rule_listing(store);
    const Policy& p = listing.policy;
    const IifIndexes& resolved = listing.resolved;
    std::map<uint32_t, RuleCounters> before = listing.counters;
    std::map<uint32_t, RuleCounters> after = before;
    if (interval > 0) {
        std::this_thread::sleep_for(std::chrono::duration<double>(interval));
        after = store.counters();
    }
    if (json || g.pretty) {
        print_json(g, policy_json(p, resolved, after, interval > 0 ? &before : nullptr, interval));
        return;
    }
    fmt::print("default: {}\n", action_name(p.default_action));
    if (p.rules.empty()) {
        fmt::print("no rules\n");
        return;
    }
    fmt::print("{:>6} {:>6} {:<7} {:<40} {:<14} {:>12} {:>14}{}\n", "ID", "PRIO", "DIR", "MATCH",
               "ACTION", "PACKETS", "BYTES", interval > 0 ? fmt::format(" {:>12}", "PPS") : "");
    for (const Rule* r : evaluation_order(p)) {
        const RuleCounters& c = after[r->id];
        std::string rate;
        if (interval > 0)
            rate = fmt::format(" {:>12.1f}", double(c.packets - before[r->id].packets) / interval);
        fmt::print("{:>6} {:>6} {:<7} {:<40} {:<14} {:>12} {:>14}{}\n", r->id, r->priority,
                   r->dir == Direction::egress ? "egress" : "ingress", match_text(*r, resolved),
                   action_text(r->action) + (r->log_rate ? " log" : ""), c.packets, c.bytes, rate);
    }
}

}  // namespace

void add_rule_command(CLI::App& app, const GlobalOptions& g, Runner& run)
{
    auto* rule = app.add_subcommand("rule", "Filter rules: add, del, list (each change is one "
                                            "atomic commit for every interface)");
    rule->require_subcommand(1);

    rule->add_subcommand(
        "add", "Add a rule: [--id N] [--priority P] [--dir ingress|egress] [--src CIDR|@SET] "
               "[--dst CIDR|@SET] [--proto tcp|udp|icmp|icmpv6|N] [--sport P[-Q]] [--dport P[-Q]] "
               "[--vlan ID] [--iif IFACE [--iif-netns NS] [--iif-pending]] [--tcp-flags syn,!ack] [--fragment] "
               "--action drop|pass|count|rate-limit PPS [--burst N] [--log [--log-rate N]]; prints the rule's id");
    // main() hands `rule add ARGS` to rule_add() before CLI11 sees it: the rule options are
    // parsed by the same code as rule files. This entry serves `rule add --help`.

    auto ids = std::make_shared<std::vector<uint32_t>>();
    auto* del = rule->add_subcommand("del", "Delete rules by id");
    del->add_option("id", *ids, "Rule ids")->required();
    del->callback([&run, ids] {
        run = [ids] {
            rule_del(*ids);
            return 0;
        };
    });

    struct ListOpts {
        bool json = false;
        double interval = 0;
    };
    auto lo = std::make_shared<ListOpts>();
    auto* list = rule->add_subcommand("list", "The rules in evaluation order, with counters");
    list->add_flag("-j,--json", lo->json, "JSON output (keys in docs/cli.md)");
    list->add_option("--interval", lo->interval, "Also show each rule's packets per second over S seconds")
        ->check(interval_seconds());
    list->callback([&g, &run, lo] {
        run = [&g, lo] {
            rule_list(g, lo->json, lo->interval);
            return 0;
        };
    });
}

}  // namespace xdpctl::ctl
