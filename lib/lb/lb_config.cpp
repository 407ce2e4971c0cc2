#include "lb/lb_config.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <tuple>

#include <fmt/format.h>

#include "util/error.h"

namespace xdpctl::lb {

namespace {

// Address order: family, then the bytes as written (network order compares as text would).
bool addr_less(const IpAddr& a, const IpAddr& b)
{
    if (a.family != b.family)
        return a.family < b.family;
    return std::memcmp(a.w, b.w, sizeof(a.w)) < 0;
}

bool vip_less(const VipSpec& a, const VipSpec& b)
{
    if (!(a.addr == b.addr))
        return addr_less(a.addr, b.addr);
    return std::tie(a.port, a.proto) < std::tie(b.port, b.proto);
}

bool same_vip(const VipSpec& a, const VipSpec& b)
{
    return a.addr == b.addr && a.port == b.port && a.proto == b.proto;
}

bool same_options(const VipOptions& a, const VipOptions& b)
{
    return a.mode == b.mode && a.flags == b.flags && a.ring_size == b.ring_size &&
           a.ipip_source == b.ipip_source;
}

bool same_backend(const BackendSpec& a, const BackendSpec& b)
{
    return a.addr == b.addr && a.mac == b.mac && a.weight == b.weight && a.check == b.check;
}

// The ipip source as stored: always set for ipip (the VIP's address by default), unset for dsr.
VipOptions normalized(const VipSpec& v, VipOptions o)
{
    if (o.mode == XDPCTL_LB_MODE_IPIP) {
        if (!o.ipip_source)
            o.ipip_source = v.addr;
    } else {
        o.ipip_source.reset();
    }
    return o;
}

std::string vip_line(const VipConfig& c)
{
    std::string s = fmt::format("lb vip {} --mode {}", format_vip(c.spec),
                                c.opts.mode == XDPCTL_LB_MODE_IPIP ? "ipip" : "dsr");
    if (c.opts.ipip_source && !(*c.opts.ipip_source == c.spec.addr))
        s += " --ipip-source " + format_ip(*c.opts.ipip_source);
    if (c.opts.flags & XDPCTL_LB_F_HASH_3TUPLE)
        s += " --hash 3tuple";
    if (c.opts.ring_size != XDPCTL_LB_RING_DEFAULT)
        s += fmt::format(" --table-size {}", c.opts.ring_size);
    if (c.check)
        s += format_check_options(*c.check);
    return s;
}

std::string backend_line(const VipSpec& v, const BackendSpec& b)
{
    return fmt::format("lb backend {} {} --mac {} --weight {}{}", format_vip(v), format_ip(b.addr),
                       format_mac(b.mac), b.weight, b.check ? format_check_options(*b.check) : "");
}

const VipConfig* find(const LbConfig& c, const VipSpec& v)
{
    for (const auto& x : c.vips)
        if (same_vip(x.spec, v))
            return &x;
    return nullptr;
}

const BackendSpec* find(const std::vector<BackendSpec>& bs, const IpAddr& a)
{
    for (const auto& b : bs)
        if (b.addr == a)
            return &b;
    return nullptr;
}

bool same_backends(const std::vector<BackendSpec>& a, const std::vector<BackendSpec>& b)
{
    if (a.size() != b.size())
        return false;
    for (const auto& x : a) {
        const BackendSpec* y = find(b, x.addr);
        if (!y || !same_backend(x, *y))
            return false;
    }
    return true;
}

LbConfig sorted(LbConfig c)
{
    std::sort(c.vips.begin(), c.vips.end(), [](const auto& a, const auto& b) { return vip_less(a.spec, b.spec); });
    for (auto& v : c.vips)
        std::sort(v.backends.begin(), v.backends.end(),
                  [](const auto& a, const auto& b) { return addr_less(a.addr, b.addr); });
    return c;
}

}  // namespace

void check_fits_vip(const VipSpec& v, const std::optional<CheckSpec>& c, bool backend)
{
    if (!c)
        return;
    if (c->type == CheckSpec::Type::none) {
        if (!backend)
            fail_usage("VIP {}: --check none is for a backend (a VIP without a check has no --check)",
                       format_vip(v));
        return;
    }
    validate_check(*c);
    if (c->port == 0 && v.port == 0)
        fail_usage("VIP {} has no port (every port is balanced): give its check one with --check-port",
                   format_vip(v));
}

void LbConfig::add_vip(const VipSpec& v, const VipOptions& o, const std::optional<CheckSpec>& check)
{
    if (find(*this, v))
        fail_usage("VIP {} given twice", format_vip(v));
    check_vip_options(v, o);
    check_fits_vip(v, check, false);
    if (vips.size() >= XDPCTL_LB_MAX_VIPS)
        fail_usage("more than {} VIPs: the most xdpctl supports", XDPCTL_LB_MAX_VIPS);
    vips.push_back({v, normalized(v, o), check, {}});
}

bool LbConfig::has_vip(const VipSpec& v) const
{
    return find(*this, v) != nullptr;
}

void LbConfig::add_backend(const VipSpec& v, const BackendSpec& b)
{
    auto it = std::find_if(vips.begin(), vips.end(), [&](const auto& x) { return same_vip(x.spec, v); });
    if (it == vips.end())
        fail_usage("no VIP {} before this line (an 'lb vip' line must come first)", format_vip(v));
    check_backend(v, it->opts.mode, b);
    check_fits_vip(v, b.check, true);
    if (find(it->backends, b.addr))
        fail_usage("backend {} given twice for VIP {}", format_ip(b.addr), format_vip(v));
    check_table_fits(v, it->opts.ring_size, it->backends.size() + 1);
    size_t total = 0;
    for (const auto& x : vips)
        total += x.backends.size();
    if (total >= XDPCTL_LB_MAX_BACKENDS)
        fail_usage("more than {} backends: the most xdpctl supports", XDPCTL_LB_MAX_BACKENDS);
    it->backends.push_back(b);
}

LbConfig read_lb_config(const LbMaps& m)
{
    LbConfig c;
    for (const auto& e : m.vips()) {
        VipConfig v;
        v.spec = e.spec;
        v.opts.mode = e.rec.mode;
        v.opts.flags = e.rec.flags;
        v.opts.ring_size = e.rec.ring_size;
        IpAddr src;
        src.family = e.spec.addr.family;
        std::memcpy(src.w, e.rec.ipip_src, sizeof(src.w));
        v.opts.ipip_source = src;
        v.opts = normalized(v.spec, v.opts);
        v.check = m.check(v.spec, std::nullopt);
        // The configured weight: a backend a check holds down keeps it in its record.
        for (const auto& b : m.backends(e.rec.id))
            v.backends.push_back({b.addr(), b.mac(), b.rec.weight, m.check(v.spec, b.addr())});
        c.vips.push_back(std::move(v));
    }
    return sorted(std::move(c));
}

std::string format_lb_config(const LbConfig& config)
{
    std::string out;
    for (const auto& v : sorted(config).vips) {
        out += vip_line(v) + "\n";
        for (const auto& b : v.backends)
            out += backend_line(v.spec, b) + "\n";
    }
    return out;
}

std::vector<std::string> lb_diff(const LbConfig& from_in, const LbConfig& to_in)
{
    const LbConfig from = sorted(from_in), to = sorted(to_in);
    std::vector<std::string> out;
    for (const auto& f : from.vips)
        if (!find(to, f.spec))
            out.push_back(fmt::format("- lb vip {} ({} backends)", format_vip(f.spec), f.backends.size()));
    for (const auto& t : to.vips) {
        const VipConfig* f = find(from, t.spec);
        if (!f || !same_options(f->opts, t.opts)) {
            out.push_back(fmt::format("{} {}{}", f ? "~" : "+", vip_line(t),
                                      f ? " (options changed: deleted and added again, its "
                                          "counters and connections restart)"
                                        : ""));
            for (const auto& b : t.backends)
                out.push_back("+ " + backend_line(t.spec, b));
            continue;
        }
        if (f->check != t.check)
            out.push_back(fmt::format("~ {} (health check {})", vip_line(t), t.check ? "changed" : "removed"));
        for (const auto& b : f->backends)
            if (!find(t.backends, b.addr))
                out.push_back(fmt::format("- lb backend {} {}", format_vip(t.spec), format_ip(b.addr)));
        for (const auto& b : t.backends) {
            const BackendSpec* o = find(f->backends, b.addr);
            if (!o)
                out.push_back("+ " + backend_line(t.spec, b));
            else if (!same_backend(*o, b))
                out.push_back("~ " + backend_line(t.spec, b));
        }
    }
    return out;
}

size_t apply_lb_config(LbMaps& m, const LbConfig& to)
{
    const LbConfig from = read_lb_config(m);
    const size_t changes = lb_diff(from, to).size();
    // Deletions first, so the slots they free are there for what is added.
    size_t used = 0;  // backend slots in use
    for (const auto& f : from.vips) {
        const VipConfig* t = find(to, f.spec);
        if (!t || !same_options(f.opts, t->opts))
            m.del_vip(f.spec);
        else
            used += f.backends.size();
    }
    // A backend set is swapped in whole: the new backends take slots before the dropped ones
    // free theirs. So the VIPs that free the most go first, and a VIP whose swap would need
    // more slots than are free drops its leaving backends first (a table swap more). Then
    // every step fits whenever the file's backends do (LbConfig::add_backend checks that):
    // an apply that passed --dry-run does not stop half-way for want of a slot.
    struct Step {
        const VipConfig* t;
        const VipConfig* f;  // kept VIP (same options), else nullptr
        size_t added = 0, removed = 0;
    };
    std::vector<Step> steps;
    for (const auto& t : to.vips) {
        const VipConfig* f = find(from, t.spec);
        Step st{&t, f && same_options(f->opts, t.opts) ? f : nullptr};
        for (const auto& b : t.backends)
            st.added += !st.f || !find(st.f->backends, b.addr);
        if (st.f)
            for (const auto& b : st.f->backends)
                st.removed += !find(t.backends, b.addr);
        steps.push_back(st);
    }
    std::stable_sort(steps.begin(), steps.end(), [](const Step& a, const Step& b) {
        return long(a.added) - long(a.removed) < long(b.added) - long(b.removed);
    });
    for (const auto& st : steps) {
        if (!st.f)
            m.add_vip(st.t->spec, st.t->opts);
        else if (same_backends(st.f->backends, st.t->backends))
            continue;
        if (st.f && st.removed && used + st.added > XDPCTL_LB_MAX_BACKENDS) {
            std::vector<BackendSpec> staying;
            for (const auto& b : st.f->backends)
                if (find(st.t->backends, b.addr))
                    staying.push_back(b);
            m.set_backends(st.t->spec, staying);
        }
        m.set_backends(st.t->spec, st.t->backends);
        used += st.added - st.removed;
    }
    // The checks last, on VIPs and backends that now exist (a removed one's went with it).
    for (const auto& t : to.vips) {
        const VipConfig* f = find(from, t.spec);
        const bool kept = f && same_options(f->opts, t.opts);
        if (!kept || f->check != t.check)
            m.set_check(t.spec, std::nullopt, t.check);
        for (const auto& b : t.backends) {
            const BackendSpec* o = kept ? find(f->backends, b.addr) : nullptr;
            if (!o || o->check != b.check)
                m.set_check(t.spec, b.addr, b.check);
        }
    }
    return changes;
}

}  // namespace xdpctl::lb
