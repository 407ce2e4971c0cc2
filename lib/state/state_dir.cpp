#include "state/state_dir.h"

#include <dirent.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "policy/commit_trace.h"
#include "policy/policy_binary.h"
#include "policy/set_tables.h"
#include "state/durable_file.h"
#include "state/rules_journal.h"
#include "state/set_journal.h"
#include "state/state_json.h"

namespace xdpctl::state {

using nlohmann::json;

namespace {

constexpr const char* kManifest = "manifest";
constexpr const char* kFormat = "xdpctl-state 1";
// A manifest that names a journal (a set's or the rules'): an xdpctl that reads only format 1
// would take the base files alone and restore a policy without the journaled changes; this
// one refuses it by name instead. This xdpctl reads both.
constexpr const char* kFormatJournals = "xdpctl-state 2";

bool names_a_journal(const json& m)
{
    if (!m["policy"].is_null() && m["policy"].contains("journal"))
        return true;
    return std::any_of(m["sets"].begin(), m["sets"].end(), [](const json& s) { return s.contains("journal"); });
}

std::string hex(uint64_t v)
{
    return fmt::format("{:016x}", v);
}

// A set's key: its name and the sum of its entries' prints (set_tables.h, the sum the set's
// table is found by), as "s" and 16 hex digits. A change of a few entries gives the key after
// it from the sum before (`set add` in place, SetChange::print_sums), with no pass over a
// million entries (~9 ms, calls cheap: no microcode).
std::string set_key_of_sum(const std::string& name, uint64_t sum)
{
    return fmt::format("s{:016x}", fold64(checksum64(name), sum));
}

std::string set_key(const std::string& name, const policy::PrefixSet& s)
{
    if (s.undecoded && s.undecoded->print_sum)
        return set_key_of_sum(name, *s.undecoded->print_sum);  // the image's index gave it
    uint64_t sum = 0;
    // The same from the stored bytes (a rule command's set), streamed: a set a command does
    // not change is not read otherwise.
    if (s.undecoded)
        policy::visit_undecoded_streamed(*s.undecoded, [&sum](policy::Family f, uint8_t len, bool except, const uint8_t* addr) {
            policy::SetEntry e;
            e.prefix.family = f;
            e.prefix.len = len;
            e.except = except;
            std::memcpy(e.prefix.addr.data(), addr, f == policy::Family::v4 ? 4 : 16);
            sum += policy::set_entry_print(e);
        });
    else
        for (const auto& e : s.entries)
            sum += policy::set_entry_print(e);
    return set_key_of_sum(name, sum);
}

// The key an xdpctl before the sums recorded (16 hex digits): the name and the entries folded
// in order. Read back only to check the set a journal gives (restore); a writer records the
// set under a key of its own (a mismatch: the set is recorded anew).
uint64_t folded_set_key(const std::string& name, const policy::PrefixSet& s)
{
    uint64_t h = checksum64(name), n = 0;
    std::vector<policy::SetEntry> scratch;
    for (const policy::SetEntry& e : policy::set_entries(s, scratch)) {
        const uint64_t head = uint64_t(e.prefix.family) | uint64_t(e.prefix.len) << 8 | uint64_t(e.except) << 16;
        uint64_t a = 0, b = 0;
        if (e.prefix.family == policy::Family::v4) {
            std::memcpy(&a, e.prefix.addr.data(), 4);
            h = fold64(h, head | a << 32);
        } else {
            std::memcpy(&a, e.prefix.addr.data(), 8);
            std::memcpy(&b, e.prefix.addr.data() + 8, 8);
            h = fold64(fold64(fold64(h, head), a), b);
        }
        n++;
    }
    return mix64(h, n);
}

// Whether `recorded` (a manifest's key) is the key of set `s`, of either kind.
bool is_set_key(const json& recorded, const std::string& name, const policy::PrefixSet& s)
{
    const std::string k = recorded.is_string() ? recorded.get<std::string>() : "";
    return k.starts_with('s') ? k == set_key(name, s) : k == hex(folded_set_key(name, s));
}

// A data file's entry in the manifest.
json file_entry(const std::string& name, std::string_view bytes)
{
    return {{"file", name}, {"bytes", bytes.size()}, {"checksum", hex(checksum64(bytes))}};
}


std::string set_image(const policy::PrefixSet& s)
{
    policy::Policy one;
    one.sets.emplace(s.name, s);
    return policy::encode_policy(one);
}

json empty_manifest()
{
    return {{"format", kFormat},       {"generation", 0},      {"policy", nullptr},
            {"sets", json::array()},   {"lb", json::array()},  {"interfaces", json::array()},
            {"decaps", json::array()}, {"lb_conntrack", 0}};
}

// The manifest as parsed; none when there is none. Throws naming it when damaged.
std::optional<json> read_manifest(const std::string& dir)
{
    const std::string path = dir + "/" + kManifest;
    auto text = read_file_if_exists(path);
    if (!text)
        return std::nullopt;
    json m;
    try {
        m = json::parse(*text);
    } catch (const std::exception& e) {
        fail("{} is damaged (not JSON: {}); 'xdpctl restore' cannot use it", path, e.what());
    }
    if (!m.is_object() || (m.value("format", "") != kFormat && m.value("format", "") != kFormatJournals))
        fail("{} is not an xdpctl state manifest of this version (format '{}' or '{}' expected)", path, kFormat,
             kFormatJournals);
    for (const char* key : {"generation", "policy", "sets", "lb", "interfaces", "lb_conntrack"})
        if (!m.contains(key))
            fail("{} is damaged: no \"{}\"", path, key);
    return m;
}

// A data file the manifest names, its size and checksum checked.
std::string read_data_file(const std::string& dir, const json& entry, const std::string& manifest)
{
    std::string name;
    try {
        name = entry.at("file").get<std::string>();
    } catch (const std::exception& e) {
        fail("{} is damaged: a file entry {}: {}", manifest, entry.dump(), e.what());
    }
    if (name.empty() || name.find('/') != std::string::npos || name[0] == '.')
        fail("{} is damaged: file name '{}'", manifest, name);
    const std::string path = dir + "/" + name;
    auto bytes = read_file_if_exists(path);
    if (!bytes)
        fail("{} is missing (named by {})", path, manifest);
    if (bytes->size() != entry.value("bytes", uint64_t(0)) ||
        hex(checksum64(*bytes)) != entry.value("checksum", ""))
        fail("{} is damaged: {} bytes with checksum {}, where {} recorded {} bytes with checksum {}",
             path, bytes->size(), hex(checksum64(*bytes)), manifest, entry.value("bytes", uint64_t(0)),
             entry.value("checksum", ""));
    return std::move(*bytes);
}

// Writes the next generation: `change` edits a copy of the manifest and writes the data
// files it needs through `dir`; nothing is written when the manifest stays as it was.
void update(const std::string& path, const std::function<void(json&, const DurableDir&)>& change)
{
    policy::CommitTrace trace;
    DurableDir dir(path);
    const json before = read_manifest(path).value_or(empty_manifest());
    json m = before;
    trace.mark("state: read manifest");
    change(m, dir);
    if (m == before)
        return;
    trace.mark("state: data files");
    // The data files' renames on disk before the manifest's that names them (a journal
    // appended to is fdatasynced and keeps its name: nothing to sync then).
    if (dir.names_changed())
        dir.sync();
    trace.mark("state: directory fsync");
    m["generation"] = before["generation"].get<uint64_t>() + 1;
    m["format"] = names_a_journal(m) ? kFormatJournals : kFormat;
    dir.write(kManifest, m.dump(1) + "\n");
    trace.mark("state: manifest");
    dir.sync();
    trace.mark("state: directory fsync");
    // Only now, with the new manifest on disk, what the old one named may go; a kill here
    // leaves files the next writer removes.
    std::set<std::string> keep{kManifest};
    auto keep_files = [&](const json& entry) {
        keep.insert(entry["file"].get<std::string>());
        if (entry.contains("journal"))
            keep.insert(entry["journal"]["file"].get<std::string>());
    };
    if (!m["policy"].is_null())
        keep_files(m["policy"]);
    for (const auto& s : m["sets"])
        keep_files(s);
    std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(path.c_str()), closedir);
    if (!d)
        return;
    std::vector<std::string> stale;
    while (dirent* e = readdir(d.get())) {
        const std::string n = e->d_name;
        const bool ours = n.rfind("policy.", 0) == 0 || n.rfind("set.", 0) == 0 || n.rfind(".tmp.", 0) == 0;
        if (ours && !keep.count(n))
            stale.push_back(n);
    }
    for (const auto& n : stale)
        dir.remove(n);
    trace.mark("state: clean-up");
}

// The journal's bytes the manifest counts (entry["journal"]), given to `replay`, which returns
// how many were whole records; all must be.
void replay_journal_bytes(const json& entry, const std::string& dir, const std::string& manifest,
                          const std::function<size_t(std::string_view, const std::string&)>& replay)
{
    const std::string path = dir + "/" + entry["journal"].value("file", "");
    const uint64_t want = entry["journal"].value("bytes", uint64_t(0));
    auto bytes = read_file_if_exists(path);
    if (!bytes || bytes->size() < want)
        fail("{} is {} (named by {} with {} bytes)", path, bytes ? "cut short" : "missing", manifest, want);
    const size_t used = replay(std::string_view(*bytes).substr(0, want), path);
    if (used != want)
        fail("{} is damaged: the record at byte {} is not whole", path, used);
}

// The base plus its journal, which must give the set the manifest's key.
void replay_set_journal(policy::PrefixSet& set, const json& entry, const std::string& dir, const std::string& manifest)
{
    replay_journal_bytes(entry, dir, manifest,
                         [&](std::string_view b, const std::string&) { return replay_journal(set, b); });
    if (!is_set_key(entry.value("key", json()), entry.value("name", ""), set))
        fail("{}/{} is damaged: the set '{}' it gives is not the one {} recorded", dir,
             entry["journal"].value("file", ""), set.name, manifest);
}

// The same for the rules.
void replay_rules_journal_file(policy::Policy& p, const json& entry, const std::string& dir, const std::string& manifest)
{
    replay_journal_bytes(entry, dir, manifest,
                         [&](std::string_view b, const std::string& path) { return replay_rules_journal(p, b, path); });
    if (hex(rules_key(p)) != entry.value("key", ""))
        fail("{}/{} is damaged: the rules it gives are not the ones {} recorded", dir,
             entry["journal"].value("file", ""), manifest);
}

// Appends `rec` to the journal of the data file `was` names (FILE.log), cut to the bytes `was`
// counts, when the journal stays under 1/8 of the file: replaying more would cost more than
// rewriting the file once. The new entry (key `key`), or none when it did not.
std::optional<json> append_to_journal(const json& was, const std::string& key, const std::string& rec,
                                      const DurableDir& dir)
{
    const uint64_t logged = was.contains("journal") ? was["journal"]["bytes"].get<uint64_t>() : 0;
    const std::string log = was["file"].get<std::string>() + ".log";
    if ((logged + rec.size()) * 8 > was["bytes"].get<uint64_t>() || !dir.append(log, logged, rec))
        return std::nullopt;
    json e = was;
    e["key"] = key;
    e["journal"] = {{"file", log}, {"bytes", logged + rec.size()}};
    return e;
}

// A set whose contents are new: its journal when the recorded set is `before` and the
// change is small beside the base, else a new base file.
json record_set(const std::string& key, const policy::PrefixSet& s, const policy::PrefixSet* before,
                const json* was, uint64_t generation, const DurableDir& dir)
{
    if (before && !before->undecoded && !s.undecoded && was && before->name == s.name && (*was)["name"] == s.name &&
        is_set_key((*was)["key"], before->name, *before)) {
        policy::CommitTrace trace;
        const SetChange change = diff_sets(*before, s);
        trace.mark("state: set diff");
        std::optional<json> e = append_to_journal(*was, key, encode_journal_record(generation, change), dir);
        trace.mark("state: set journal append");
        if (e)
            return *e;
    }
    const std::string file = "set." + key, image = set_image(s);
    dir.write(file, image);
    json e = file_entry(file, image);
    e["name"] = s.name;
    e["key"] = key;
    return e;
}

}  // namespace

std::optional<SavedState> StateDir::load() const
{
    const std::string manifest = path_ + "/" + kManifest;
    auto m = read_manifest(path_);
    if (!m)
        return std::nullopt;
    SavedState s;
    try {
        s.generation = m->at("generation").get<uint64_t>();
        s.lb_conntrack = m->at("lb_conntrack").get<uint32_t>();
    } catch (const std::exception& e) {
        fail("{} is damaged: {}", manifest, e.what());
    }
    if (!(*m)["policy"].is_null()) {
        const json& entry = (*m)["policy"];
        const std::string file = path_ + "/" + entry.value("file", "");
        s.policy = policy::decode_policy(read_data_file(path_, entry, manifest), file);
        if (!s.policy.sets.empty())
            fail("{} is damaged: it holds sets (they have files of their own)", file);
        if (entry.contains("journal"))
            replay_rules_journal_file(s.policy, entry, path_, manifest);
    }
    for (const json& entry : (*m)["sets"]) {
        const std::string file = path_ + "/" + entry.value("file", "");
        policy::Policy one = policy::decode_policy(read_data_file(path_, entry, manifest), file);
        const std::string name = entry.value("name", "");
        if (one.sets.size() != 1 || one.sets.begin()->first != name || !one.rules.empty())
            fail("{} is damaged: it does not hold exactly the set '{}' {} names", file, name, manifest);
        if (entry.contains("journal"))
            replay_set_journal(one.sets.begin()->second, entry, path_, manifest);
        s.policy.sets.insert(one.sets.extract(one.sets.begin()));
    }
    s.lb = lb_from_json((*m)["lb"], manifest);
    for (const json& j : (*m)["interfaces"])
        s.ifaces.push_back(iface_from_json(j, manifest));
    for (const json& j : m->value("decaps", json::array()))  // absent before decapsulators were recorded
        s.decaps.push_back(decap_from_json(j, manifest));
    return s;
}

namespace {

// Whether `s` is a splice of `before_size` rules that gives `after_size`.
bool fits(const RulesSplice& s, size_t after_size)
{
    return s.at + s.removed <= s.before_size && s.at + s.inserted <= after_size &&
           s.before_size - s.removed + s.inserted == after_size;
}

// The rules' entry of the manifest for `p`: the recorded one when it has p's rules (a set
// change leaves them); a record appended to its journal when it has the rules `splice` was
// made from; else a new rules file.
void record_rules(json& m, const policy::Policy& p, const RulesSplice* splice, const DurableDir& dir)
{
    policy::CommitTrace trace;
    const std::string key = hex(rules_key(p));
    const json was = m["policy"];
    trace.mark("state: rules key");
    if (!was.is_null() && was.value("key", "") == key)
        return;
    const uint64_t generation = m["generation"].get<uint64_t>() + 1;
    if (splice && !was.is_null() && was.value("key", "") == hex(splice->before_key) && fits(*splice, p.rules.size())) {
        std::optional<json> e = append_to_journal(was, key, encode_rules_record(generation, *splice, p), dir);
        trace.mark("state: rules journal append");
        if (e) {
            m["policy"] = *e;
            return;
        }
    }
    const std::string rules = policy::encode_policy_rules(p);
    trace.mark("state: rules image");
    const std::string name = fmt::format("policy.{}", generation);
    dir.write(name, rules);
    m["policy"] = file_entry(name, rules);
    m["policy"]["key"] = key;
    trace.mark("state: rules file");
}

}  // namespace

void StateDir::save_policy(const policy::Policy& p, const policy::PrefixSet* before, const RulesSplice* rules)
{
    update(path_, [&](json& m, const DurableDir& dir) {
        record_rules(m, p, rules, dir);
        policy::CommitTrace trace;
        // The sets: a file each, written only when its contents are new.
        std::map<std::string, json> old, old_by_name;
        for (const auto& s : m["sets"]) {
            old[s["key"].get<std::string>()] = s;
            old_by_name[s["name"].get<std::string>()] = s;
        }
        const uint64_t generation = m["generation"].get<uint64_t>() + 1;
        json sets = json::array();
        for (const auto& [name, s] : p.sets) {
            const std::string key = set_key(name, s);
            auto it = old.find(key);
            if (it != old.end() && it->second["name"] == name) {
                sets.push_back(it->second);
                continue;
            }
            auto was = old_by_name.find(name);
            sets.push_back(record_set(key, s, before, was == old_by_name.end() ? nullptr : &was->second,
                                      generation, dir));
        }
        m["sets"] = std::move(sets);
        trace.mark("state: sets");
    });
}

bool StateDir::append_set_change(const policy::Policy& p, const std::string& name, const SetChange& change)
{
    if (!change.print_sums)
        return false;
    bool appended = false;
    update(path_, [&](json& m, const DurableDir& dir) {
        policy::CommitTrace trace;
        // The directory must record this very policy before the change: its rules, and its
        // sets by name, each with the key of its entries (a command that recorded nothing,
        // XDPCTL_STATE_DIR="", may have committed since); the set's own key follows from the
        // sum of its entries' prints before the change.
        if (m["policy"].is_null() || m["policy"].value("key", "") != hex(rules_key(p)) ||
            m["sets"].size() != p.sets.size())
            return;
        auto target = m["sets"].end();
        for (auto it = m["sets"].begin(); it != m["sets"].end(); ++it) {
            const std::string set_name = (*it).value("name", "");
            auto s = p.sets.find(set_name);
            if (s == p.sets.end())
                return;
            if (set_name == name)
                target = it;
            else if ((*it)["key"] != set_key(set_name, s->second))
                return;
        }
        if (target == m["sets"].end() || (*target)["key"] != set_key_of_sum(name, change.print_sums->first))
            return;
        trace.mark("state: the set's keys");
        const uint64_t generation = m["generation"].get<uint64_t>() + 1;
        std::optional<json> e = append_to_journal(*target, set_key_of_sum(name, change.print_sums->second),
                                                  encode_journal_record(generation, change), dir);
        trace.mark("state: set journal append");
        if (!e)
            return;
        *target = std::move(*e);
        appended = true;
    });
    return appended;
}

void StateDir::save_lb(const lb::LbConfig& c)
{
    update(path_, [&](json& m, const DurableDir&) { m["lb"] = lb_to_json(c); });
}

void StateDir::save_iface(const IfaceRecord& r, uint32_t lb_conntrack)
{
    update(path_, [&](json& m, const DurableDir&) {
        json& all = m["interfaces"];
        const json rec = iface_to_json(r);
        auto it = std::find_if(all.begin(), all.end(), [&](const json& j) {
            return j["netns"] == r.iface.netns && j["interface"] == r.iface.ifname;
        });
        if (it == all.end())
            all.push_back(rec);
        else
            *it = rec;
        if (lb_conntrack)
            m["lb_conntrack"] = lb_conntrack;
    });
}

namespace {
// The entries of m[key] (interfaces or decapsulators) other than the interface's.
json without(const json& all, const IfaceRef& iface)
{
    json kept = json::array();
    for (const auto& j : all)
        if (!(j["netns"] == iface.netns && j["interface"] == iface.ifname))
            kept.push_back(j);
    return kept;
}
}  // namespace

void StateDir::forget_iface(const IfaceRef& iface)
{
    update(path_, [&](json& m, const DurableDir&) { m["interfaces"] = without(m["interfaces"], iface); });
}

void StateDir::save_decap(const DecapRecord& r)
{
    update(path_, [&](json& m, const DurableDir&) {
        json all = without(m.value("decaps", json::array()), r.iface);
        all.push_back(decap_to_json(r));
        m["decaps"] = std::move(all);
    });
}

void StateDir::forget_decap(const IfaceRef& iface)
{
    update(path_, [&](json& m, const DurableDir&) {
        m["decaps"] = without(m.value("decaps", json::array()), iface);
    });
}

void StateDir::clear()
{
    update(path_, [&](json& m, const DurableDir&) {
        const uint64_t gen = m["generation"].get<uint64_t>();
        m = empty_manifest();
        m["generation"] = gen;
    });
}

}  // namespace xdpctl::state
