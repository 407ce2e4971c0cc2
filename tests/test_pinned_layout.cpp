// The layout of every map xdpctl pins (type, key and value size, entries, flags), against
// tests/data/pinned_map_layout.txt, the layout the last release pins. `load --force` after
// an upgrade reuses the pinned maps, so the policy, sets and counters survive it; libbpf
// refuses a pinned map whose layout differs, and that load fails. A change here needs a
// migration of the pinned state (or a new map name) and then an update of that file.
#include <bpf/libbpf.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "abi/xdpctl_abi.h"  // the skeletons name its structs
#include "skeleton.h"
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

}  // namespace
}  // namespace xdpctl::test
