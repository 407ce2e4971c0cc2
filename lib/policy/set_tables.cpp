#include "policy/set_tables.h"

#include <bpf/bpf.h>

#include <algorithm>
#include <cstring>

#include "policy/prefix_table.h"
#include "policy/table_maps.h"
#include "util/error.h"

namespace xdpctl::policy {

namespace {

// Tables up to this many lines are built in memory of their own and copied; larger ones
// (a big set's) straight into their map, as the commit builds large address tables.
constexpr uint64_t kBuildInMapLines = (32ull << 20) / XDPCTL_PFX_LINE_BYTES;

uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

}  // namespace

uint64_t set_print(const PrefixSet& s)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ s.entries.size();
    for (const SetEntry& e : s.entries) {
        uint64_t hi = 0, lo = 0;
        std::memcpy(&hi, e.prefix.addr.data(), 8);
        std::memcpy(&lo, e.prefix.addr.data() + 8, 8);
        h = mix64(h ^ hi) + lo;
        h = mix64(h ^ (uint64_t(e.prefix.len) | uint64_t(e.prefix.family) << 8 | uint64_t(e.except) << 16));
    }
    return h ? h : 1;
}

std::array<uint64_t, XDPCTL_POL_SET_SLOTS> set_slot_prints(int pset_fd)
{
    std::array<uint64_t, XDPCTL_POL_SET_SLOTS> out{};
    for (uint32_t slot = 0; slot < XDPCTL_POL_SET_SLOTS; slot++) {
        const uint32_t id = slot_map_id(pset_fd, slot);
        UniqueFd fd(id ? bpf_map_get_fd_by_id(id) : -1);
        xdpctl_pfx_line head{};
        uint32_t key = 0;
        if (!fd || bpf_map_lookup_elem(fd.get(), &key, &head) != 0 || head.hdr.magic != XDPCTL_PFX_MAGIC)
            continue;
        out[slot] = uint64_t(head.hdr.set_print[0]) | uint64_t(head.hdr.set_print[1]) << 32;
    }
    return out;
}

void install_set_table(int pset_fd, int psl1_fd, uint32_t slot, const PrefixSet& s, bool sparse)
{
    if (slot >= XDPCTL_POL_SET_SLOTS)
        fail("set table slot {} is out of range", slot);
    std::vector<PrefixEntry4> e4;
    std::vector<PrefixEntry6> e6;
    for (const SetEntry& e : s.entries) {
        const uint32_t v = e.except ? XDPCTL_PFX_EXCEPTED : 1;
        if (e.prefix.family == Family::v4)
            e4.push_back({to_prefix4(e.prefix), v});
        else
            e6.push_back({to_prefix6(e.prefix), v});
    }
    UniqueFd map;
    PrefixTable t = PrefixTable::build(e4, e6, {.sparse = sparse}, [&](uint64_t lines) -> int {
        if (lines <= kBuildInMapLines)
            return -1;
        map = create_lines_map("xdpctl_pset", lines);
        return map.get();
    });
    decltype(e4)().swap(e4);
    decltype(e6)().swap(e6);
    std::vector<uint32_t> l1;
    if (t.sunk()) {
        l1 = t.take_sunk_l1();
    } else {
        const auto* words = reinterpret_cast<const uint32_t*>(t.lines().data());
        l1.assign(words + XDPCTL_PFX4_L1_WORD, words + XDPCTL_PFX4_L1_WORD + XDPCTL_PFX_L1_ENTRIES);
        map = create_lines_map("xdpctl_pset", t.lines().size());
        fill_prefix_table_map(map.get(), std::move(t));
    }
    // The print, in the header the datapath never reads.
    xdpctl_pfx_line head{};
    uint32_t key = 0;
    if (bpf_map_lookup_elem(map.get(), &key, &head) != 0)
        fail("cannot read back set {}'s table: {}", s.name, errno_str(errno));
    const uint64_t print = set_print(s);
    head.hdr.set_print[0] = uint32_t(print);
    head.hdr.set_print[1] = uint32_t(print >> 32);
    if (bpf_map_update_elem(map.get(), &key, &head, BPF_ANY) != 0)
        fail("cannot write set {}'s table: {}", s.name, errno_str(errno));
    // Level 1 first: nothing reads the slot yet.
    if (bpf_map_update_elem(psl1_fd, &slot, l1.data(), BPF_ANY) != 0)
        fail("cannot write set {}'s level 1: {}", s.name, errno_str(errno));
    update_slots(pset_fd, {slot}, {uint32_t(map.get())});
}

}  // namespace xdpctl::policy
