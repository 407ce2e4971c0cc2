// LbMaps' health-check part (lb_maps.h, lb_health_maps.h).
#include <bpf/bpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "attach/iface_pins.h"
#include "attach/iface_ref.h"
#include "lb/lb_config.h"
#include "lb/lb_maps.h"
#include "util/error.h"

namespace xdpctl::lb {

namespace {

LbCheckKey check_key(const VipSpec& v, const std::optional<IpAddr>& backend)
{
    LbCheckKey k{};
    k.vip = vip_key(v);
    if (backend) {
        std::memcpy(k.addr, backend->w, sizeof(k.addr));
        k.family = backend->family;
    }
    return k;
}

LbCheckRec check_rec(const CheckSpec& c)
{
    LbCheckRec r{};
    r.type = uint8_t(c.type);
    r.port = c.port;
    r.expect = c.expect;
    r.interval_ms = uint32_t(c.interval.count());
    r.timeout_ms = uint32_t(c.timeout.count());
    r.rise = c.rise;
    r.fall = c.fall;
    std::strncpy(r.path, c.path.c_str(), sizeof(r.path) - 1);
    return r;
}

CheckSpec check_spec(const LbCheckRec& r)
{
    CheckSpec c;
    c.type = CheckSpec::Type(r.type);
    c.port = r.port;
    c.expect = r.expect;
    c.interval = std::chrono::milliseconds(r.interval_ms);
    c.timeout = std::chrono::milliseconds(r.timeout_ms);
    c.rise = r.rise;
    c.fall = r.fall;
    c.path.assign(r.path, strnlen(r.path, sizeof(r.path)));
    return c;
}

// The pinned map `name`, made and pinned when missing (the caller holds the writer lock,
// or, for xdpd's results, is the one writer of that map).
UniqueFd open_or_make(const char* name, uint32_t type, uint32_t key_size, uint32_t value_size, uint32_t entries)
{
    const std::string path = shared_maps_dir() + "/" + name;
    UniqueFd fd = open_pinned(path);
    if (fd)
        return fd;
    LIBBPF_OPTS(bpf_map_create_opts, o);
    if (type == BPF_MAP_TYPE_HASH)
        o.map_flags = BPF_F_NO_PREALLOC;
    fd = UniqueFd(bpf_map_create(bpf_map_type(type), name, key_size, value_size, entries, &o));
    if (!fd)
        fail("cannot create the map {}: {}", name, errno_str(errno));
    pin_fd(fd.get(), path);
    return fd;
}

}  // namespace

std::optional<CheckSpec> LbMaps::check(const VipSpec& v, const std::optional<IpAddr>& backend) const
{
    if (!fds_.checks)
        return std::nullopt;
    const LbCheckKey k = check_key(v, backend);
    LbCheckRec r{};
    if (bpf_map_lookup_elem(fds_.checks.get(), &k, &r) != 0)
        return std::nullopt;
    return check_spec(r);
}

void LbMaps::set_check(const VipSpec& v, const std::optional<IpAddr>& backend, const std::optional<CheckSpec>& c)
{
    const VipEntry e = require_vip(v);
    if (backend) {
        const auto mine = backends(e.rec.id);
        if (std::none_of(mine.begin(), mine.end(), [&](const auto& b) { return b.addr() == *backend; }))
            fail_usage("backend {} does not serve VIP {}", format_ip(*backend), format_vip(v));
    }
    const LbCheckKey k = check_key(v, backend);
    if (!c) {
        if (fds_.checks)
            bpf_map_delete_elem(fds_.checks.get(), &k);
        return;
    }
    check_fits_vip(v, c, backend.has_value());
    if (!fds_.checks)
        fds_.checks = open_or_make(kChecksMapName, BPF_MAP_TYPE_HASH, sizeof(LbCheckKey), sizeof(LbCheckRec),
                                   XDPCTL_LB_MAX_VIPS + XDPCTL_LB_MAX_BACKENDS);
    const LbCheckRec r = check_rec(*c);
    if (bpf_map_update_elem(fds_.checks.get(), &k, &r, BPF_ANY) != 0)
        fail("cannot write the health check of {}: {}", format_vip(v), errno_str(errno));
}

void LbMaps::prune_checks()
{
    if (!fds_.checks)
        return;
    std::vector<LbCheckKey> dead;
    const auto all_vips = vips();
    const auto all_bes = all_backends();
    LbCheckKey k{}, next{};
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fds_.checks.get(), prev, &next) == 0) {
        k = next;
        prev = &k;
        auto vip = std::find_if(all_vips.begin(), all_vips.end(), [&](const VipEntry& e) {
            const xdpctl_lb_vip_key vk = vip_key(e.spec);
            return std::memcmp(&k.vip, &vk, sizeof(vk)) == 0;
        });
        bool alive = vip != all_vips.end();
        if (alive && k.family)
            alive = std::any_of(all_bes.begin(), all_bes.end(), [&](const BackendEntry& b) {
                return b.rec.vip_id == vip->rec.id && b.rec.family == k.family &&
                       std::memcmp(b.rec.addr, k.addr, sizeof(k.addr)) == 0;
            });
        if (!alive)
            dead.push_back(k);
    }
    for (const auto& d : dead)
        bpf_map_delete_elem(fds_.checks.get(), &d);
}

bool LbMaps::set_down(const VipSpec& v, const IpAddr& backend, bool down)
{
    const auto e = find_vip(v);
    if (!e)
        return false;
    auto mine = backends(e->rec.id);
    auto it = std::find_if(mine.begin(), mine.end(), [&](const auto& b) { return b.addr() == backend; });
    if (it == mine.end() || it->down() == down)
        return false;
    const BackendEntry before = *it;
    if (down)
        it->rec.flags |= XDPCTL_LB_BE_F_DOWN;
    else
        it->rec.flags &= ~XDPCTL_LB_BE_F_DOWN;
    // As set_weight: the table is the publish point; connections in the table stay.
    install_ring(e->rec, mine);
    try {
        write_backend(it->slot, it->rec);
    } catch (...) {
        *it = before;
        install_ring(e->rec, mine);
        throw;
    }
    return true;
}

std::optional<LbHealthRec> LbMaps::health(const BackendEntry& b) const
{
    if (!fds_.health)
        return std::nullopt;
    __u32 slot = b.slot;
    LbHealthRec h{};
    if (bpf_map_lookup_elem(fds_.health.get(), &slot, &h) != 0 || h.gen != b.rec.gen || h.vip_id != b.rec.vip_id)
        return std::nullopt;
    h.last_error[sizeof(h.last_error) - 1] = 0;
    return h;
}

void LbMaps::write_health(const BackendEntry& b, const LbHealthRec& h)
{
    if (!fds_.health)
        fds_.health = open_or_make(kHealthMapName, BPF_MAP_TYPE_ARRAY, sizeof(__u32), sizeof(LbHealthRec),
                                   XDPCTL_LB_MAX_BACKENDS);
    __u32 slot = b.slot;
    if (bpf_map_update_elem(fds_.health.get(), &slot, &h, BPF_ANY) != 0)
        fail("cannot write the health of backend slot {}: {}", slot, errno_str(errno));
}

}  // namespace xdpctl::lb
