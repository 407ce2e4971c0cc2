#include "attach/loader.h"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "util/writer_lock.h"
#include "attach/datapath_paths.h"
#include "util/error.h"
#include "attach/iface_index.h"
#include "attach/iface_pins.h"
#include "lb/conntrack_table.h"
#include "util/libbpf_log.h"
#include "attach/netns.h"
#include "attach/pin_layout.h"
#include "attach/pin_target.h"
#include "attach/skeleton.h"
#include "util/system_checks.h"
#include "upgrade/map_upgrade.h"
#include "attach/xdp_next.h"
#include "xdpctl_tc.skel.h"
#include "xdpctl_xdp.skel.h"

namespace xdpctl {

std::string xdp_mode_name(__u32 mode)
{
    return mode == XDPCTL_XDP_MODE_NATIVE ? "native" : mode == XDPCTL_XDP_MODE_SKB ? "skb" : "none";
}

std::string tc_attach_name(__u32 how)
{
    return how == XDPCTL_TC_TCX ? "tcx" : how == XDPCTL_TC_CLSACT ? "clsact" : "none";
}

std::string malformed_name(__u32 action)
{
    return action == XDPCTL_MALFORMED_DROP ? "drop" : "pass";
}

namespace {

// The interface's MTU (the loader runs in its namespace): what ipip encapsulation must fit.
uint32_t iface_mtu(const std::string& name)
{
    UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq req{};
    std::snprintf(req.ifr_name, sizeof(req.ifr_name), "%s", name.c_str());
    if (!s || ioctl(s.get(), SIOCGIFMTU, &req) != 0)
        fail("cannot read the MTU of {}: {}", name, errno_str(errno));
    return uint32_t(req.ifr_mtu);
}

__u64 now_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return __u64(ts.tv_sec) * 1000000000ull + __u64(ts.tv_nsec);
}

// Points every map of an opened object at its pin: the per-interface ones (stats, meta)
// under the interface's directory, all others (the policy) under the shared directory, so
// every interface runs the one policy. libbpf reuses a pinned map and pins a new one, so
// counters and policy survive reloads. `pins` null: the shared maps only.
void set_pin_paths(bpf_object* obj, const IfacePins* pins)
{
    bpf_map* map;
    bpf_object__for_each_map(map, obj)
    {
        if (bpf_map__is_internal(map))
            continue;
        std::string name = bpf_map__name(map);
        if (name == "xdpctl_next")
            continue;  // the loader pins a new one per load (fill_next): its kind may change
        std::string path = name == "xdpctl_stats" ? (pins ? pins->stats : "")
                           : name == "xdpctl_meta" ? (pins ? pins->meta : "")
                                                   : shared_maps_dir() + "/" + name;
        if (!path.empty() && bpf_map__set_pin_path(map, path.c_str()))
            fail("cannot set the pin path {}", path);
    }
}

// explain: every shared map that is pinned is reused as it is; nothing is pinned or created.
void reuse_shared_maps(bpf_object* obj)
{
    bpf_map* map;
    bpf_object__for_each_map(map, obj)
    {
        std::string name = bpf_map__name(map);
        if (bpf_map__is_internal(map) || name == "xdpctl_stats" || name == "xdpctl_meta" ||
            name == "xdpctl_next")
            continue;
        UniqueFd fd = open_pinned(shared_maps_dir() + "/" + name);
        if (fd && bpf_map__reuse_fd(map, fd.get()) != 0)
            fail("cannot reuse the pinned map {}: {}", name, errno_str(errno));
    }
}

// The smallest interface key (xdpctl_iface_meta.iif_key) no other interface with pins holds.
__u32 free_iif_key(const std::string& own_dir)
{
    std::vector<bool> used(XDPCTL_IIF_KEY_MAX + 1);
    for (const auto& i : pinned_ifaces())
        if (i.dir != own_dir)
            if (auto m = IfacePins(i.dir).read_meta(); m && m->iif_key <= XDPCTL_IIF_KEY_MAX)
                used[m->iif_key] = true;
    for (__u32 k = 1; k <= XDPCTL_IIF_KEY_MAX; k++)
        if (!used[k])
            return k;
    fail("xdpctl is loaded on {} interfaces: that is the most it supports", XDPCTL_IIF_KEY_MAX);
}

// The interfaces other than the one `pins` is for whose programs run on the shared maps.
std::vector<IfaceRef> other_loaded_ifaces(const IfacePins* pins)
{
    std::vector<IfaceRef> out;
    for (const auto& i : pinned_ifaces()) {
        IfacePins p(i.dir);
        if (p.attached() && (!pins || p.dir != pins->dir))
            out.push_back(i.ref());
    }
    return out;
}

// The XDP program's kind: multi-buffer (an MTU over one buffer), and whether it tail-calls
// a next program (load --next). Kept in the meta record's flags for the reloads.
struct XdpShape {
    bool frags = false;
    bool next = false;

    static XdpShape of(const xdpctl_iface_meta& m)
    {
        return {(m.flags & XDPCTL_META_F_XDP_FRAGS) != 0, (m.flags & XDPCTL_META_F_XDP_NEXT) != 0};
    }
    __u32 flags() const
    {
        return (frags ? XDPCTL_META_F_XDP_FRAGS : 0) | (next ? XDPCTL_META_F_XDP_NEXT : 0);
    }
    bool operator==(const XdpShape&) const = default;
};

// The object's programs of each kind (xdp/xdpctl_xdp.bpf.c: one body, eleven programs): the
// one with the filter and the balancer, the parse-and-count one for cfg_paths 0, and (common
// shape only) the balancer's own for cfg_paths XDPCTL_PATH_LB alone, the one-field policy's
// for XDPCTL_PATH_FIELD alone and the small policy's for XDPCTL_PATH_SMALL alone.
struct XdpKindProgs {
    XdpShape shape;
    bpf_program* paths;
    bpf_program* count;
    bpf_program* lb_only;   // null: this shape's `paths` program serves the balancer alone too
    bpf_program* fld_only;  // null: ... and the one-field path alone
    bpf_program* sml_only;  // null: ... and the small rules' path alone

    // The program of this kind for these cfg_paths (xdp_program_for_paths).
    bpf_program* for_paths(__u32 cfg_paths) const
    {
        // `shape` alone, or with the default's path (which every shape's path covers)
        auto alone = [cfg_paths](__u32 shape) {
            return (cfg_paths & shape) && !(cfg_paths & ~(shape | XDPCTL_PATH_DEFAULT));
        };
        if (cfg_paths == 0)
            return count;
        if (cfg_paths == XDPCTL_PATH_LB && lb_only)
            return lb_only;
        if (alone(XDPCTL_PATH_FIELD) && fld_only)
            return fld_only;
        if (alone(XDPCTL_PATH_SMALL) && sml_only)
            return sml_only;
        return paths;
    }
    std::array<bpf_program*, 5> all() const { return {paths, count, lb_only, fld_only, sml_only}; }
};

std::array<XdpKindProgs, 4> xdp_kinds(const xdpctl_xdp* s)
{
    const auto& p = s->progs;
    return {{{{false, false}, p.xdpctl_xdp, p.xdpctl_cnt, p.xdpctl_lb_only, p.xdpctl_fld_only, p.xdpctl_sml_only},
             {{true, false}, p.xdpctl_xdp_mb, p.xdpctl_cnt_mb, nullptr, nullptr, nullptr},
             {{false, true}, p.xdpctl_xdp_nx, p.xdpctl_cnt_nx, nullptr, nullptr, nullptr},
             {{true, true}, p.xdpctl_xdp_mbnx, p.xdpctl_cnt_mbnx, nullptr, nullptr, nullptr}}};
}

}  // namespace

bpf_program* xdp_program_for_paths(const xdpctl_xdp& s, uint32_t paths)
{
    return xdp_kinds(&s)[0].for_paths(paths);
}

namespace {

// The object's program of this shape for its cfg_paths (set before load, read-only after).
bpf_program* xdp_prog(const xdpctl_xdp* s, XdpShape shape)
{
    for (const auto& k : xdp_kinds(s))
        if (k.shape == shape)
            return k.for_paths(s->rodata->cfg_paths);
    return nullptr;  // every shape is in the table
}

// The one program to load: the kind whose program autoloads, as its cfg_paths wants it (after
// a change of cfg_paths: configure_xdp, open_and_load's upgrade).
void xdp_autoload_for_paths(xdpctl_xdp* s)
{
    for (const auto& k : xdp_kinds(s)) {
        bool chosen = false;
        for (bpf_program* prog : k.all())
            chosen = chosen || (prog && bpf_program__autoload(prog));
        if (!chosen)
            continue;
        bpf_program* const want = k.for_paths(s->rodata->cfg_paths);
        for (bpf_program* prog : k.all())
            if (prog)
                bpf_program__set_autoload(prog, prog == want);
    }
}

// Opens a skeleton, sets its pin paths (or, `explain`, reuses the pinned shared maps) and
// loads it; a verifier rejection shows its reason. `lb_conntrack`: the connection table's
// size (lib/lb/conntrack_table.h); what happened to the table goes to `notes`.
template <typename Skel>
SkelPtr<Skel> open_and_load(const IfacePins* pins, xdpctl_malformed_action malformed,
                            const char* what, const std::function<void(Skel*)>& configure = {},
                            uint32_t lb_conntrack = 0, bool explain = false,
                            std::vector<std::string>* notes = nullptr,
                            upgrade::MapUpgrade* upgrade = nullptr)
{
    libbpf_log_start();
    SkelPtr<Skel> s{Skel::open()};
    if (!s)
        fail("cannot open the {} BPF object: {}", what, errno_str(errno));
    s->rodata->cfg_malformed_action = malformed;
    s->rodata->cfg_explain = explain;
    s->rodata->cfg_log_cpus = __u32(std::max(1, libbpf_num_possible_cpus()));  // lib/bpf/trace.h
    if (configure)
        configure(s.get());
    std::optional<lb::ConntrackPlan> ct;
    if (explain) {
        reuse_shared_maps(s->obj);
    } else {
        make_pin_dir(shared_maps_dir());
        set_pin_paths(s->obj, pins);
        if (upgrade) {
            upgrade->before_load(s->obj);
            // The paths in force were read from maps of another layout, which the new ones
            // get only after this load: every path, until the load finishes (Loader::run).
            if (upgrade->migrates_state()) {
                if constexpr (std::is_same_v<Skel, xdpctl_xdp>) {
                    s->rodata->cfg_paths = all_paths().xdp();
                    xdp_autoload_for_paths(s.get());
                } else
                    s->rodata->cfg_paths = all_paths().tc();
            }
        }
        ct.emplace(s->obj, lb_conntrack, other_loaded_ifaces(pins));
    }
    if (int err = Skel::load(s.get()); err) {
        std::string reason = libbpf_verifier_reason();
        if (!reason.empty())
            fail("the kernel's verifier rejected the {} program:\n{}", what, reason);
        fail("cannot load the {} program: {}{}", what, errno_str(err),
             err == -EINVAL ? fmt::format(" (pinned maps under {} may be from an incompatible "
                                          "xdpctl version: 'xdpctl unload --all' removes them)",
                                          kPinRoot)
                            : "");
    }
    if (bpf_map* map = bpf_object__find_map_by_name(s->obj, "xdpctl_lb_ct"); map && ct) {
        const int fgen = bpf_map__fd(bpf_object__find_map_by_name(s->obj, "xdpctl_lb_fgen"));
        for (auto& n : ct->finish(bpf_map__fd(map), fgen))
            if (notes)
                notes->push_back(std::move(n));
    }
    if (upgrade)
        upgrade->after_load(s->obj);
    return s;
}

// What a load sets in each object's read-only data besides the malformed action, the same
// for a load and for a reload that changes the paths (datapath_paths.h); and which of its
// programs loads.
void configure_xdp(xdpctl_xdp* s, const std::string& ifname, __u32 iif_key, __u32 paths, XdpShape shape)
{
    s->rodata->cfg_lb_mtu = iface_mtu(ifname);
    s->rodata->cfg_iif_key = iif_key;
    s->rodata->cfg_paths = paths;
    for (const auto& k : xdp_kinds(s))
        for (bpf_program* prog : k.all())
            if (prog)
                bpf_program__set_autoload(prog, prog == k.paths && k.shape == shape);
    xdp_autoload_for_paths(s);
}

// A loaded XDP program's own program array (a new one each load: the kernel ties an array
// to its first program's kind), given `next` in its slot when the shape has one. Returns a
// reference to pin as the interface's `next` once the program is attached; none without.
UniqueFd fill_next(xdpctl_xdp* s, XdpShape shape, const NextProg* next, const std::string& where)
{
    if (!shape.next)
        return {};
    const int fd = bpf_map__fd(s->maps.xdpctl_next);
    set_next_slot(fd, next, shape.frags, where);
    return UniqueFd{dup(fd)};
}

void configure_tc(xdpctl_tc* s, bool with_xdp, __u32 iif_key, __u32 paths)
{
    s->rodata->cfg_tc_ingress_rules = !with_xdp;
    s->rodata->cfg_iif_key = iif_key;
    s->rodata->cfg_paths = paths;
}

// The XDP program reloaded (this shape and these paths, the rest as `meta` says) and swapped
// in atomically by bpf_link_update; its new program array (with `next`) replaces the pinned
// one after the swap. The maps are the pinned ones: counters and connections are kept.
void swap_xdp_program(const IfacePins& pins, const xdpctl_iface_meta& meta, const std::string& ifname,
                      __u32 paths, XdpShape shape, const NextProg* next, const std::string& where,
                      upgrade::MapUpgrade* upgrade = nullptr)
{
    UniqueFd link = open_pinned(pins.link_xdp);
    auto xs = open_and_load<xdpctl_xdp>(&pins, static_cast<xdpctl_malformed_action>(meta.malformed), "XDP",
                                        [&](xdpctl_xdp* s) { configure_xdp(s, ifname, meta.iif_key, paths, shape); },
                                        0, false, nullptr, upgrade);
    UniqueFd arr = fill_next(xs.get(), shape, next, where);
    if (upgrade && link)
        upgrade->before_swap(link.get());
    if (int err = link ? bpf_link_update(link.get(), bpf_program__fd(xdp_prog(xs.get(), shape)), nullptr) : -ENOENT)
        fail("cannot replace the XDP program on {}: {}", where, errno_str(err));
    unpin(pins.next);
    if (arr)
        pin_fd(arr.get(), pins.next);
}

__u32 link_prog_id(int link_fd)
{
    bpf_link_info info{};
    __u32 len = sizeof(info);
    if (bpf_link_get_info_by_fd(link_fd, &info, &len) != 0)
        return 0;
    return info.prog_id;
}

// Detaches and unpins one pinned link; a defunct link (device gone) only loses its pin.
void drop_link(const std::string& pin)
{
    UniqueFd fd = open_pinned(pin);
    if (fd) {
        int err = bpf_link_detach(fd.get());
        if (err && err != -ENOLINK && err != -EINVAL && err != -ENOENT)
            fail("cannot detach {}: {}", pin, errno_str(err));
    }
    unpin(pin);
}

// Everything xdpctl attached on the interface, from its pins (and its clsact handle).
// Must run inside the interface's network namespace when ifindex != 0.
void detach_all(const IfacePins& pins, int ifindex, const std::optional<xdpctl_iface_meta>& meta)
{
    drop_link(pins.link_xdp);
    drop_link(pins.link_tc_in);
    drop_link(pins.link_tc_eg);
    bool created_qdisc = meta && (meta->flags & XDPCTL_META_F_CREATED_CLSACT);
    // Our clsact filters carry our handle/priority: removing them needs no record, so a
    // load killed before writing its record is still cleaned up.
    if (ifindex && (!meta || meta->ifindex == __u32(ifindex)))
        detach_clsact(ifindex, created_qdisc);
    unpin(pins.prog_tc_in);
    unpin(pins.prog_tc_eg);
}

void write_meta(const IfacePins& pins, const xdpctl_iface_meta& m)
{
    UniqueFd fd = open_pinned(pins.meta);
    __u32 key = 0;
    if (!fd || bpf_map_update_elem(fd.get(), &key, &m, BPF_ANY) != 0)
        fail("cannot write {}: {}", pins.meta, errno_str(errno));
}

// Pins whose links are another namespace's interface's are never reused or detached from
// here. `list`: one "\n  PIN: WHAT" line each.
[[noreturn]] void fail_foreign_pins(const IfaceRef& iface, const std::string& dir,
                                    const std::string& list)
{
    fail("the pins of {} under {} are attached to another network namespace's interface:{}\n"
         "xdpctl there removes them ('xdpctl unload'), or 'xdpctl unload --all'",
         iface.display(), dir, list);
}

// Links attached in this load, pinned together at the end.
struct PendingPins {
    std::vector<std::pair<UniqueFd, std::string>> items;
    std::vector<std::string> done;

    void add(UniqueFd fd, std::string path) { items.emplace_back(std::move(fd), std::move(path)); }
    void pin_all()
    {
        for (auto& [fd, path] : items) {
            unpin(path);  // a stale pin from an interrupted run
            pin_fd(fd.get(), path);
            done.push_back(path);
        }
    }
    void rollback() noexcept
    {
        for (const auto& p : done)
            try {
                unpin(p);
            } catch (...) {
            }
    }
};

struct Loader {
    const LoadOptions& opts;
    NetnsId netns_id;
    IfacePins pins;
    int ifindex = 0;
    std::optional<xdpctl_iface_meta> old;
    LoadResult res;
    PendingPins pending;
    upgrade::MapUpgrade upgrade;  // pinned maps of another layout (an upgrade)
    bool clsact_attached_here = false;
    bool clsact_created_here = false;

    // Runs inside the interface's namespace: its pins are that namespace's.
    explicit Loader(const LoadOptions& o)
        : opts(o), netns_id(current_netns_id()), pins(iface_pin_dir(netns_id, o.iface.ifname))
    {
    }

    bool want_xdp() const { return opts.hooks != HookSelection::tc; }
    bool want_tc() const { return opts.hooks != HookSelection::xdp; }

    // The previous release's name-keyed pins move here once their links are seen to be
    // this namespace's; another namespace's stay where they are.
    void adopt_legacy()
    {
        const std::string legacy = legacy_iface_pin_dir(opts.iface);
        auto ours = [&](const std::string& dir) {
            for (const auto& t : foreign_or_stale_pins(IfacePins(dir), ifindex, opts.iface.ifname))
                if (t.state == PinState::elsewhere)
                    return false;
            return true;
        };
        if (adopt_legacy_pins(legacy, pins.dir, ours))
            res.notes.push_back(fmt::format("moved the previous release's pins {} to {}", legacy, pins.dir));
    }

    // Pinned links that are not attached to this interface here are never reused: another
    // namespace's are refused, stale ones (interface or namespace gone) only go with --force.
    void check_targets()
    {
        auto bad = foreign_or_stale_pins(pins, ifindex, opts.iface.ifname);
        if (bad.empty())
            return;
        std::string list;
        for (const auto& t : bad)
            list += "\n  " + xdpctl::describe(t);
        for (const auto& t : bad)
            if (t.state == PinState::elsewhere)
                fail_foreign_pins(opts.iface, pins.dir, list);
        if (!opts.force)
            fail("the pins of {} under {} are stale:{}\n'xdpctl unload {}' removes them, "
                 "'xdpctl load --force {}' replaces them",
                 opts.iface.display(), pins.dir, list, opts.iface.cli_args(), opts.iface.cli_args());
        detach_all(pins, ifindex, std::nullopt);
        res.notes.push_back("removed stale pins:" + list);
        old.reset();
    }

    // Returns true for `load --next` on a loaded interface without --force (update_next_only).
    bool check_existing()
    {
        old = pins.read_meta();
        bool attached = pins.attached();
        if (attached)
            check_targets();
        attached = pins.attached();
        if (attached && (!old || old->ifindex != __u32(ifindex))) {
            // A load killed before its record (links of a deleted interface are stale: above).
            detach_all(pins, ifindex, std::nullopt);
            res.notes.push_back("removed what an interrupted or stale earlier load left");
            old.reset();
            return false;
        }
        if (!attached) {
            old.reset();
            return false;
        }
        if (!opts.force && opts.next)
            return true;
        if (!opts.force)
            fail("xdpctl is already loaded on {} (hooks: {}); 'xdpctl load --force {}' reloads "
                 "it keeping its counters, 'xdpctl unload {}' removes it",
                 opts.iface.display(), describe(*old), opts.iface.cli_args(), opts.iface.cli_args());
        res.reloaded = true;
        return false;
    }

    static std::string describe(const xdpctl_iface_meta& m)
    {
        std::string s;
        if (m.hooks & XDPCTL_HOOKS_XDP)
            s += "xdp " + xdp_mode_name(m.xdp_mode);
        if (m.hooks & XDPCTL_HOOKS_TC)
            s += std::string(s.empty() ? "" : ", ") + "tc " + tc_attach_name(m.tc_attach);
        return s;
    }

    void check_foreign_xdp()
    {
        XdpAttached cur = query_xdp(ifindex);
        if (!cur.prog_id)
            return;
        UniqueFd ours = open_pinned(pins.link_xdp);
        if (ours && link_prog_id(ours.get()) == cur.prog_id)
            return;
        if (!opts.force)
            fail("{} already has an XDP program that xdpctl did not load (id {}, name '{}'); "
                 "'xdpctl load --force' replaces it",
                 opts.iface.display(), cur.prog_id, cur.prog_name);
        detach_foreign_xdp(ifindex, cur, opts.iface.display());
        res.notes.push_back(
            fmt::format("replaced XDP program id {} ('{}')", cur.prog_id, cur.prog_name));
    }

    void attach_xdp(int prog_fd)
    {
        UniqueFd old_link = open_pinned(pins.link_xdp);
        bool same_mode = old && old->xdp_mode != XDPCTL_XDP_MODE_NONE &&
                         (opts.xdp_mode == XdpModeRequest::automatic ||
                          (opts.xdp_mode == XdpModeRequest::native) ==
                              (old->xdp_mode == XDPCTL_XDP_MODE_NATIVE));
        if (old_link && same_mode) {
            // Atomic replacement: no packet sees an empty hook.
            upgrade.before_swap(old_link.get());
            if (int err = bpf_link_update(old_link.get(), prog_fd, nullptr); err)
                fail("cannot replace the XDP program on {}: {}", opts.iface.display(),
                     errno_str(err));
            res.meta.xdp_mode = old->xdp_mode;
            return;
        }
        if (old_link) {
            old_link.reset();
            drop_link(pins.link_xdp);
        }
        xdpctl_xdp_mode got{};
        std::string refused;
        pending.add(attach_xdp_link(prog_fd, ifindex, opts.xdp_mode, &got, opts.iface.display(), &refused),
                    pins.link_xdp);
        res.meta.xdp_mode = got;
        if (opts.xdp_mode == XdpModeRequest::automatic && got == XDPCTL_XDP_MODE_SKB)
            res.notes.push_back(fmt::format("the kernel refused native XDP mode: {}; attached in skb "
                                            "(generic) mode", refused));
    }

    // The next program: named by --next, the last load's (kept), or none.
    std::optional<NextProg> next;
    XdpShape shape;

    void resolve_next(bool xdp)
    {
        if (!xdp) {
            if (opts.next)
                fail_usage("--next runs a program after xdpctl's XDP program: it needs --hook xdp or both");
            return;
        }
        if (opts.next && *opts.next != "none")
            next = open_next_prog(*opts.next);
        else if (!opts.next && old && (old->flags & XDPCTL_META_F_XDP_NEXT))
            next = pinned_next_prog(pins.next);
        shape.next = next || (!opts.next && old && (old->flags & XDPCTL_META_F_XDP_NEXT));
        shape.frags = xdp_needs_frags(iface_mtu(opts.iface.ifname), next ? &*next : nullptr,
                                      opts.iface.display());
    }

    void note_next()
    {
        if (next)
            res.notes.push_back(fmt::format("what xdpctl passes on XDP goes on to program id {} ('{}')",
                                            next->id, next->name));
        else if (opts.next)
            res.notes.push_back("no next program: what xdpctl passes on XDP is passed (XDP_PASS)");
    }

    // `load --next` on a loaded interface without --force: the next program changes, nothing
    // else. Only the slot, when the program already has one of the right kind; otherwise the
    // XDP program is reloaded in that shape and swapped in atomically (bpf_link_update).
    void update_next_only()
    {
        if (!(old->hooks & XDPCTL_HOOKS_XDP))
            fail_usage("{}: xdpctl runs only on TC there; --next needs its XDP hook "
                       "('xdpctl load --force --hook both --next ...')", opts.iface.display());
        resolve_next(true);
        res.meta = *old;
        res.reloaded = true;
        const XdpShape was = XdpShape::of(*old);
        if (shape == was && shape.next) {
            UniqueFd arr = open_pinned(pins.next);
            if (!arr)
                fail("{}: the next program's array {} is missing: 'xdpctl load --force' recreates it",
                     opts.iface.display(), pins.next);
            set_next_slot(arr.get(), next ? &*next : nullptr, shape.frags, opts.iface.display());
        } else if (shape != was) {
            swap_xdp_program(pins, *old, opts.iface.ifname, paths_in_force().xdp(), shape,
                             next ? &*next : nullptr, opts.iface.display());
        }
        res.meta.flags = (old->flags & ~XdpShape{true, true}.flags()) | shape.flags();
        res.meta.reloaded_at_ns = now_ns();
        write_meta(pins, res.meta);
        note_next();
    }

    // One TC direction; returns how it was attached.
    xdpctl_tc_attach attach_tc_dir(int prog_fd, TcDirection dir, const std::string& link_pin,
                                  const std::string& prog_pin)
    {
        if (opts.tc_mode != TcModeRequest::clsact) {
            UniqueFd old_link = open_pinned(link_pin);
            if (old_link) {
                upgrade.before_swap(old_link.get());
                if (int err = bpf_link_update(old_link.get(), prog_fd, nullptr); err)
                    fail("cannot replace the TC program on {}: {}", opts.iface.display(),
                         errno_str(err));
                return XDPCTL_TC_TCX;
            }
            int err = 0;
            UniqueFd link = attach_tcx_link(prog_fd, ifindex, dir, &err);
            if (link) {
                pending.add(std::move(link), link_pin);
                return XDPCTL_TC_TCX;
            }
            if (opts.tc_mode == TcModeRequest::tcx || (err != EINVAL && err != EOPNOTSUPP))
                fail("{}: cannot attach the TC program through tcx: {}", opts.iface.display(),
                     errno_str(err));
        }
        drop_link(link_pin);  // switching from tcx to clsact on a reload
        clsact_created_here |= attach_clsact(prog_fd, ifindex, dir, opts.iface.display());
        clsact_attached_here = true;
        UniqueFd prog{dup(prog_fd)};
        pending.add(std::move(prog), prog_pin);
        return XDPCTL_TC_CLSACT;
    }

    void attach_tc(int in_fd, int eg_fd)
    {
        auto a = attach_tc_dir(in_fd, TcDirection::ingress, pins.link_tc_in, pins.prog_tc_in);
        auto b = attach_tc_dir(eg_fd, TcDirection::egress, pins.link_tc_eg, pins.prog_tc_eg);
        res.meta.tc_attach = a;
        if (a != b)
            fail("{}: TC ingress attached through {} but egress through {}", opts.iface.display(),
                 tc_attach_name(a), tc_attach_name(b));
        if (a == XDPCTL_TC_TCX && old && old->tc_attach == XDPCTL_TC_CLSACT) {
            detach_clsact(ifindex, old->flags & XDPCTL_META_F_CREATED_CLSACT);
            unpin(pins.prog_tc_in);
            unpin(pins.prog_tc_eg);
        }
        if (opts.tc_mode == TcModeRequest::automatic && a == XDPCTL_TC_CLSACT)
            res.notes.push_back("this kernel has no tcx: TC programs attached through clsact");
    }

    void remove_unwanted()
    {
        if (!want_xdp())
            drop_link(pins.link_xdp);
        if (!shape.next)
            unpin(pins.next);
        if (!want_tc()) {
            drop_link(pins.link_tc_in);
            drop_link(pins.link_tc_eg);
            if (old && old->tc_attach == XDPCTL_TC_CLSACT) {
                detach_clsact(ifindex, old->flags & XDPCTL_META_F_CREATED_CLSACT);
                unpin(pins.prog_tc_in);
                unpin(pins.prog_tc_eg);
            }
        }
    }

    void run()
    {
        ifindex = resolve_ifindex(opts.iface);
        adopt_legacy();
        if (check_existing()) {
            update_next_only();
            return;
        }
        resolve_next(want_xdp());
        if (want_xdp())
            check_foreign_xdp();
        make_pin_dir(pins.dir);
        // The interface keeps its key across reloads; a first load takes a free one.
        res.meta.iif_key = old && old->iif_key ? old->iif_key : free_iif_key(pins.dir);

        // The paths the policy and load balancer in force need: the load holds the lock
        // commits take, so none changes them before the programs are attached.
        const DatapathPaths paths = paths_in_force();
        SkelPtr<xdpctl_xdp> xs;
        SkelPtr<xdpctl_tc> ts;
        if (want_xdp())
            xs = open_and_load<xdpctl_xdp>(
                &pins, opts.malformed, "XDP",
                [&](xdpctl_xdp* s) { configure_xdp(s, opts.iface.ifname, res.meta.iif_key, paths.xdp(), shape); },
                opts.lb_conntrack, false, &res.notes, &upgrade);
        if (want_xdp())
            if (UniqueFd arr = fill_next(xs.get(), shape, next ? &*next : nullptr, opts.iface.display()))
                pending.add(std::move(arr), pins.next);
        if (want_tc())
            ts = open_and_load<xdpctl_tc>(&pins, opts.malformed, "TC", [&](xdpctl_tc* s) {
                configure_tc(s, want_xdp(), res.meta.iif_key, paths.tc());
            }, 0, false, nullptr, &upgrade);

        res.meta.abi_version = XDPCTL_ABI_VERSION;
        res.meta.ifindex = ifindex;
        res.meta.malformed = opts.malformed;
        res.meta.hooks = (want_xdp() ? XDPCTL_HOOKS_XDP : 0) | (want_tc() ? XDPCTL_HOOKS_TC : 0);
        res.meta.loaded_at_ns = old ? old->loaded_at_ns : now_ns();
        res.meta.reloaded_at_ns = old ? now_ns() : 0;
        try {
            if (want_xdp())
                attach_xdp(bpf_program__fd(xdp_prog(xs.get(), shape)));
            if (want_tc())
                attach_tc(bpf_program__fd(ts->progs.xdpctl_tc_in),
                          bpf_program__fd(ts->progs.xdpctl_tc_eg));
            remove_unwanted();
            bool keep_created = old && (old->flags & XDPCTL_META_F_CREATED_CLSACT) &&
                                res.meta.tc_attach == XDPCTL_TC_CLSACT;
            if (clsact_created_here || keep_created)
                res.meta.flags |= XDPCTL_META_F_CREATED_CLSACT;
            if (want_xdp())
                res.meta.flags |= shape.flags();
            pending.pin_all();
            write_meta(pins, res.meta);
            record_netns_name(netns_id, opts.iface.netns);
            note_next();
            // Shared maps recreated in a new layout: every other interface onto them too,
            // before what the old maps counted meanwhile is added.
            if (upgrade.replaced_shared())
                for (const auto& i : pinned_ifaces())
                    if (i.dir != pins.dir && IfacePins(i.dir).attached())
                        reload_iface_programs(i, paths.xdp(), paths.tc(), &upgrade);
            for (auto& n : upgrade.after_swap())
                res.notes.push_back(std::move(n));
            // A migrated state: the programs, loaded with every path, get just those in force.
            if (upgrade.migrates_state())
                try {
                    reload_programs(paths_in_force(), true);
                } catch (const Error& e) {
                    res.notes.push_back(fmt::format("the programs keep every path (they decide any policy): {}",
                                                    e.what()));
                }
        } catch (...) {
            pending.rollback();
            if (clsact_attached_here && !old)
                try {
                    detach_clsact(ifindex, clsact_created_here);
                } catch (...) {
                }
            throw;
        }
    }
};

}  // namespace

void ensure_shared_maps()
{
    require_privileges();
    require_bpffs();
    require_btf();
    // Loading the XDP object creates and pins every shared map it does not find pinned;
    // the program itself is not attached and goes away with the skeleton.
    open_and_load<xdpctl_xdp>(nullptr, XDPCTL_MALFORMED_PASS, "XDP");
}

SkelPtr<xdpctl_xdp> load_explain_xdp(xdpctl_malformed_action malformed, uint32_t iif_key)
{
    return open_and_load<xdpctl_xdp>(
        nullptr, malformed, "XDP", [iif_key](xdpctl_xdp* s) { s->rodata->cfg_iif_key = iif_key; }, 0, true);
}

SkelPtr<xdpctl_tc> load_explain_tc(xdpctl_malformed_action malformed, uint32_t iif_key)
{
    // Explain runs TC ingress only where XDP does not: then TC applies the ingress rules.
    return open_and_load<xdpctl_tc>(
        nullptr, malformed, "TC", [iif_key](xdpctl_tc* s) { s->rodata->cfg_iif_key = iif_key; }, 0, true);
}

void reload_iface_programs(const PinnedIface& iface, std::optional<uint32_t> xdp_paths,
                           std::optional<uint32_t> tc_paths, upgrade::MapUpgrade* upgrade)
{
    IfacePins pins(iface.dir);
    const auto meta = pins.read_meta();
    if (!meta || !iface.where)
        return;
    NetnsScope ns(*iface.where);
    const auto malformed = static_cast<xdpctl_malformed_action>(meta->malformed);
    const std::string display = iface.display();
    if (xdp_paths && (meta->hooks & XDPCTL_HOOKS_XDP)) {
        // By its index: the interface may have been renamed since the load.
        char name[IF_NAMESIZE] = {};
        if (!if_indextoname(meta->ifindex, name))
            fail("cannot find the interface of {} (ifindex {}): {}", display, meta->ifindex, errno_str(errno));
        // The next program (if any) stays: carried into the new program's array.
        const XdpShape shape = XdpShape::of(*meta);
        auto next = shape.next ? pinned_next_prog(pins.next, false) : std::nullopt;
        swap_xdp_program(pins, *meta, name, *xdp_paths, shape, next ? &*next : nullptr, display, upgrade);
    }
    if (tc_paths && (meta->hooks & XDPCTL_HOOKS_TC)) {
        auto ts = open_and_load<xdpctl_tc>(&pins, malformed, "TC", [&](xdpctl_tc* s) {
            configure_tc(s, meta->hooks & XDPCTL_HOOKS_XDP, meta->iif_key, *tc_paths);
        }, 0, false, nullptr, upgrade);
        const int in = bpf_program__fd(ts->progs.xdpctl_tc_in), eg = bpf_program__fd(ts->progs.xdpctl_tc_eg);
        if (meta->tc_attach == XDPCTL_TC_CLSACT) {
            // Our filter (own handle and priority) replaced in place, and its pin with it.
            const int ifindex = int(meta->ifindex);
            for (auto [fd, dir, pin] : {std::tuple{in, TcDirection::ingress, pins.prog_tc_in},
                                        std::tuple{eg, TcDirection::egress, pins.prog_tc_eg}}) {
                attach_clsact(fd, ifindex, dir, display);
                unpin(pin);
                pin_fd(fd, pin);
            }
        } else {
            for (auto [fd, pin] : {std::pair{in, pins.link_tc_in}, std::pair{eg, pins.link_tc_eg}}) {
                UniqueFd link = open_pinned(pin);
                if (upgrade && link)
                    upgrade->before_swap(link.get());
                if (int err = link ? bpf_link_update(link.get(), fd, nullptr) : -ENOENT)
                    fail("cannot replace the TC program on {}: {}", display, errno_str(err));
            }
        }
    }
}

LoadResult load(const LoadOptions& opts)
{
    require_privileges();
    require_bpffs();
    require_btf();
    require_xdp_support();
    WriterLock lock;  // the paths it sets (datapath_paths.h) come from a policy no commit changes under it
    NetnsScope ns(opts.iface.netns);
    Loader l(opts);
    // A load refused or failed before anything was attached leaves nothing behind: no pin
    // directory that `status` would list as a partly loaded interface.
    const bool had_dir = path_exists(l.pins.dir);
    try {
        l.run();
    } catch (...) {
        if (!had_dir && !l.pins.attached())
            try {
                remove_pin_tree(l.pins.dir);
            } catch (...) {
            }
        throw;
    }
    return std::move(l.res);
}

namespace {
// The shared maps hold the filtering policy, which outlives any one interface (rules can
// be set up before the first load and survive the last unload). With no policy ever
// committed they hold nothing: the last unload takes them away, leaving bpffs as it was.
void drop_unused_shared_maps()
{
    if (!pinned_ifaces().empty())
        return;
    UniqueFd src = open_pinned(shared_maps_dir() + "/xdpctl_psrc");
    __u32 key = 0;
    if (src && bpf_map_get_next_key(src.get(), nullptr, &key) == 0)
        return;  // a stored policy
    UniqueFd vips = open_pinned(shared_maps_dir() + "/xdpctl_lb_vips");
    xdpctl_lb_vip_key vip{};
    if (vips && bpf_map_get_next_key(vips.get(), nullptr, &vip) == 0)
        return;  // load-balancer VIPs
    remove_pin_tree(shared_maps_dir());
}

// Detaches and removes one interface's pins. `where`: its namespace (none: gone, so its
// links are defunct). `strict`: refuse pins attached to another namespace's interface
// (`unload IFACE`); `unload --all` removes those too.
void unload_pins(const IfacePins& pins, const std::optional<NetnsLocation>& where,
                 const IfaceRef& iface, bool strict)
{
    auto meta = pins.read_meta();
    if (where) {
        NetnsScope ns(*where);
        int ifindex = find_ifindex(iface);
        bool foreign = false;
        for (const auto& t : foreign_or_stale_pins(pins, ifindex, iface.ifname)) {
            foreign |= t.state == PinState::elsewhere;
            if (strict && t.state == PinState::elsewhere)
                fail_foreign_pins(iface, pins.dir, "\n  " + describe(t));
        }
        // Not our clsact filters to remove when the pins are another interface's.
        detach_all(pins, foreign ? 0 : ifindex, meta);
    } else {
        // The namespace is gone and its devices with it: the links are defunct.
        detach_all(pins, 0, meta);
    }
    remove_pin_tree(pins.dir);
    drop_unused_shared_maps();
    remove_empty_pin_parents(pins.dir);
}
}  // namespace

void unload(const IfaceRef& iface)
{
    require_privileges();
    require_bpffs();
    PinSite site = locate_pins(iface, "if");
    if (!path_exists(site.dir))
        fail("xdpctl is not loaded on {} (nothing under {}); 'xdpctl status' lists where it is",
             iface.display(), site.dir);
    unload_pins(IfacePins(site.dir), site.where, iface, true);
}

std::vector<PinnedIface> unload_all()
{
    require_privileges();
    require_bpffs();
    auto all = pinned_ifaces();
    for (const auto& i : all)
        unload_pins(IfacePins(i.dir), i.where, {"", i.ifname}, false);
    remove_pin_tree(kPinRoot);
    return all;
}

}  // namespace xdpctl
