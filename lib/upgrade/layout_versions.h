// The pinned-map layouts xdpctl releases have made, newest last, and the one this build
// makes. Each version lists how its pinned maps differ from the next version's and how the
// next version's load migrates them; map_upgrade.h runs those steps, whatever version the
// pins are of, on `load --force` (docs/architecture.md, "Upgrades across a layout change").
//
// The version in force is recorded in bpffs as an empty directory maps/layout/N (written by
// every load; bpffs holds no files). Pins without the record were made by a release older
// than the record (layout 1) or by a development build between two versions: their version
// is found from the maps themselves.
//
// A change of a pinned map's type, key or value size (or a map added or removed) adds a
// version here, with its step, and updates tests/data/pinned_map_layout.txt.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "upgrade/map_layout.h"

namespace xdpctl::upgrade {

inline constexpr uint32_t kLayoutVersion = 3;

// The record layouts of the policy's maps (xdpctl_p*) and of the load balancer's (xdpctl_lb_*
// but its counters and connection table): a load over pins of another record layout
// re-applies the policy and the balancer to maps made anew (state_snapshot.h). A change of a
// map's type or sizes is found from the maps themselves; raise the number here when a record
// of abi/xdpctl_abi.h changes meaning at the same size (a pad given a meaning that zero does
// not keep).
inline constexpr uint32_t kPolicyRecordLayout = 1;
inline constexpr uint32_t kLbRecordLayout = 1;

// One map of a version that the next version lays out differently.
struct MapChange {
    const char* name;
    std::optional<MapLayout> before;  // none: not pinned by that version (the next adds it)
    const char* step;                 // what the next version's load does with it
};

struct KnownLayout {
    uint32_t version;
    const char* pinned_by;               // the releases that pin it
    std::vector<MapChange> to_next;      // empty for this build's
};

// Every known version, oldest first; the last is kLayoutVersion.
const std::vector<KnownLayout>& known_layouts();
const KnownLayout* find_layout(uint32_t version);

// The version recorded under maps/ (0: none recorded).
uint32_t recorded_layout_version();
// The record layout of a group of state maps ("policy": kPolicyRecordLayout, "lb":
// kLbRecordLayout) recorded beside it as maps/layout/GROUP-N; 0: none recorded (pins of an
// xdpctl before these records: the maps' sizes alone say whether they differ).
uint32_t recorded_group_layout(const std::string& group);
// Records kLayoutVersion and, for each group given, its layout (after a load left every
// pinned map in this build's layout; a group whose maps the load did not have keeps its record).
void record_layout_version(const std::map<std::string, uint32_t>& groups = {});

// Pinned maps by name, as they are (map_layout()) and as this build declares them.
using LayoutByName = std::map<std::string, MapLayout>;

// The newest version whose maps (this build's, changed back by the steps of the versions
// after it) the pinned maps match; none when they match no known version. (The recorded
// version, when there is one, is the answer without this.)
std::optional<uint32_t> detect_layout_version(const LayoutByName& pinned, const LayoutByName& declared);

}  // namespace xdpctl::upgrade
