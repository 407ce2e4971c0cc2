// `xdpctl policy default`, `apply [--dry-run] FILE`, `export`: the whole policy at once,
// with the load balancer's VIPs and backends (`lb` lines, read by ctl/cmd_lb.cpp).
#include <algorithm>

#include <fmt/core.h>

#include "command.h"
#include "util/error.h"
#include "lb/lb_config.h"
#include "lb/lb_store.h"
#include "policy/iif_resolve.h"
#include "policy/policy_store.h"
#include "policy/rule_parse.h"
#include "util/input_file.h"
#include "policy_json.h"

namespace xdpctl::ctl {

using namespace xdpctl::policy;

namespace {

// What apply would change, line by line: rules by id, sets by name, the default.
std::vector<std::string> policy_diff(const Policy& from, const Policy& to)
{
    std::vector<std::string> out;
    if (from.default_action != to.default_action)
        out.push_back(fmt::format("~ default {} -> {}", action_name(from.default_action),
                                  action_name(to.default_action)));
    for (const auto& [name, s] : from.sets)
        if (!to.sets.count(name))
            out.push_back(fmt::format("- set {} ({} prefixes)", name, s.entries.size()));
    for (const auto& [name, s] : to.sets) {
        auto it = from.sets.find(name);
        if (it == from.sets.end())
            out.push_back(fmt::format("+ set {} ({} prefixes)", name, s.entries.size()));
        else if (!(it->second == s))
            out.push_back(fmt::format("~ set {} ({} -> {} prefixes)", name,
                                      it->second.entries.size(), s.entries.size()));
    }
    auto by_id = [](const Policy& p) {
        std::map<uint32_t, const Rule*> m;
        for (const auto& r : p.rules)
            m[r.id] = &r;
        return m;
    };
    auto a = by_id(from), b = by_id(to);
    for (const auto& [id, r] : a)
        if (!b.count(id))
            out.push_back("- rule " + format_rule(*r));
    for (const auto& [id, r] : b) {
        if (id == 0)
            continue;
        auto it = a.find(id);
        if (it == a.end())
            out.push_back("+ rule " + format_rule(*r));
        else if (!(*it->second == *r))
            out.push_back("~ rule " + format_rule(*r));
    }
    for (const auto& r : to.rules)
        if (r.id == 0)
            out.push_back("+ rule " + format_rule(r) + " (id assigned on apply)");
    return out;
}

}  // namespace

// A rule kept as it is may name an interface that went since, as it did before the apply.
void check_new_rules(const Policy& cur, const Policy& next, const std::string& file, bool check_iifs)
{
    for (const Rule& r : next.rules) {
        if (r.id && std::find(cur.rules.begin(), cur.rules.end(), r) != cur.rules.end())
            continue;
        try {
            check_rule_can_match(next, r);
            if (check_iifs && !r.iif.empty())
                require_iif_exists(r);
        } catch (const Error& e) {
            fail_usage("{}: rule '{}': {}", file, format_rule(r), e.what());
        }
    }
}

ApplyFile parse_apply_text(const GlobalOptions& g, const std::string& text, const std::string& file,
                           bool lookup_macs)
{
    ApplyFile f;
    f.policy = parse_policy_text(text, file, {{"lb", [&](const std::vector<std::string>& args) {
                                                   parse_lb_statement(g, args, f.lb, lookup_macs);
                                               }}});
    for (Rule& r : f.policy.rules)
        bind_iif_netns(r, g.netns);
    return f;
}

void add_policy_commands(CLI::App& app, const GlobalOptions& g, Runner& run)
{
    auto* policy = app.add_subcommand("policy", "The default action when no rule matches");
    policy->require_subcommand(1);
    auto action = std::make_shared<std::string>();
    auto* def = policy->add_subcommand("default", "Set the default action: pass or drop");
    def->add_option("action", *action, "pass or drop")
        ->required()
        ->check(CLI::IsMember({"pass", "drop"}));
    def->callback([&run, action] {
        run = [action] {
            PolicyStore store;
            store.exits_after_commit();
            Policy p = store.current();
            p.default_action = *action == "drop" ? ActionKind::drop : ActionKind::pass;
            store.commit(std::move(p));
            fmt::print("default action: {}\n", *action);
            return 0;
        };
    });

    struct ApplyOpts {
        std::string file;
        bool dry_run = false;
    };
    auto ao = std::make_shared<ApplyOpts>();
    auto* apply = app.add_subcommand("apply", "Replace the whole policy and LB configuration "
                                              "with a file's (the format 'xdpctl export' "
                                              "prints): the filter in one commit, then the LB");
    apply->add_option("file", ao->file, "Rule file")->required();
    apply->add_flag("--dry-run", ao->dry_run, "Check the file and print what would change");
    apply->callback([&g, &run, ao] {
        run = [&g, ao] {
            // The whole file, filter and LB lines, before any change.
            ApplyFile f = parse_apply_text(g, read_input_file(ao->file, kRuleFile), ao->file);
            Policy next = std::move(f.policy);
            const lb::LbConfig lb_next = std::move(f.lb);
            // --dry-run changes nothing: a reader, which waits for no writer.
            const Access access = ao->dry_run ? Access::read : Access::write;
            PolicyStore store(access);
            lb::LbStore lb_store(access);  // a writer's hold nests in store's
            Policy cur = store.read_consistent([&] { return store.current(); });
            check_new_rules(cur, next, ao->file);
            const lb::LbConfig lb_cur = lb::read_lb_config(lb_store.maps());
            auto diff = policy_diff(cur, next);
            for (auto& l : lb::lb_diff(lb_cur, lb_next))
                diff.push_back(std::move(l));
            if (ao->dry_run) {
                // What the commit checks beyond the file (ids, compiling, sizes); the LB
                // lines were checked as they were read, against the limits apply meets
                // (lb::apply_lb_config orders its steps so that those are the only ones).
                store.check(next);
                for (const auto& l : diff)
                    fmt::print("{}\n", l);
                fmt::print("{} change(s); nothing applied (--dry-run)\n", diff.size());
                return 0;
            }
            // Two steps, each atomic: the filter's commit, then the LB's (docs/cli.md). Every
            // check of both ran above or runs in commit before it changes anything: the LB
            // step can fail only for the system's reasons (memory), not the file's. Then
            // what was is put back, as far as the system lets it.
            store.exits_after_commit();
            store.commit(std::move(next));
            try {
                lb::apply_lb_config(lb_store.maps(), lb_next);
            } catch (const Error& e) {
                std::string undone = "the previous policy and LB configuration were put back";
                try {
                    lb::apply_lb_config(lb_store.maps(), lb_cur);
                    store.commit(cur);
                } catch (const std::exception& again) {
                    undone = fmt::format("putting the previous configuration back failed too "
                                         "({}): 'xdpctl export' shows what is in force",
                                         again.what());
                }
                throw Error(e.code(), fmt::format("{}; {}", e.what(), undone));
            }
            fmt::print("applied {}: {} change(s)\n", ao->file, diff.size());
            return 0;
        };
    });

    auto* exp = app.add_subcommand("export", "Print the policy and the LB configuration as "
                                             "a file ('xdpctl apply' reads it back unchanged)");
    exp->callback([&run] {
        run = [] {
            // A reader: a concurrent `rule add` does not wait for it, nor it for one.
            PolicyStore store(Access::read);
            lb::LbStore lb_store(Access::read);
            fmt::print("{}{}", format_policy(store.read_consistent([&] { return store.current(); })),
                       format_lb_config(lb::read_lb_config(lb_store.maps())));
            return 0;
        };
    });
}

}  // namespace xdpctl::ctl
