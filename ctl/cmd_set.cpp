// `xdpctl set create|add|del|load|list|destroy`: named prefix sets for --src/--dst @NAME.
#include <functional>
#include <map>
#include <optional>

#include <fmt/core.h>

#include "command.h"
#include "util/error.h"
#include "util/input_file.h"
#include "policy/policy_store.h"
#include "policy/rule_parse.h"
#include "state/set_journal.h"
#include "state/state_record.h"
#include "util/heap_pages.h"

namespace xdpctl::ctl {

using namespace xdpctl::policy;

namespace {

SetEntry parse_entry(const std::string& tok)
{
    bool ex = !tok.empty() && tok[0] == '!';
    return {parse_prefix(ex ? tok.substr(1) : tok), ex};
}

PrefixSet& find_set(Policy& p, const std::string& name)
{
    auto it = p.sets.find(name);
    if (it == p.sets.end())
        fail_usage("unknown set '{}' ('xdpctl set create {}' first)", name, name);
    return it->second;
}

// A prefix file: one CIDR (or !CIDR) a line, '#' comments; errors name the line.
std::vector<SetEntry> read_prefix_file(const std::string& path)
{
    const std::string text = read_input_file(path, kPrefixFile);
    std::vector<SetEntry> out;
    size_t pos = 0;
    for (size_t n = 1; pos < text.size(); n++) {
        size_t nl = text.find('\n', pos);
        std::string_view line(text.data() + pos, (nl == std::string::npos ? text.size() : nl) - pos);
        pos = nl == std::string::npos ? text.size() : nl + 1;
        line = strip_comment(line);
        auto b = line.find_first_not_of(" \t\r");
        if (b == std::string_view::npos)
            continue;
        auto e = line.find_last_not_of(" \t\r");
        std::string tok(line.substr(b, e - b + 1));
        try {
            out.push_back(parse_entry(tok));
        } catch (const Error& err) {
            fail_usage("{}:{}: {}", path, n, err.what());
        }
    }
    return out;
}

std::vector<SetEntry> parse_entries(const std::vector<std::string>& cidrs)
{
    std::vector<SetEntry> out;
    for (const auto& c : cidrs)
        out.push_back(parse_entry(c));
    return out;
}

// `set add`/`set del` without a commit when `in_place` can (it says whether it did, and what
// it changed), and the state directory's record of it: given the set before, the change goes
// to the set's journal. The policy is read once, before (the decode the change in place
// saved, only where a state directory is recorded); the set after is that one with the change
// replayed as the journal replays it, which is what reading the policy again would give
// (its stored changes are replayed so) without a second decode (~120 ms at 1M prefixes).
using InPlace = std::function<bool(PolicyStore&, state::SetChange*)>;
bool change_in_place(PolicyStore& store, const std::string& name, const InPlace& in_place)
{
    // With a state directory, the policy as stored (no set decoded: a 1M-prefix set's
    // entries are ~200 ms of this command where first touches of memory are dear) and the
    // set's changes in place so far: the record appends this one to the set's journal.
    std::optional<Policy> p;
    std::map<std::string, std::string> pending;
    if (state::recording_enabled()) {
        p = store.current_as_stored(pending);
        if (!p->sets.count(name))
            return false;
    }
    state::SetChange applied;
    if (!in_place(store, &applied))
        return false;
    if (p && applied.size())
        state::set_changed_in_place(*p, name, pending[name], applied);
    return true;
}

void set_list(const GlobalOptions& g, bool json)
{
    PolicyStore store(Access::read);
    Policy p = store.read_consistent([&] { return store.current(); });
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& [name, s] : p.sets) {
        size_t v4 = 0, v6 = 0, ex = 0;
        for (const auto& e : s.entries) {
            (e.prefix.family == Family::v4 ? v4 : v6)++;
            ex += e.except;
        }
        nlohmann::json users = nlohmann::json::array();
        for (const auto& r : p.rules)
            if ((r.src.kind == AddrMatch::Kind::set && r.src.set == name) ||
                (r.dst.kind == AddrMatch::Kind::set && r.dst.set == name))
                users.push_back(r.id);
        arr.push_back({{"name", name}, {"ipv4", v4}, {"ipv6", v6}, {"exceptions", ex},
                       {"rules", users}});
    }
    if (json || g.pretty) {
        print_json(g, {{"sets", arr}});
        return;
    }
    if (arr.empty()) {
        fmt::print("no sets\n");
        return;
    }
    fmt::print("{:<20} {:>10} {:>10} {:>10}  {}\n", "SET", "IPV4", "IPV6", "EXCEPT", "RULES");
    for (const auto& s : arr)
        fmt::print("{:<20} {:>10} {:>10} {:>10}  {}\n", s["name"].get<std::string>(),
                   s["ipv4"].get<size_t>(), s["ipv6"].get<size_t>(),
                   s["exceptions"].get<size_t>(), s["rules"].dump());
}

}  // namespace

void add_set_command(CLI::App& app, const GlobalOptions& g, Runner& run)
{
    auto* set = app.add_subcommand("set", "Named prefix sets for --src/--dst @NAME: longest "
                                          "prefix wins, !CIDR excepts a range");
    set->require_subcommand(1);

    struct Opts {
        std::string name, file;
        std::vector<std::string> cidrs;
        bool json = false;
    };
    auto o = std::make_shared<Opts>();

    // Each of these is read -> change -> one commit.
    // `journal`: a few entries added or removed, which the state directory can append to the
    // set's journal given the set as it was (a copy: ~5 ms at 1M prefixes, where rewriting
    // the set's file took ~120).
    // `in_place`: the change without a commit when the store can make it so (`set add`/`del`:
    // PolicyStore::change_set_in_place); true when it did.
    auto changer = [&run, o](std::function<void(Policy&)> change, std::string done, bool journal = false,
                             InPlace in_place = {}) {
        return [&run, o, change, done, journal, in_place] {
            run = [o, change, done, journal, in_place]() -> int {
                // A change in place waits for no packet: the wait starts only if it commits.
                // It exits after it (or one commit): with a state directory it reads the
                // rules back (util/heap_pages.h: ~10 ms of 4 KiB faults at 10,000 rules).
                if (in_place)
                    allow_huge_heap_pages();
                PolicyStore store(Access::write, !in_place);
                if (in_place && change_in_place(store, o->name, in_place)) {
                    fmt::print("{}\n", fmt::format(fmt::runtime(done), o->name));
                    exit_done();  // no destructor has work left (command.h)
                }
                store.exits_after_commit();
                Policy p = store.current();
                // A set stored by an older xdpctl under a name the grammar now refuses can
                // still be changed or destroyed: only new names are checked.
                if (!p.sets.count(o->name))
                    validate_set_name(o->name);
                std::optional<PrefixSet> before;
                if (journal && p.sets.count(o->name))
                    before = p.sets.at(o->name);
                change(p);
                std::optional<state::SetChangeFrom> from;
                if (before)
                    from.emplace(*before);
                store.commit(std::move(p));
                fmt::print("{}\n", fmt::format(fmt::runtime(done), o->name));
                exit_done();
            };
        };
    };

    auto* create = set->add_subcommand("create", "Create an empty set");
    create->add_option("name", o->name, "Set name")->required();
    create->callback(changer(
        [o](Policy& p) {
            if (p.sets.count(o->name))
                fail_usage("set '{}' exists", o->name);
            p.sets[o->name].name = o->name;
        },
        "created set {}"));

    auto* add = set->add_subcommand("add", "Add prefixes (CIDR, or !CIDR for an exception)");
    add->add_option("name", o->name, "Set name")->required();
    add->add_option("cidr", o->cidrs, "Prefixes")->required();
    add->callback(changer(
        [o](Policy& p) {
            PrefixSet& s = find_set(p, o->name);
            for (const auto& c : o->cidrs)
                s.entries.push_back(parse_entry(c));
        },
        "updated set {}", true, [o](PolicyStore& store, state::SetChange* applied) {
            return store.change_set_in_place(o->name, parse_entries(o->cidrs), {}, applied);
        }));

    auto* del = set->add_subcommand("del", "Remove prefixes");
    del->add_option("name", o->name, "Set name")->required();
    del->add_option("cidr", o->cidrs, "Prefixes")->required();
    del->callback(changer(
        [o](Policy& p) {
            PrefixSet& s = find_set(p, o->name);
            for (const auto& c : o->cidrs) {
                SetEntry e = parse_entry(c);
                auto it = std::find(s.entries.begin(), s.entries.end(), e);
                if (it == s.entries.end())
                    fail_usage("{} is not in set '{}'", c, o->name);
                s.entries.erase(it);
            }
        },
        "updated set {}", true, [o](PolicyStore& store, state::SetChange* applied) {
            return store.change_set_in_place(o->name, {}, parse_entries(o->cidrs), applied);
        }));

    auto* load = set->add_subcommand("load", "Replace a set's prefixes with a file's (one a line, "
                                             "# comments); creates the set if needed");
    load->add_option("name", o->name, "Set name")->required();
    load->add_option("file", o->file, "Prefix file")->required();
    load->callback(changer(
        [o](Policy& p) {
            PrefixSet& s = p.sets[o->name];
            s.name = o->name;
            s.entries = read_prefix_file(o->file);
        },
        "loaded set {}"));

    auto* destroy = set->add_subcommand("destroy", "Delete a set no rule uses");
    destroy->add_option("name", o->name, "Set name")->required();
    destroy->callback(changer(
        [o](Policy& p) {
            find_set(p, o->name);
            for (const auto& r : p.rules)
                if ((r.src.kind == AddrMatch::Kind::set && r.src.set == o->name) ||
                    (r.dst.kind == AddrMatch::Kind::set && r.dst.set == o->name))
                    fail_usage("set '{}' is used by rule {}", o->name, r.id);
            p.sets.erase(o->name);
        },
        "destroyed set {}"));

    auto* list = set->add_subcommand("list", "Sets with their sizes and the rules using them");
    list->add_flag("-j,--json", o->json, "JSON output");
    list->callback([&g, &run, o] {
        run = [&g, o] {
            set_list(g, o->json);
            return 0;
        };
    });
}

}  // namespace xdpctl::ctl
