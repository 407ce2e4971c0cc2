// The layout of one BPF map as the kernel sees it (type, key and value size, entries, flags,
// and for a map of maps its inner map's): what a pinned map has and what this build's
// objects declare. libbpf reuses a pinned map only when they agree, so a difference is what
// an upgrade across a pinned-layout change must migrate (layout_versions.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

struct bpf_map;

namespace xdpctl::upgrade {

struct MapLayout {
    uint32_t type = 0;
    uint32_t key_size = 0;
    uint32_t value_size = 0;
    uint32_t max_entries = 0;
    uint32_t flags = 0;

    bool operator==(const MapLayout&) const = default;
    // The same record format: type, key and value size (entries and flags may differ: a
    // connection table resized by --lb-conntrack is still the same layout).
    bool same_format(const MapLayout& o) const
    {
        return type == o.type && key_size == o.key_size && value_size == o.value_size;
    }
    // "type=9 key=40 value=16 entries=65536 flags=0x2", as tests/data/pinned_map_layout.txt
    std::string describe() const;
};

// A pinned (or any) map's layout, from the kernel; throws naming `what` when it cannot.
MapLayout map_layout(int fd, const std::string& what);
// The layout an opened, not yet loaded, object declares for `map`.
MapLayout declared_layout(const bpf_map* map);

}  // namespace xdpctl::upgrade
