#include "lb/conntrack_table.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "abi/xdpctl_abi.h"
#include "stats/counters.h"
#include "util/error.h"
#include "attach/iface_pins.h"

namespace xdpctl::lb {

namespace {

std::string ct_pin()
{
    return shared_maps_dir() + "/xdpctl_lb_ct";
}

bpf_map_info map_info(int fd)
{
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_map_get_info_by_fd(fd, &info, &len) != 0)
        fail("cannot read the pinned connection table: {}", errno_str(errno));
    return info;
}

bool current_layout(const bpf_map_info& info)
{
    return info.type == BPF_MAP_TYPE_LRU_HASH && info.key_size == sizeof(xdpctl_lb_flow_key) &&
           info.value_size == sizeof(xdpctl_lb_flow);
}

std::string names(const std::vector<IfaceRef>& ifs)
{
    std::string s;
    for (const auto& i : ifs)
        s += (s.empty() ? "" : ", ") + i.display();
    return s;
}

}  // namespace

bool conntrack_layout_current(int fd)
{
    return current_layout(map_info(fd));
}

ConntrackPlan::ConntrackPlan(bpf_object* obj, uint32_t requested, const std::vector<IfaceRef>& others)
    : others_(others)
{
    bpf_map* ct = bpf_object__find_map_by_name(obj, "xdpctl_lb_ct");
    if (!ct)
        return;
    new_entries_ = requested ? requested : XDPCTL_LB_CT_DEFAULT;
    if (UniqueFd pinned = open_pinned(ct_pin())) {
        const bpf_map_info info = map_info(pinned.get());
        old_layout_ = !current_layout(info);
        old_entries_ = info.max_entries;
        if (!requested)
            new_entries_ = info.max_entries;
        if (!old_layout_ && new_entries_ != info.max_entries && !others.empty())
            fail_usage("--lb-conntrack {}: the connection table has {} entries and the programs on "
                       "{} use it; it can be resized while no other interface is loaded "
                       "(unload them, load this one with --lb-conntrack, load them again)",
                       requested, info.max_entries, names(others));
        if (old_layout_ || new_entries_ != info.max_entries) {
            // libbpf creates and pins the new table during the load; ours keeps the old.
            replaced_ = std::move(pinned);
            unpin(ct_pin());
        }
    }
    if (bpf_map__set_max_entries(ct, new_entries_))
        fail("cannot size the connection table to {} entries", new_entries_);
}

ConntrackPlan::~ConntrackPlan()
{
    if (!replaced_ || finished_)
        return;
    try {
        unpin(ct_pin());  // a new table the failed load may have pinned
        pin_fd(replaced_.get(), ct_pin());
    } catch (...) {
    }
}

std::vector<std::string> ConntrackPlan::finish(int new_fd, int fgen_fd)
{
    finished_ = true;
    if (!replaced_)
        return {};
    size_t n = carry_conntrack(replaced_.get(), new_fd);
    // The cache outlives the table (pinned on its own): a copy of an entry not carried
    // (keys of another layout) must not answer.
    if (fgen_fd >= 0)
        void_flow_cache(fgen_fd);
    std::vector<std::string> notes;
    if (map_info(replaced_.get()).key_size != sizeof(xdpctl_lb_flow_key))
        notes.push_back("the connection table had flow keys of another layout: no connection was carried; "
                        "each is scheduled again by its VIP's Maglev table (its backend, unless the backends "
                        "changed since it began)");
    notes.push_back(old_layout_
                        ? fmt::format("the connection table now has the layout of this version; {} "
                                      "connection(s) carried over", n)
                        : fmt::format("the connection table was resized from {} to {} entries; {} "
                                      "connection(s) carried over", old_entries_, new_entries_, n));
    if (!others_.empty())
        notes.push_back(fmt::format("{} still run(s) on the previous connection table until "
                                    "'xdpctl load --force' reloads it", names(others_)));
    return notes;
}

size_t carry_conntrack(int from_fd, int to_fd)
{
    const bpf_map_info info = map_info(from_fd);
    const bool per_cpu = info.type == BPF_MAP_TYPE_LRU_PERCPU_HASH || info.type == BPF_MAP_TYPE_PERCPU_HASH;
    // A flow key of another size names flows in a way this build cannot read: none is
    // carried, and each connection is scheduled again by its VIP's Maglev table (the same
    // backend, unless the backends changed since the connection began).
    if (info.key_size != sizeof(xdpctl_lb_flow_key))
        return 0;
    // Values at this build's offsets, cut or zero-padded (a record only grows at its end).
    const size_t ncpu = per_cpu ? size_t(possible_cpus()) : 1;
    const size_t stride = per_cpu ? (info.value_size + 7) / 8 * 8 : info.value_size;
    size_t copied = 0;
    xdpctl_lb_flow_key key{}, next{};
    std::vector<uint8_t> vals(ncpu * stride);
    const void* prev = nullptr;
    // One key at a time: a rare step (resize, upgrade), and the per-CPU layout's batch
    // values would need their own stride.
    while (bpf_map_get_next_key(from_fd, prev, &next) == 0) {
        key = next;
        prev = &key;
        if (bpf_map_lookup_elem(from_fd, &key, vals.data()) != 0)
            continue;  // evicted meanwhile
        for (size_t c = 0; c < ncpu; c++) {
            xdpctl_lb_flow v{};
            std::memcpy(&v, vals.data() + c * stride, std::min<size_t>(sizeof(v), info.value_size));
            if (!(v.flags & XDPCTL_LB_FLOW_F_VALID))
                continue;
            // A packet on the new table may have made the entry already: it stays.
            if (bpf_map_update_elem(to_fd, &key, &v, BPF_NOEXIST) == 0)
                copied++;
            break;
        }
    }
    return copied;
}

void void_flow_cache(int fgen_fd)
{
    // Read, raised, written back: a copy made meanwhile holds a word read before, never the
    // new one. An insert's raise lost to the write back is covered by the larger step.
    std::vector<uint32_t> keys(XDPCTL_LB_FCACHE_SLOTS), gens(XDPCTL_LB_FCACHE_SLOTS);
    __u32 count = XDPCTL_LB_FCACHE_SLOTS, out_batch = 0;
    if (bpf_map_lookup_batch(fgen_fd, nullptr, &out_batch, keys.data(), gens.data(), &count, nullptr) != 0 &&
        errno != ENOENT)
        fail("cannot read the flow cache's generations: {}", errno_str(errno));
    for (uint32_t i = 0; i < count; i++)
        gens[i] += XDPCTL_LB_FGEN_USER_STEP;
    if (count && bpf_map_update_batch(fgen_fd, keys.data(), gens.data(), &count, nullptr) != 0)
        fail("cannot void the flow cache: {}", errno_str(errno));
}

}  // namespace xdpctl::lb
