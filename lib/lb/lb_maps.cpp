#include "lb/lb_maps.h"

#include <fcntl.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <bpf/bpf.h>

#include "stats/counters.h"
#include "attach/datapath_paths.h"
#include "util/error.h"
#include "attach/iface_pins.h"
#include "lb/conntrack_table.h"
#include "lb/maglev.h"

namespace xdpctl::lb {

namespace {

// The pinned name of each map, in LbMapFds order.
constexpr const char* kNames[] = {"xdpctl_lb_ctl",   "xdpctl_lb_vips", "xdpctl_lb_vip_ids",
                                  "xdpctl_lb_backends", "xdpctl_lb_rings", "xdpctl_lb_ct",
                                  "xdpctl_lb_vctr",  "xdpctl_lb_bctr", "xdpctl_lb_stats"};

// A Maglev table as an inner map of xdpctl_lb_rings: type and flags of the template.
UniqueFd create_ring_map(const std::vector<uint32_t>& table)
{
    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_INNER_MAP);
    int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "xdpctl_lb_ring", sizeof(__u32), sizeof(__u32),
                            uint32_t(table.size()), &opts);
    if (fd < 0)
        fail("cannot create a Maglev table of {} entries: {}", table.size(), errno_str(errno));
    UniqueFd map(fd);
    std::vector<uint32_t> keys(table.size());
    for (uint32_t i = 0; i < keys.size(); i++)
        keys[i] = i;
    __u32 count = uint32_t(table.size());
    if (bpf_map_update_batch(map.get(), keys.data(), table.data(), &count, nullptr) != 0)
        fail("cannot fill the Maglev table: {}", errno_str(errno));
    return map;
}

xdpctl_lb_vip_key addr_marker(const xdpctl_lb_vip_key& k)
{
    xdpctl_lb_vip_key m = k;
    m.port = 0;
    m.proto = XDPCTL_LB_PROTO_ADDR;
    return m;
}

IpAddr addr_of(const __u32* w, uint8_t family)
{
    IpAddr a;
    a.family = family;
    std::memcpy(a.w, w, sizeof(a.w));
    return a;
}

template <typename T>
std::vector<T> read_percpu(int fd, uint32_t idx, const char* what)
{
    static_assert(sizeof(T) % 8 == 0, "per-CPU values are 8-byte aligned");
    std::vector<T> v(possible_cpus());
    if (bpf_map_lookup_elem(fd, &idx, v.data()) != 0)
        fail("cannot read the {} counters: {}", what, errno_str(errno));
    return v;
}

xdpctl_lb_ctr sum(const std::vector<xdpctl_lb_ctr>& v)
{
    xdpctl_lb_ctr s{};
    for (const auto& c : v) {
        s.packets += c.packets;
        s.bytes += c.bytes;
        s.new_flows += c.new_flows;
    }
    return s;
}

}  // namespace

IpAddr BackendEntry::addr() const
{
    return addr_of(rec.addr, rec.family);
}

MacAddr BackendEntry::mac() const
{
    MacAddr m;
    std::memcpy(m.data(), rec.mac, 6);
    return m;
}

LbMapFds lb_map_fds_pinned(const std::string& dir)
{
    auto open = [&](const char* name) { return open_pinned_map(dir, name, "load-balancer"); };
    LbMapFds f{open(kNames[0]), open(kNames[1]), open(kNames[2]), open(kNames[3]), open(kNames[4]),
               open(kNames[5]), open(kNames[6]), open(kNames[7]), open(kNames[8]),
               open_pinned(dir + "/xdpctl_lb_fgen"), open_pinned(dir + "/xdpctl_lb_fcache"), {}, {}};
    f.checks = open_pinned(dir + "/" + kChecksMapName);
    f.health = open_pinned(dir + "/" + kHealthMapName);
    return f;
}

bool lb_maps_pinned(const std::string& dir)
{
    for (const char* name : kNames)
        if (!path_exists(dir + "/" + name))
            return false;
    return path_exists(dir + "/xdpctl_lb_fgen") && path_exists(dir + "/xdpctl_lb_fcache");
}

LbMaps::LbMaps(LbMapFds fds) : fds_(std::move(fds)) {}

std::vector<VipEntry> LbMaps::vips() const
{
    std::vector<VipEntry> out;
    xdpctl_lb_vip_key k{}, next{};
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fds_.vips.get(), prev, &next) == 0) {
        k = next;
        prev = &k;
        if (k.proto == XDPCTL_LB_PROTO_ADDR)
            continue;
        VipEntry e;
        if (bpf_map_lookup_elem(fds_.vips.get(), &k, &e.rec) != 0)
            continue;  // deleted meanwhile
        e.spec = vip_spec(k);
        out.push_back(e);
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.rec.id < b.rec.id; });
    return out;
}

std::optional<VipEntry> LbMaps::find_vip(const VipSpec& v) const
{
    xdpctl_lb_vip_key k = vip_key(v);
    VipEntry e;
    if (bpf_map_lookup_elem(fds_.vips.get(), &k, &e.rec) != 0)
        return std::nullopt;
    e.spec = v;
    return e;
}

VipEntry LbMaps::require_vip(const VipSpec& v) const
{
    auto e = find_vip(v);
    if (!e)
        fail_usage("no VIP {} ('xdpctl lb list' shows them)", format_vip(v));
    return *e;
}

std::vector<BackendEntry> LbMaps::all_backends() const
{
    std::vector<xdpctl_lb_backend> recs(XDPCTL_LB_MAX_BACKENDS);
    std::vector<uint32_t> keys(XDPCTL_LB_MAX_BACKENDS);
    __u32 count = XDPCTL_LB_MAX_BACKENDS, out_batch = 0;
    int err = bpf_map_lookup_batch(fds_.backends.get(), nullptr, &out_batch, keys.data(), recs.data(),
                                   &count, nullptr);
    if (err && errno != ENOENT)
        fail("cannot read the backends: {}", errno_str(errno));
    std::vector<BackendEntry> out;
    for (uint32_t i = 0; i < count; i++)
        if (recs[i].flags & XDPCTL_LB_BE_F_USED)
            out.push_back({keys[i], recs[i]});
    return out;
}

std::vector<BackendEntry> LbMaps::backends(uint32_t vip_id) const
{
    std::vector<BackendEntry> out;
    for (const auto& b : all_backends())
        if (b.rec.vip_id == vip_id)
            out.push_back(b);
    return out;
}

BackendEntry LbMaps::place_backend(uint32_t slot, const BackendSpec& b, uint32_t vip_id)
{
    BackendEntry n;
    n.slot = slot;
    std::memcpy(n.rec.addr, b.addr.w, sizeof(n.rec.addr));
    std::memcpy(n.rec.mac, b.mac.data(), 6);
    n.rec.family = b.addr.family;
    n.rec.flags = XDPCTL_LB_BE_F_USED;
    n.rec.vip_id = vip_id;
    n.rec.weight = b.weight;
    n.rec.gen = slot_gen(slot) + 1;
    zero_counters(fds_.bctr.get(), n.slot);
    // Not reachable until the table names it: written first.
    write_backend(n.slot, n.rec);
    return n;
}

void LbMaps::write_backend(uint32_t slot, const xdpctl_lb_backend& rec)
{
    if (bpf_map_update_elem(fds_.backends.get(), &slot, &rec, BPF_ANY) != 0)
        fail("cannot write backend slot {}: {}", slot, errno_str(errno));
}

uint32_t LbMaps::slot_gen(uint32_t slot) const
{
    xdpctl_lb_backend rec{};
    if (bpf_map_lookup_elem(fds_.backends.get(), &slot, &rec) != 0)
        fail("cannot read backend slot {}: {}", slot, errno_str(errno));
    return rec.gen;
}

void LbMaps::free_backend(uint32_t slot)
{
    // The incarnation stays, so the slot's next backend gets a new one (place_backend).
    xdpctl_lb_backend rec{};
    rec.gen = slot_gen(slot);
    write_backend(slot, rec);
}

size_t LbMaps::sweep_conntrack()
{
    // An older xdpctl's per-CPU table (until the next load converts it) has values of
    // another size: left alone; its entries fail the datapath's checks just the same.
    if (!conntrack_layout_current(fds_.ct.get()))
        return 0;
    // What every live backend slot holds; an entry naming anything else is dead.
    std::vector<xdpctl_lb_backend> recs(XDPCTL_LB_MAX_BACKENDS);
    {
        std::vector<uint32_t> keys(XDPCTL_LB_MAX_BACKENDS);
        __u32 count = XDPCTL_LB_MAX_BACKENDS, out_batch = 0;
        if (bpf_map_lookup_batch(fds_.backends.get(), nullptr, &out_batch, keys.data(), recs.data(), &count,
                                 nullptr) != 0 &&
            errno != ENOENT)
            fail("cannot read the backends: {}", errno_str(errno));
    }
    auto alive = [&](const xdpctl_lb_flow& fl) {
        if (!(fl.flags & XDPCTL_LB_FLOW_F_VALID) || fl.backend >= recs.size())
            return false;
        const auto& b = recs[fl.backend];
        return (b.flags & XDPCTL_LB_BE_F_USED) && b.vip_id == fl.vip_id && b.gen == fl.be_gen;
    };
    // Read in batches (a hash batch ends at a bucket boundary, so `count` may come back
    // smaller than asked), collect the dead keys, delete them in one batch call.
    constexpr __u32 kBatch = 4096;
    std::vector<xdpctl_lb_flow_key> keys(kBatch), dead;
    std::vector<xdpctl_lb_flow> vals(kBatch);
    __u32 in_batch = 0, out_batch = 0;
    bool first = true;
    for (;;) {
        __u32 count = kBatch;
        int err = bpf_map_lookup_batch(fds_.ct.get(), first ? nullptr : &in_batch, &out_batch, keys.data(),
                                       vals.data(), &count, nullptr);
        int e = errno;
        for (__u32 i = 0; i < count; i++)
            if (!alive(vals[i]))
                dead.push_back(keys[i]);
        if (err) {
            if (e == ENOENT)
                break;
            if (e == ENOSPC) {  // a bucket larger than the batch: ask for more at once
                keys.resize(keys.size() * 2);
                vals.resize(vals.size() * 2);
                continue;
            }
            fail("cannot read the connection table: {}", errno_str(e));
        }
        in_batch = out_batch;
        first = false;
    }
    if (dead.empty())
        return 0;
    __u32 n = uint32_t(dead.size());
    // An entry a packet already replaced or the LRU already evicted is gone: ENOENT stops
    // the batch there, so the rest go one by one.
    if (bpf_map_delete_batch(fds_.ct.get(), dead.data(), &n, nullptr) != 0)
        for (size_t i = n; i < dead.size(); i++)
            bpf_map_delete_elem(fds_.ct.get(), &dead[i]);
    return dead.size();
}

void LbMaps::conntrack_changed()
{
    if (fds_.fgen)
        void_flow_cache(fds_.fgen.get());
}

void LbMaps::write_vip_slot(uint32_t id, const xdpctl_lb_vip_slot& s)
{
    if (bpf_map_update_elem(fds_.vip_ids.get(), &id, &s, BPF_ANY) != 0)
        fail("cannot write VIP slot {}: {}", id, errno_str(errno));
}

void LbMaps::zero_counters(int fd, uint32_t idx)
{
    std::vector<xdpctl_lb_ctr> z(possible_cpus());
    if (bpf_map_update_elem(fd, &idx, z.data(), BPF_ANY) != 0)
        fail("cannot reset counters: {}", errno_str(errno));
}

void LbMaps::update_ctl()
{
    xdpctl_lb_ctl c{};
    for (const auto& v : vips()) {
        c.n_vips++;
        c.n_any_port += v.spec.port == 0;
        const uint32_t bit = xdpctl_lb_addr_bit(v.spec.addr.w);
        c.addr_bits[bit / 64] |= uint64_t(1) << (bit % 64);
    }
    // The XDP programs have the balancer's code only while a VIP exists (datapath_paths.h):
    // the first VIP reloads them with it before this write, the last one's removal without
    // it after.
    const PathsChange paths([&](DatapathPaths& p) { p.lb = c.n_vips > 0; });
    __u32 zero = 0;
    if (bpf_map_update_elem(fds_.ctl.get(), &zero, &c, BPF_ANY) != 0)
        fail("cannot write the load-balancer switches: {}", errno_str(errno));
    paths.finish();
}

void LbMaps::install_ring(const xdpctl_lb_vip& vip, const std::vector<BackendEntry>& bes)
{
    std::vector<MaglevBackend> mb;
    for (const auto& b : bes)
        mb.push_back({b.slot, maglev_key(b.rec.addr), b.effective_weight()});
    UniqueFd ring = create_ring_map(build_maglev(mb, vip.ring_size));
    __u32 id = vip.id;
    __u32 fd = uint32_t(ring.get());
    // The publish point: one slot update, old table or new for every packet.
    if (bpf_map_update_elem(fds_.rings.get(), &id, &fd, BPF_ANY) != 0)
        fail("cannot install the Maglev table of VIP slot {}: {}", id, errno_str(errno));
}

void check_vip_options(const VipSpec& v, const VipOptions& o)
{
    check_unicast(v.addr, "VIP");
    if (o.ipip_source)
        check_unicast(*o.ipip_source, "ipip source");
    if (o.ipip_source && o.ipip_source->family != v.addr.family)
        fail_usage("the ipip source {} is not of the VIP {}'s IP version", format_ip(*o.ipip_source),
                   format_vip(v));
    if (!is_prime(o.ring_size) || o.ring_size > XDPCTL_LB_RING_MAX)
        fail_usage("the Maglev table size {} is not a prime of at most {} (65537 is the default)",
                   o.ring_size, XDPCTL_LB_RING_MAX);
}

void check_backend(const VipSpec& v, uint32_t mode, const BackendSpec& b)
{
    if (b.weight > XDPCTL_LB_MAX_WEIGHT)
        fail_usage("bad weight {}: at most {}", b.weight, XDPCTL_LB_MAX_WEIGHT);
    if (mode == XDPCTL_LB_MODE_IPIP && b.addr.family != v.addr.family)
        fail_usage("backend {} is not of the VIP {}'s IP version (ipip carries IPv4 in IPv4, "
                   "IPv6 in IPv6)", format_ip(b.addr), format_vip(v));
    check_backend_address(v, b.addr, b.mac);
}

VipEntry LbMaps::add_vip(const VipSpec& v, const VipOptions& o)
{
    if (find_vip(v))
        fail_usage("VIP {} already exists", format_vip(v));
    check_vip_options(v, o);
    auto all = vips();
    if (all.size() >= XDPCTL_LB_MAX_VIPS)
        fail("{} VIPs exist: that is the most xdpctl supports", all.size());
    std::vector<bool> used(XDPCTL_LB_MAX_VIPS);
    for (const auto& e : all)
        used[e.rec.id] = true;
    // nor an id whose old VIP's counts are pending in the flow cache (they would land on it)
    for (const auto& [id, c] : pending().vip)
        if (id < used.size())
            used[id] = true;
    uint32_t id = uint32_t(std::find(used.begin(), used.end(), false) - used.begin());
    if (id == XDPCTL_LB_MAX_VIPS)
        fail("every VIP id is in use or has counts pending in the flow cache: try again after traffic");

    VipEntry e;
    e.spec = v;
    e.rec.id = id;
    e.rec.mode = o.mode;
    e.rec.flags = o.flags;
    e.rec.ring_size = o.ring_size;
    std::memcpy(e.rec.ipip_src, (o.ipip_source ? *o.ipip_source : v.addr).w, sizeof(e.rec.ipip_src));
    e.rec.table_gen = 1;
    zero_counters(fds_.vctr.get(), id);
    install_ring(e.rec, {});
    xdpctl_lb_vip_key k = vip_key(v);
    // By id first: only connection-table entries made after the publish below name it.
    write_vip_slot(id, xdpctl_lb_vip_slot{k, 1, e.rec});
    if (bpf_map_update_elem(fds_.vips.get(), &k, &e.rec, BPF_NOEXIST) != 0) {
        int err = errno;
        write_vip_slot(id, xdpctl_lb_vip_slot{});
        bpf_map_delete_elem(fds_.rings.get(), &id);
        fail("cannot add VIP {}: {}", format_vip(v), errno_str(err));
    }
    // The address marker (ICMP and fragments to the address are counted) and the switches.
    xdpctl_lb_vip_key m = addr_marker(k);
    xdpctl_lb_vip marker{};
    marker.id = XDPCTL_LB_NO_BACKEND;
    bpf_map_update_elem(fds_.vips.get(), &m, &marker, BPF_NOEXIST);
    update_ctl();
    return e;
}

void LbMaps::restore(const std::vector<VipEntry>& vips, const std::vector<BackendEntry>& slots)
{
    for (const auto& b : slots)
        write_backend(b.slot, b.rec);
    for (const auto& e : vips) {
        std::vector<BackendEntry> mine;
        for (const auto& b : slots)
            if ((b.rec.flags & XDPCTL_LB_BE_F_USED) && b.rec.vip_id == e.rec.id)
                mine.push_back(b);
        install_ring(e.rec, mine);
        const xdpctl_lb_vip_key k = vip_key(e.spec);
        write_vip_slot(e.rec.id, xdpctl_lb_vip_slot{k, 1, e.rec});
        if (bpf_map_update_elem(fds_.vips.get(), &k, &e.rec, BPF_ANY) != 0)
            fail("cannot restore VIP {}: {}", format_vip(e.spec), errno_str(errno));
        const xdpctl_lb_vip_key m = addr_marker(k);
        xdpctl_lb_vip marker{};
        marker.id = XDPCTL_LB_NO_BACKEND;
        bpf_map_update_elem(fds_.vips.get(), &m, &marker, BPF_NOEXIST);
    }
    update_ctl();
}

void LbMaps::del_vip(const VipSpec& v)
{
    VipEntry e = require_vip(v);
    xdpctl_lb_vip_key k = vip_key(v);
    // The publish point: from here no packet finds the VIP.
    if (bpf_map_delete_elem(fds_.vips.get(), &k) != 0)
        fail("cannot delete VIP {}: {}", format_vip(v), errno_str(errno));
    bool addr_still_used = false;
    for (const auto& o : vips())
        addr_still_used |= o.spec.addr == v.addr;
    if (!addr_still_used) {
        xdpctl_lb_vip_key m = addr_marker(k);
        bpf_map_delete_elem(fds_.vips.get(), &m);
    }
    update_ctl();
    // The backends first, then the flow cache's copies voided: a copy's hit checks neither
    // the VIP nor the backend (lib/bpf/lb.h, lb_backend_of_flow), so none may answer once
    // the id is free.
    for (const auto& b : backends(e.rec.id))
        free_backend(b.slot);
    conntrack_changed();
    // Only `used` changes in this write, so a packet reading it meanwhile sees the slot in
    // use (and whole) or not in use.
    write_vip_slot(e.rec.id, xdpctl_lb_vip_slot{k, 0, e.rec});
    __u32 id = e.rec.id;
    bpf_map_delete_elem(fds_.rings.get(), &id);
    sweep_conntrack();
    prune_checks();
}

BackendEntry LbMaps::add_backend(const VipSpec& v, const BackendSpec& b)
{
    VipEntry e = require_vip(v);
    check_backend(v, e.rec.mode, b);
    auto all = all_backends();
    std::vector<BackendEntry> mine;
    std::vector<bool> used = slots_taken();
    for (const auto& o : all) {
        if (o.rec.vip_id == e.rec.id) {
            if (o.addr() == b.addr)
                fail_usage("backend {} already serves VIP {}", format_ip(b.addr), format_vip(v));
            mine.push_back(o);
        }
    }
    check_table_fits(v, e.rec.ring_size, mine.size() + 1);
    auto free = std::find(used.begin(), used.end(), false);
    if (free == used.end())
        fail("{} backends exist: that is the most xdpctl supports", XDPCTL_LB_MAX_BACKENDS);
    const BackendEntry n = place_backend(uint32_t(free - used.begin()), b, e.rec.id);
    mine.push_back(n);
    try {
        install_ring(e.rec, mine);
    } catch (...) {
        free_backend(n.slot);
        throw;
    }
    return n;
}

void LbMaps::set_weight(const VipSpec& v, const IpAddr& backend, uint32_t weight)
{
    VipEntry e = require_vip(v);
    if (weight > XDPCTL_LB_MAX_WEIGHT)
        fail_usage("bad weight {}: at most {}", weight, XDPCTL_LB_MAX_WEIGHT);
    auto mine = backends(e.rec.id);
    auto it = std::find_if(mine.begin(), mine.end(), [&](const auto& b) { return b.addr() == backend; });
    if (it == mine.end())
        fail_usage("backend {} does not serve VIP {}", format_ip(backend), format_vip(v));
    it->rec.weight = weight;
    // Connections already in the table keep their backend: only the table changes.
    install_ring(e.rec, mine);
    try {
        write_backend(it->slot, it->rec);
    } catch (...) {
        install_ring(e.rec, backends(e.rec.id));  // the records still hold the old weight
        throw;
    }
}

void LbMaps::del_backend(const VipSpec& v, const IpAddr& backend)
{
    VipEntry e = require_vip(v);
    auto mine = backends(e.rec.id);
    auto it = std::find_if(mine.begin(), mine.end(), [&](const auto& b) { return b.addr() == backend; });
    if (it == mine.end())
        fail_usage("backend {} does not serve VIP {}", format_ip(backend), format_vip(v));
    uint32_t slot = it->slot;
    mine.erase(it);
    install_ring(e.rec, mine);
    // Now out of the table; its connections find it gone and are scheduled again.
    free_backend(slot);
    conntrack_changed();
    sweep_conntrack();
    prune_checks();
}

void LbMaps::set_backends(const VipSpec& v, const std::vector<BackendSpec>& want)
{
    VipEntry e = require_vip(v);
    for (size_t i = 0; i < want.size(); i++) {
        check_backend(v, e.rec.mode, want[i]);
        for (size_t j = 0; j < i; j++)
            if (want[j].addr == want[i].addr)
                fail_usage("backend {} given twice for VIP {}", format_ip(want[i].addr), format_vip(v));
    }
    check_table_fits(v, e.rec.ring_size, want.size());
    std::vector<bool> used = slots_taken();
    std::vector<BackendEntry> old;
    for (const auto& o : all_backends()) {
        if (o.rec.vip_id == e.rec.id)
            old.push_back(o);
    }
    std::vector<BackendEntry> next, added, changed;
    auto undo_added = [&] {
        for (const auto& a : added)
            free_backend(a.slot);
    };
    try {
        for (const auto& b : want) {
            auto it = std::find_if(old.begin(), old.end(), [&](const auto& o) { return o.addr() == b.addr; });
            BackendEntry n;
            if (it != old.end()) {
                n = *it;
                std::memcpy(n.rec.mac, b.mac.data(), 6);
                n.rec.weight = b.weight;
                if (std::memcmp(&n.rec, &it->rec, sizeof(n.rec)) != 0)
                    changed.push_back(n);
            } else {
                auto free = std::find(used.begin(), used.end(), false);
                if (free == used.end())
                    fail("{} backends exist: that is the most xdpctl supports", XDPCTL_LB_MAX_BACKENDS);
                *free = true;
                n = place_backend(uint32_t(free - used.begin()), b, e.rec.id);
                added.push_back(n);
            }
            next.push_back(n);
        }
        // The table lists backends in slot order, as backends() gives them to add_backend.
        std::sort(next.begin(), next.end(), [](const auto& a, const auto& b) { return a.slot < b.slot; });
        install_ring(e.rec, next);  // the publish point
    } catch (...) {
        undo_added();
        throw;
    }
    // Kept backends' new MAC or weight (the datapath reads the MAC, the table holds the
    // weight), then the removed ones: out of the table now, their connections rescheduled.
    bool void_copies = false;  // the flow cache's copies hold the MACs
    for (const auto& c : changed) {
        write_backend(c.slot, c.rec);
        const auto was = std::find_if(old.begin(), old.end(), [&](const auto& o) { return o.slot == c.slot; });
        void_copies |= std::memcmp(was->rec.mac, c.rec.mac, sizeof(c.rec.mac)) != 0;
    }
    bool removed = false;
    for (const auto& o : old)
        if (std::none_of(next.begin(), next.end(), [&](const auto& n) { return n.slot == o.slot; })) {
            free_backend(o.slot);
            removed = true;
        }
    if (void_copies || removed)
        conntrack_changed();
    if (removed) {
        sweep_conntrack();
        prune_checks();
    }
}

FcachePending LbMaps::pending() const
{
    return read_fcache_pending(fds_.fcache ? fds_.fcache.get() : -1);
}

std::vector<bool> LbMaps::slots_taken() const
{
    std::vector<bool> used(XDPCTL_LB_MAX_BACKENDS);
    for (const auto& o : all_backends())
        used[o.slot] = true;
    // a freed backend's counts still pending in the flow cache would land on the slot's next
    for (const auto& [slot, c] : pending().backend)
        if (slot < used.size())
            used[slot] = true;
    return used;
}

// The pending counts are read after the counters: a slot the datapath copies again in between
// moved its counts into the counters already read, and shows them in neither (the next read
// does); read before, they would show twice.
xdpctl_lb_ctr LbMaps::vip_counters(uint32_t id) const
{
    xdpctl_lb_ctr c = sum(read_percpu<xdpctl_lb_ctr>(fds_.vctr.get(), id, "VIP"));
    const auto p = pending();
    if (auto it = p.vip.find(id); it != p.vip.end())
        add_ctr(c, it->second);
    return c;
}

xdpctl_lb_ctr LbMaps::backend_counters(uint32_t slot) const
{
    xdpctl_lb_ctr c = sum(read_percpu<xdpctl_lb_ctr>(fds_.bctr.get(), slot, "backend"));
    const auto p = pending();
    if (auto it = p.backend.find(slot); it != p.backend.end())
        add_ctr(c, it->second);
    return c;
}

LbMaps::AllCounters LbMaps::all_counters() const
{
    AllCounters a;
    const auto sum_all = [](int fd, uint32_t n, const char* what) {
        const size_t cpus = size_t(possible_cpus());
        std::vector<uint32_t> keys(n);
        std::vector<xdpctl_lb_ctr> per_cpu(size_t(n) * cpus), out(n);
        __u32 count = n, out_batch = 0;
        if (bpf_map_lookup_batch(fd, nullptr, &out_batch, keys.data(), per_cpu.data(), &count, nullptr) != 0 &&
            errno != ENOENT)
            fail("cannot read the {} counters: {}", what, errno_str(errno));
        for (uint32_t i = 0; i < count && keys[i] < n; i++)
            for (size_t c = 0; c < cpus; c++)
                add_ctr(out[keys[i]], per_cpu[i * cpus + c]);
        return out;
    };
    // the counters first, the pending counts after (as vip_counters)
    a.vip = sum_all(fds_.vctr.get(), XDPCTL_LB_MAX_VIPS, "VIP");
    a.backend = sum_all(fds_.bctr.get(), XDPCTL_LB_MAX_BACKENDS, "backend");
    for (const auto& c : read_percpu<xdpctl_lb_stats>(fds_.stats.get(), 0, "load-balancer"))
        for (int i = 0; i < XDPCTL_LB_CNT_MAX; i++)
            a.stats.cnt[i] += c.cnt[i];
    const FcachePending p = pending();
    for (const auto& [id, c] : p.vip)
        if (id < a.vip.size())
            add_ctr(a.vip[id], c);
    for (const auto& [slot, c] : p.backend)
        if (slot < a.backend.size())
            add_ctr(a.backend[slot], c);
    a.stats.cnt[XDPCTL_LB_CNT_CT_HIT] += p.packets;
    a.stats.cnt[XDPCTL_LB_CNT_TX] += p.packets;
    return a;
}

xdpctl_lb_stats LbMaps::stats() const
{
    xdpctl_lb_stats s{};
    for (const auto& c : read_percpu<xdpctl_lb_stats>(fds_.stats.get(), 0, "load-balancer"))
        for (int i = 0; i < XDPCTL_LB_CNT_MAX; i++)
            s.cnt[i] += c.cnt[i];
    const uint64_t hits = pending().packets;
    s.cnt[XDPCTL_LB_CNT_CT_HIT] += hits;
    s.cnt[XDPCTL_LB_CNT_TX] += hits;
    return s;
}

std::vector<uint32_t> LbMaps::ring(uint32_t vip_id) const
{
    __u32 map_id = 0;
    if (bpf_map_lookup_elem(fds_.rings.get(), &vip_id, &map_id) != 0)
        fail("VIP slot {} has no Maglev table: {}", vip_id, errno_str(errno));
    UniqueFd fd(bpf_map_get_fd_by_id(map_id));
    if (!fd)
        fail("cannot open the Maglev table (map id {}): {}", map_id, errno_str(errno));
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_map_get_info_by_fd(fd.get(), &info, &len) != 0)
        fail("cannot read the Maglev table's size: {}", errno_str(errno));
    std::vector<uint32_t> keys(info.max_entries), vals(info.max_entries);
    __u32 count = info.max_entries, out_batch = 0;
    if (bpf_map_lookup_batch(fd.get(), nullptr, &out_batch, keys.data(), vals.data(), &count, nullptr) != 0 &&
        errno != ENOENT)
        fail("cannot read the Maglev table: {}", errno_str(errno));
    std::vector<uint32_t> table(info.max_entries, XDPCTL_LB_NO_BACKEND);
    for (uint32_t i = 0; i < count; i++)
        if (keys[i] < table.size())
            table[keys[i]] = vals[i];
    return table;
}

TraceResult LbMaps::trace(const FlowSpec& f) const
{
    TraceResult r;
    VipSpec v{f.dst, f.dport, f.proto};
    auto e = find_vip(v);
    if (!e) {
        v.port = 0;
        e = find_vip(v);
    }
    if (!e)
        return r;
    r.vip_found = true;
    r.vip = *e;

    xdpctl_lb_flow_key fk{};
    std::memcpy(fk.saddr, f.src.w, sizeof(fk.saddr));
    std::memcpy(fk.daddr, f.dst.w, sizeof(fk.daddr));
    fk.sport = htons(f.sport);
    fk.dport = htons(f.dport);
    fk.proto = f.proto;
    fk.family = f.dst.family;
    const uint32_t ports = (e->rec.flags & XDPCTL_LB_F_HASH_3TUPLE)
                               ? 0
                               : (uint32_t(fk.sport) << 16) | fk.dport;
    r.hash = xdpctl_lb_flow_hash(fk.saddr, fk.daddr, ports, f.proto);
    r.ring_pos = xdpctl_lb_ring_pos(r.hash, e->rec.ring_size);

    // A backend of this VIP in `slot`: one lookup (not the whole array, 4,096 records).
    auto by_slot = [&](uint32_t slot) -> std::optional<BackendEntry> {
        BackendEntry b;
        b.slot = slot;
        if (slot >= XDPCTL_LB_MAX_BACKENDS || bpf_map_lookup_elem(fds_.backends.get(), &slot, &b.rec) != 0 ||
            !(b.rec.flags & XDPCTL_LB_BE_F_USED) || b.rec.vip_id != e->rec.id)
            return std::nullopt;
        return b;
    };
    // The syscall lookup of an LRU map does not refresh the entry: nothing changes. The
    // checks are the datapath's (lib/bpf/lb.h).
    if (!conntrack_layout_current(fds_.ct.get()))
        fail("the connection table has the layout of an older xdpctl: 'xdpctl load --force' on an "
             "interface converts it");
    xdpctl_lb_flow fl{};
    if (bpf_map_lookup_elem(fds_.ct.get(), &fk, &fl) == 0 && (fl.flags & XDPCTL_LB_FLOW_F_VALID) &&
        fl.vip_id == e->rec.id) {
        if (auto b = by_slot(fl.backend); b && b->rec.gen == fl.be_gen) {
            r.conntrack_hit = true;
            r.backend = b;
        }
    }
    __u32 vid = e->rec.id, map_id = 0, slot = XDPCTL_LB_NO_BACKEND;
    if (bpf_map_lookup_elem(fds_.rings.get(), &vid, &map_id) != 0)
        fail("VIP {} has no Maglev table: {}", format_vip(e->spec), errno_str(errno));
    UniqueFd table(bpf_map_get_fd_by_id(map_id));
    if (!table || bpf_map_lookup_elem(table.get(), &r.ring_pos, &slot) != 0)
        fail("cannot read the Maglev table of VIP {}: {}", format_vip(e->spec), errno_str(errno));
    if (slot != XDPCTL_LB_NO_BACKEND)
        r.maglev = by_slot(slot);
    if (!r.conntrack_hit)
        r.backend = r.maglev;
    return r;
}

}  // namespace xdpctl::lb
