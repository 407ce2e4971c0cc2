#include "upgrade/layout_versions.h"

#include <linux/bpf.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

#include "attach/iface_pins.h"
#include "attach/iface_ref.h"

namespace fs = std::filesystem;

namespace xdpctl::upgrade {

namespace {
std::string record_dir()
{
    return shared_maps_dir() + "/layout";
}
}  // namespace

const std::vector<KnownLayout>& known_layouts()
{
    static const std::vector<KnownLayout> versions = {
        {1,
         "xdpctl 0.1.0 (37fd14d .. 959f0e3, 2026-11-25)",
         {
             // One connection table per CPU: a flow seen on two CPUs had two entries.
             {"xdpctl_lb_ct", MapLayout{BPF_MAP_TYPE_LRU_PERCPU_HASH, 40, 16, 65536, 0},
              "converted to one table for all CPUs, its connections copied (lib/lb/conntrack_table.h)"},
             {"xdpctl_psmall", std::nullopt, "created empty; commits fill it once it is pinned"},
             {"xdpctl_pdecide", std::nullopt, "created empty; commits fill it once it is pinned"},
             {"xdpctl_panc", std::nullopt, "created empty; commits fill it once it is pinned"},
             {"xdpctl_pflow", std::nullopt, "created empty: the flow cache fills from classified packets"},
             // Decision events (added to the unreleased layout 2: maps added only, so the
             // pins of a build before them are of layout 2 all the same).
             {"xdpctl_rlog", std::nullopt, "created empty: each --log rule's bucket starts full"},
             {"xdpctl_events", std::nullopt, "created empty; `xdpctl trace` reads it once it is pinned"},
             // The LB's flow cache (maps added only, as the events above).
             {"xdpctl_lb_fcache", std::nullopt, "created empty: the flow cache fills from the connection table"},
             {"xdpctl_lb_fgen", std::nullopt, "created empty with the flow cache"},
             // The rate limit's per-CPU purses (maps added only, as the events above).
             {"xdpctl_rpurse", std::nullopt, "created empty: each CPU takes its next tokens from the bucket"},
         }},
        {2,
         "xdpctl after 0.1.0, before ranks were left free between rules (2026-11-25 .. 2026-12-06)",
         {
             // 10,000 ranks per (generation, direction) became XDPCTL_POL_MAX_RANKS (12,288):
             // room for the ranks left free between rules (lib/policy/rank_gaps.h).
             {"xdpctl_prule", MapLayout{BPF_MAP_TYPE_ARRAY, 4, 32, 40000, BPF_F_MMAPABLE},
              "the policy group is read through the old layout and committed to new maps (state_snapshot.h)"},
             {"xdpctl_panc", MapLayout{BPF_MAP_TYPE_ARRAY, 4, 2510848, 4, BPF_F_MMAPABLE},
              "the policy group is read through the old layout and committed to new maps (state_snapshot.h)"},
         }},
        {3, "xdpctl with ranks left free between rules (this build)", {}},
    };
    return versions;
}

const KnownLayout* find_layout(uint32_t version)
{
    for (const auto& v : known_layouts())
        if (v.version == version)
            return &v;
    return nullptr;
}

uint32_t recorded_layout_version()
{
    std::error_code ec;
    uint32_t found = 0;
    for (const auto& e : fs::directory_iterator(record_dir(), ec)) {
        const std::string name = e.path().filename().string();
        if (name.find_first_not_of("0123456789") == std::string::npos && !name.empty())
            found = std::max<uint32_t>(found, uint32_t(std::stoul(name)));
    }
    return found;
}

uint32_t recorded_group_layout(const std::string& group)
{
    std::error_code ec;
    uint32_t found = 0;
    for (const auto& e : fs::directory_iterator(record_dir(), ec)) {
        const std::string name = e.path().filename().string();
        const std::string digits = name.substr(std::min(name.size(), group.size() + 1));
        if (name.rfind(group + "-", 0) == 0 && !digits.empty() &&
            digits.find_first_not_of("0123456789") == std::string::npos)
            found = std::max<uint32_t>(found, uint32_t(std::stoul(digits)));
    }
    return found;
}

void record_layout_version(const std::map<std::string, uint32_t>& groups)
{
    const std::string version = std::to_string(kLayoutVersion);
    std::vector<std::string> stale;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(record_dir(), ec)) {
        const std::string name = e.path().filename().string();
        const size_t dot = name.find('-');  // bpffs takes no '.' in a name
        auto g = dot == std::string::npos ? groups.end() : groups.find(name.substr(0, dot));
        if (dot == std::string::npos ? name != version
                                     : g != groups.end() && name != g->first + "-" + std::to_string(g->second))
            stale.push_back(e.path().string());
    }
    for (const auto& p : stale)
        remove_pin_tree(p);
    make_pin_dir(record_dir() + "/" + version);
    for (const auto& [group, v] : groups)
        make_pin_dir(record_dir() + "/" + group + "-" + std::to_string(v));
}

std::optional<uint32_t> detect_layout_version(const LayoutByName& pinned, const LayoutByName& declared)
{
    // Walk back from this build's layout, one version's changes at a time.
    std::map<std::string, std::optional<MapLayout>> expect(declared.begin(), declared.end());
    const auto& all = known_layouts();
    for (auto v = all.rbegin(); v != all.rend(); ++v) {
        for (const auto& c : v->to_next)
            expect[c.name] = c.before;
        bool match = true;
        for (const auto& [name, want] : expect) {
            auto got = pinned.find(name);
            // A map this build adds that nothing pinned yet says nothing about the version.
            if (got != pinned.end() && (!want || !got->second.same_format(*want)))
                match = false;
        }
        if (match)
            return v->version;
    }
    return std::nullopt;
}

}  // namespace xdpctl::upgrade
