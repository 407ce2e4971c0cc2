#include "upgrade/map_upgrade.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "attach/datapath_paths.h"
#include "util/error.h"
#include "attach/iface_pins.h"
#include "attach/iface_ref.h"
#include "upgrade/map_layout.h"
#include "upgrade/state_snapshot.h"

namespace xdpctl::upgrade {

namespace {

enum class Kind { counters, restart, conntrack, state, unknown };

struct Role {
    Kind kind;
    uint64_t latest_words = 0;  // counters: the u64 words that hold a time
    const char* group = "";     // state: "policy" or "lb"
};

// What each map holds, for a layout change.
Role role_of(const std::string& name)
{
    if (name == "xdpctl_rctr")  // xdpctl_rule_ctr: packets, bytes, last_hit_ns, last_hit_jiffies
        return {Kind::counters, 0b1100};
    if (name == "xdpctl_stats" || name == "xdpctl_lb_stats" || name == "xdpctl_lb_vctr" ||
        name == "xdpctl_lb_bctr")
        return {Kind::counters};
    // The LB's flow cache starts empty as well: it fills from the connection table.
    if (name == "xdpctl_rrate" || name == "xdpctl_rpurse" || name == "xdpctl_meta" || name == "xdpctl_lb_fcache" ||
        name == "xdpctl_lb_fgen")
        return {Kind::restart};
    if (name == "xdpctl_lb_ct")
        return {Kind::conntrack};
    // The policy's maps: its stored image (xdpctl_psrc), the control record and the compiled
    // tables, all made again by a commit of the stored policy.
    if (name.rfind("xdpctl_p", 0) == 0)
        return {Kind::state, 0, "policy"};
    // The balancer's VIPs, backends, tables and switches.
    if (name.rfind("xdpctl_lb_", 0) == 0)
        return {Kind::state, 0, "lb"};
    return {Kind::unknown};
}

uint32_t group_layout(const std::string& group)
{
    return group == "policy" ? kPolicyRecordLayout : kLbRecordLayout;
}

// Where the old maps wait while a load replaces them: moved (bpffs renames pins), not
// unpinned, so a load killed half-way loses none; the next one puts them back. One pin each,
// named by its path under the pin root with ':' for '/' (no interface name holds ':').
std::string aside_dir()
{
    return shared_maps_dir() + "/upgrade";
}

std::string aside_path(const std::string& pin)
{
    std::string rel = pin.substr(std::string(kPinRoot).size() + 1);
    std::replace(rel.begin(), rel.end(), '/', ':');
    return aside_dir() + "/" + rel;
}

void move_pin(const std::string& from, const std::string& to)
{
    if (rename(from.c_str(), to.c_str()) != 0)
        fail("cannot move the pin {} to {}: {}", from, to, errno_str(errno));
}

// Old maps a killed load left aside go back to their pins (replacing new ones it made);
// returns how many.
size_t put_back_interrupted()
{
    size_t n = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(aside_dir(), ec)) {
        std::string rel = e.path().filename().string();
        std::replace(rel.begin(), rel.end(), ':', '/');
        const std::string pin = std::string(kPinRoot) + "/" + rel;
        if (!path_exists(std::filesystem::path(pin).parent_path().string())) {
            unpin(e.path().string());  // its interface was unloaded since
            continue;
        }
        unpin(pin);
        move_pin(e.path().string(), pin);
        n++;
    }
    rmdir(aside_dir().c_str());
    return n;
}

bool is_shared(const std::string& pin)
{
    return pin.rfind(shared_maps_dir() + "/", 0) == 0;
}

std::string version_name(const std::optional<uint32_t>& v)
{
    if (!v)
        return "an unknown layout";
    const KnownLayout* k = find_layout(*v);
    return fmt::format("layout version {} ({})", *v, k ? k->pinned_by : "?");
}

}  // namespace

struct MapUpgrade::GroupState {
    std::string group;
    PolicyState policy;  // group "policy"
    LbState lb;          // group "lb"
    bool applied = false;
};

MapUpgrade::MapUpgrade() = default;

MapUpgrade::~MapUpgrade()
{
    if (finished_)
        return;
    // The load failed: every link it moved goes back to its old program (newest first), and
    // the maps it replaced under their pins.
    for (auto it = swapped_.rbegin(); it != swapped_.rend(); ++it)
        bpf_link_update(it->first.get(), it->second.get(), nullptr);
    for (auto& r : replaced_)
        try {
            unpin(r.pin);
            move_pin(aside_path(r.pin), r.pin);
        } catch (...) {
        }
    rmdir(aside_dir().c_str());
}

void MapUpgrade::detect_once(bpf_object* obj)
{
    if (detected_)
        return;
    detected_ = true;
    if (size_t n = put_back_interrupted())
        notes_.push_back(fmt::format("{} map(s) an interrupted upgrade had replaced were put back first", n));
    LayoutByName pinned, declared;
    bpf_map* map;
    bpf_object__for_each_map(map, obj)
    {
        const char* pin = bpf_map__pin_path(map);
        if (bpf_map__is_internal(map) || !pin)
            continue;
        declared[bpf_map__name(map)] = declared_layout(map);
        if (UniqueFd fd = open_pinned(pin))
            pinned[bpf_map__name(map)] = map_layout(fd.get(), pin);
    }
    const uint32_t rec = recorded_layout_version();
    from_version_ = rec && find_layout(rec) ? std::optional<uint32_t>(rec) : detect_layout_version(pinned, declared);
    // A state group is migrated when one of its maps differs, or its recorded record layout.
    for (const auto& [name, have] : pinned) {
        const Role role = role_of(name);
        if (role.kind == Kind::state && !(have == declared.at(name)))
            groups_migrating_.insert(role.group);
    }
    for (const char* group : {"policy", "lb"})
        if (const uint32_t v = recorded_group_layout(group); v && v != group_layout(group))
            groups_migrating_.insert(group);
}

void MapUpgrade::read_state(const std::string& group)
{
    auto st = std::make_unique<GroupState>();
    st->group = group;
    try {
        if (group == "policy")
            st->policy = read_policy_state(shared_maps_dir());
        else
            st->lb = read_lb_state(shared_maps_dir());
    } catch (const Error& e) {
        const uint32_t rec = recorded_group_layout(group);
        fail("the pinned {} (record layout {}; this build's is {}) cannot be read to carry it into this "
             "build's layout: {}\nnothing was changed: the programs attached run on as they were. The state "
             "directory holds the last committed policy and load balancer: 'xdpctl unload --all' then "
             "'xdpctl restore' rebuilds them in this build's layout (counters start at 0)",
             group == "policy" ? "policy" : "load balancer", rec ? std::to_string(rec) : "not recorded",
             group_layout(group), e.what());
    }
    states_.push_back(std::move(st));
}

void MapUpgrade::before_load(bpf_object* obj)
{
    detect_once(obj);
    std::vector<Replaced> todo;
    std::string refused;
    std::set<std::string> groups_here;  // state groups this object has maps of
    bpf_map* map;
    bpf_object__for_each_map(map, obj)
    {
        const char* pin = bpf_map__pin_path(map);
        if (bpf_map__is_internal(map) || !pin)
            continue;
        const std::string name = bpf_map__name(map);
        const Role role = role_of(name);
        if (role.kind == Kind::state)
            groups_here.insert(role.group);
        UniqueFd fd = open_pinned(pin);
        if (!fd || role.kind == Kind::conntrack)
            continue;
        const MapLayout have = map_layout(fd.get(), pin);
        const MapLayout want = declared_layout(map);
        // A state group's maps are all made again (once: the next object of this load finds
        // the new ones pinned), whatever their own layout: one commit fills them.
        const bool group_moves = role.kind == Kind::state && groups_migrating_.count(role.group) &&
                                 !groups_current_.count(role.group);
        if (have == want && !group_moves)
            continue;
        if (role.kind == Kind::unknown) {
            refused += fmt::format("\n  {}: pinned {}, this build {}", pin, have.describe(), want.describe());
            continue;
        }
        todo.push_back({name, pin, std::move(fd), role.kind == Kind::counters, role.latest_words, is_shared(pin)});
    }
    if (!refused.empty())
        fail("the pinned maps have {}; this build's is version {} and no migration is known for:{}\n"
             "nothing was changed; 'xdpctl unload --all' removes every pin (and the policy, sets, "
             "load balancer and counters they hold)",
             version_name(from_version_), kLayoutVersion, refused);
    // Each group's state is read whole before any of its maps moves: a damaged one throws here.
    for (const auto& group : groups_here)
        if (groups_migrating_.count(group) && !groups_current_.count(group))
            read_state(group);
    for (const auto& group : groups_here)
        groups_current_.emplace(group, group_layout(group));
    for (auto& r : todo) {
        // libbpf creates and pins the new map during the load; the old one waits aside.
        make_pin_dir(aside_dir());
        move_pin(r.pin, aside_path(r.pin));
        replaced_.push_back(std::move(r));
    }
}

void MapUpgrade::after_load(bpf_object* obj)
{
    for (auto& r : replaced_) {
        if (!r.counters || std::any_of(carries_.begin(), carries_.end(),
                                       [&](const auto& c) { return c->name() == r.pin; }))
            continue;
        bpf_map* map = bpf_object__find_map_by_name(obj, r.name.c_str());
        if (!map || !bpf_map__pin_path(map) || r.pin != bpf_map__pin_path(map))
            continue;
        carries_.push_back(std::make_unique<CounterCarry>(r.pin, UniqueFd{dup(r.old_fd.get())},
                                                          dup_map_fd(map), r.latest_words));
        carries_.back()->copy();
    }
    // The state into the new maps, before any program runs on them: reloads that a commit of
    // new paths would make are held (the programs this load swaps in have every path).
    for (auto& st : states_) {
        if (st->applied)
            continue;
        HoldProgramReloads hold;
        if (st->group == "policy")
            apply_policy_state(st->policy);
        else
            apply_lb_state(st->lb);
        st->applied = true;
    }
}

void MapUpgrade::before_swap(int link_fd)
{
    if (replaced_.empty() || finished_)
        return;
    bpf_link_info li{};
    __u32 len = sizeof(li);
    if (bpf_link_get_info_by_fd(link_fd, &li, &len) != 0)
        fail("cannot read the link about to be swapped: {}", errno_str(errno));
    UniqueFd prog{bpf_prog_get_fd_by_id(li.prog_id)};
    if (!prog)
        fail("cannot hold the program of the link about to be swapped: {}", errno_str(errno));
    swapped_.emplace_back(UniqueFd{dup(link_fd)}, std::move(prog));
}

std::vector<std::string> MapUpgrade::after_swap()
{
    finished_ = true;
    std::vector<std::string> notes = std::move(notes_);
    if (!carries_.empty()) {
        wait_for_runs();  // no packet is still counted into an old map
        for (auto& c : carries_)
            c->add_since_copy();
    }
    if (from_version_ != kLayoutVersion)
        notes.push_back(fmt::format("the pinned maps had {}; now version {}", version_name(from_version_),
                                    kLayoutVersion));
    for (const auto& r : replaced_) {
        const Role role = role_of(r.name);
        if (role.kind != Kind::state)
            notes.push_back(fmt::format("{} recreated in this build's layout{}", r.pin,
                                        r.counters ? ", its counters carried over" : " (it starts empty)"));
    }
    for (const auto& st : states_) {
        if (st->group == "policy")
            notes.push_back(fmt::format("the policy ({} rule(s), {} set(s)) re-applied to its maps made anew in "
                                        "this build's layout, each rule in its counter slot",
                                        st->policy.policy.rules.size(), st->policy.policy.sets.size()));
        else
            notes.push_back(fmt::format("the load balancer ({} VIP(s), {} backend slot(s)) re-applied to its maps "
                                        "made anew in this build's layout, VIP ids and backend slots kept",
                                        st->lb.vips.size(), st->lb.slots.size()));
    }
    for (const auto& r : replaced_)
        unpin(aside_path(r.pin));
    rmdir(aside_dir().c_str());
    record_layout_version(groups_current_);
    return notes;
}

bool MapUpgrade::replaced_shared() const
{
    return std::any_of(replaced_.begin(), replaced_.end(), [](const Replaced& r) { return r.shared; });
}

}  // namespace xdpctl::upgrade
