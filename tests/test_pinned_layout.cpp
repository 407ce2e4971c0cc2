// The layout of every map xdpctl pins (type, key and value size, entries, flags), against
// tests/data/pinned_map_layout.txt, the layout the last release pins. `load --force` after
// an upgrade reuses the pinned maps, so the policy, sets and counters survive it; libbpf
// refuses a pinned map whose layout differs, so a change here needs a new version in
// lib/upgrade/layout_versions.h (with the step that migrates it, which `load --force` runs:
// lib/upgrade/map_upgrade.h) and then an update of that file.
#include <bpf/libbpf.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "abi/xdpctl_abi.h"  // the skeletons name its structs
#include "attach/skeleton.h"
#include "upgrade/layout_versions.h"
#include "upgrade/map_layout.h"
#include "xdpctl_tc.skel.h"
#include "xdpctl_xdp.skel.h"

namespace xdpctl::test {
namespace {

// One line per pinned map of an opened (not loaded) object: the per-interface maps too, as
// they are pinned under each interface. Inner-map templates are not pinned and not listed.
template <typename Skel>
void collect(std::vector<std::string>& out, const char* object)
{
    SkelPtr<Skel> s{Skel::open()};
    ASSERT_TRUE(s) << "cannot open the " << object << " object";
    bpf_map* map;
    bpf_object__for_each_map(map, s->obj)
    {
        if (bpf_map__is_internal(map))
            continue;
        std::string line = fmt::format("{} {} type={} key={} value={} entries={} flags={:#x}", object,
                                       bpf_map__name(map), int(bpf_map__type(map)), bpf_map__key_size(map),
                                       bpf_map__value_size(map), bpf_map__max_entries(map),
                                       bpf_map__map_flags(map));
        // A map of maps takes only inner maps like its template: a new template's value size
        // would refuse the tables a pinned outer map is given.
        if (bpf_map* inner = bpf_map__inner_map(map))
            line += fmt::format(" inner: type={} key={} value={} flags={:#x}", int(bpf_map__type(inner)),
                                bpf_map__key_size(inner), bpf_map__value_size(inner),
                                bpf_map__map_flags(inner));
        out.push_back(line);
    }
}

TEST(PinnedLayout, SameAsTheLastRelease)
{
    std::vector<std::string> now;
    collect<xdpctl_xdp>(now, "xdp");
    collect<xdpctl_tc>(now, "tc");
    std::sort(now.begin(), now.end());

    std::ifstream in(XDPCTL_PINNED_LAYOUT_FILE);
    ASSERT_TRUE(in) << "cannot read " << XDPCTL_PINNED_LAYOUT_FILE;
    std::vector<std::string> released;
    for (std::string line; std::getline(in, line);)
        if (!line.empty() && line[0] != '#')
            released.push_back(line);
    std::sort(released.begin(), released.end());

    std::ostringstream diff;
    for (const auto& l : released)
        if (!std::binary_search(now.begin(), now.end(), l))
            diff << "  released: " << l << "\n";
    for (const auto& l : now)
        if (!std::binary_search(released.begin(), released.end(), l))
            diff << "  now:      " << l << "\n";
    EXPECT_TRUE(diff.str().empty())
        << "a pinned map's layout changed; `load --force` after an upgrade could not reuse the "
           "maps the last release pinned (policy, sets and counters would be lost):\n"
        << diff.str();
}

// This build's maps as the XDP and TC objects declare them, by name.
upgrade::LayoutByName declared_layouts()
{
    upgrade::LayoutByName out;
    SkelPtr<xdpctl_xdp> x{xdpctl_xdp::open()};
    SkelPtr<xdpctl_tc> t{xdpctl_tc::open()};
    for (bpf_object* obj : {x->obj, t->obj}) {
        bpf_map* map;
        bpf_object__for_each_map(map, obj)
            if (!bpf_map__is_internal(map))
                out[bpf_map__name(map)] = upgrade::declared_layout(map);
    }
    return out;
}

TEST(PinnedLayout, KnownVersionsEndWithThisBuildsAndAreFoundFromTheMaps)
{
    const auto& all = upgrade::known_layouts();
    ASSERT_FALSE(all.empty());
    EXPECT_EQ(all.back().version, upgrade::kLayoutVersion);
    EXPECT_TRUE(all.back().to_next.empty());
    for (size_t i = 1; i < all.size(); i++)
        EXPECT_EQ(all[i].version, all[i - 1].version + 1);

    const upgrade::LayoutByName now = declared_layouts();
    EXPECT_EQ(upgrade::detect_layout_version(now, now), upgrade::kLayoutVersion);
    EXPECT_EQ(upgrade::detect_layout_version({}, now), upgrade::kLayoutVersion) << "nothing pinned";
    // Each older version, made from this build's maps by the steps back to it, is found as
    // itself; every map a step names is one this build declares.
    upgrade::LayoutByName old = now;
    for (auto v = all.rbegin(); v != all.rend(); ++v) {
        for (const auto& c : v->to_next) {
            EXPECT_TRUE(now.count(c.name)) << c.name;
            if (c.before)
                old[c.name] = *c.before;
            else
                old.erase(c.name);
        }
        EXPECT_EQ(upgrade::detect_layout_version(old, now), v->version);
    }
    // A map no version had: none.
    old["xdpctl_pvlan"].value_size += 8;
    EXPECT_EQ(upgrade::detect_layout_version(old, now), std::nullopt);
}

}  // namespace
}  // namespace xdpctl::test
