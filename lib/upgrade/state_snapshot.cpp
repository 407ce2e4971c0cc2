#include "upgrade/state_snapshot.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <unordered_set>

#include <bpf/bpf.h>
#include <fmt/format.h>

#include "abi/xdpctl_abi.h"
#include "attach/iface_pins.h"
#include "attach/iface_ref.h"
#include "lb/maglev.h"
#include "policy/policy_store.h"
#include "policy/stored_image.h"
#include "upgrade/map_layout.h"
#include "util/error.h"

namespace xdpctl::upgrade {

namespace {

// A pinned map and its layout, for reading records of any value size.
struct PinnedMap {
    std::string name;
    UniqueFd fd;
    MapLayout layout;

    PinnedMap(const std::string& dir, const char* n, const char* what)
        : name(n), fd(open_pinned_map(dir, n, what)), layout(map_layout(fd.get(), dir + "/" + n))
    {
    }

    // Key `key` (the pinned key size) as T at this build's offsets: the common prefix of the
    // pinned value and T, the rest zero. false: no such key.
    template <typename T>
    bool read(const void* key, T* out) const
    {
        std::vector<uint8_t> buf(layout.value_size);
        if (bpf_map_lookup_elem(fd.get(), key, buf.data()) != 0)
            return false;
        *out = T{};
        std::memcpy(static_cast<void*>(out), buf.data(), std::min<size_t>(sizeof(T), buf.size()));
        return true;
    }

    // An array's element `idx`; throws when it cannot be read.
    template <typename T>
    T at(uint32_t idx) const
    {
        if (layout.key_size != sizeof(uint32_t))
            fail("the pinned {} has keys of {} bytes, not an array's 4", name, layout.key_size);
        if (idx >= layout.max_entries)
            fail("the pinned {} has {} entries: entry {} is past its end", name, layout.max_entries, idx);
        T out{};
        if (!read(&idx, &out))
            fail("cannot read entry {} of the pinned {}: {}", idx, name, errno_str(errno));
        return out;
    }
};

}  // namespace

PolicyState read_policy_state(const std::string& dir)
{
    PolicyState s;
    const PinnedMap ctl_map(dir, "xdpctl_pctl", "policy");
    const auto ctl = ctl_map.at<xdpctl_pol_ctl>(0);
    s.installed = ctl.installed != 0;
    if (!s.installed)
        return s;
    const uint32_t gen = ctl.gen & 1;
    const PinnedMap src(dir, "xdpctl_psrc", "policy");
    // With the set changes made in place since (stored_image.h), as every command reads it.
    s.policy = policy::read_stored_policy(src.fd.get(), gen, ctl.commits,
                                          fmt::format("the policy stored in {}/xdpctl_psrc (generation {})", dir, gen));

    std::unordered_set<uint32_t> ids;
    for (const auto& r : s.policy.rules)
        ids.insert(r.id);

    // Each rule's counter slot, from the active generation's rule records (both directions).
    // How many each direction has is in the header where it has this build's size; a header
    // of another size may have moved the counts (its directions are an array of records):
    // then every rank is read, passing over records of rules the stored policy does not have
    // (left from earlier commits) and later records of a rule already found (the ranks in
    // use come first).
    const PinnedMap hdr_map(dir, "xdpctl_phdr", "policy");
    const bool counted = hdr_map.layout.value_size == sizeof(xdpctl_pol_hdr);
    const auto hdr = counted ? hdr_map.at<xdpctl_pol_hdr>(gen) : xdpctl_pol_hdr{};
    const PinnedMap rules(dir, "xdpctl_prule", "policy");
    // Ranks per (generation, direction) as the pinned map has them: 10,000 before ranks were
    // left free between rules (layout 3), XDPCTL_POL_MAX_RANKS since.
    const uint32_t stride = rules.layout.max_entries / (XDPCTL_POL_GENS * XDPCTL_POL_DIRS);
    std::unordered_map<uint32_t, uint32_t> id_of_slot;
    for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++) {
        const uint32_t n = counted ? hdr.dir[d].n_rules : stride;
        if (n > stride)
            fail("the pinned policy header says direction {} has {} ranks, over {}", d, n, stride);
        // And the edge rule's record (abi: XDPCTL_POL_DECIDE_EDGE), at the last rank.
        const bool edge = counted && n && (hdr.dir[d].decide & XDPCTL_POL_DECIDE_EDGE) && stride == XDPCTL_POL_MAX_RANKS;
        for (uint32_t i = 0; i < n + edge; i++) {
            const uint32_t rank = i < n ? i : XDPCTL_POL_EDGE_RANK;
            const auto r = rules.at<xdpctl_rule_rec>(XDPCTL_POL_GD(gen, d) * stride + rank);
            if (r.id == 0 || (!counted && (!ids.count(r.id) || s.slots.count(r.id))))
                continue;  // a free rank (policy/rank_gaps.h), or not a record of this policy
            // The records and the stored policy must be of one commit.
            if (!ids.count(r.id))
                fail("the pinned rule records name rule {}, which the stored policy does not have", r.id);
            if (r.ctr_slot >= XDPCTL_POL_COUNTER_SLOTS)
                fail("the pinned record of rule {} names counter slot {}, past the table", r.id, r.ctr_slot);
            auto [slot, new_id] = s.slots.emplace(r.id, r.ctr_slot);
            auto [id, new_slot] = id_of_slot.emplace(r.ctr_slot, r.id);
            if (slot->second != r.ctr_slot || id->second != r.id)
                fail("the pinned rule records give rule {} counter slots {} and {}, or slot {} to rules {} and {}",
                     r.id, slot->second, r.ctr_slot, r.ctr_slot, id->second, r.id);
        }
    }
    // A rule in no record (none of its directions) never counted: the commit gives it a new slot.
    return s;
}

LbState read_lb_state(const std::string& dir)
{
    LbState s;
    const PinnedMap vips(dir, "xdpctl_lb_vips", "load-balancer");
    std::vector<uint8_t> key(vips.layout.key_size), next(vips.layout.key_size);
    std::set<uint32_t> ids;
    for (const void* prev = nullptr; bpf_map_get_next_key(vips.fd.get(), prev, next.data()) == 0; prev = key.data()) {
        key = next;
        xdpctl_lb_vip_key k{};
        std::memcpy(&k, key.data(), std::min(sizeof(k), key.size()));
        if (k.proto == XDPCTL_LB_PROTO_ADDR)
            continue;  // an address marker: made again with its VIP
        lb::VipEntry e;
        if (!vips.read(key.data(), &e.rec))
            continue;  // deleted meanwhile: no writer runs, so never
        if ((k.family != 4 && k.family != 6) || e.rec.id >= XDPCTL_LB_MAX_VIPS || !ids.insert(e.rec.id).second ||
            !lb::is_prime(e.rec.ring_size) || e.rec.ring_size > XDPCTL_LB_RING_MAX)
            fail("the pinned VIP record of id {} (family {}, Maglev table of {}) is damaged", e.rec.id, k.family,
                 e.rec.ring_size);
        e.spec = lb::vip_spec(k);
        s.vips.push_back(e);
    }
    std::sort(s.vips.begin(), s.vips.end(), [](const auto& a, const auto& b) { return a.rec.id < b.rec.id; });

    const PinnedMap backends(dir, "xdpctl_lb_backends", "load-balancer");
    const uint32_t n = std::min<uint32_t>(backends.layout.max_entries, XDPCTL_LB_MAX_BACKENDS);
    for (uint32_t slot = 0; slot < n; slot++) {
        const auto rec = backends.at<xdpctl_lb_backend>(slot);
        const bool used = rec.flags & XDPCTL_LB_BE_F_USED;
        if (!used && rec.gen == 0)
            continue;  // never used
        if (used && (!ids.count(rec.vip_id) || (rec.family != 4 && rec.family != 6)))
            fail("the pinned backend in slot {} serves VIP id {}, which no VIP has", slot, rec.vip_id);
        s.slots.push_back({slot, rec});
    }
    return s;
}

void apply_policy_state(const PolicyState& s)
{
    if (!s.installed)
        return;  // the new maps hold no policy either
    policy::PolicyStore store;
    store.commit_in_slots(s.policy, s.slots);
}

void apply_lb_state(const LbState& s)
{
    if (s.vips.empty() && s.slots.empty())
        return;
    lb::LbMaps maps(lb::lb_map_fds_pinned(shared_maps_dir()));
    maps.restore(s.vips, s.slots);
}

}  // namespace xdpctl::upgrade
