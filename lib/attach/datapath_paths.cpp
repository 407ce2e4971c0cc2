#include "attach/datapath_paths.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "util/error.h"
#include "attach/iface_pins.h"
#include "attach/iface_ref.h"
#include "attach/loader.h"
#include "attach/pin_layout.h"

namespace xdpctl {

namespace {

// Key `key` of the pinned map `name` into *out, if the map is there with values of exactly
// sizeof(T) (a map of another layout is not read). 1: read; 0: no such map; -1: unreadable.
template <typename T>
int read_pinned(const char* name, uint32_t key, T* out)
{
    UniqueFd fd = open_pinned(shared_maps_dir() + "/" + name);
    if (!fd)
        return 0;
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_map_get_info_by_fd(fd.get(), &info, &len) != 0 || info.value_size != sizeof(T) ||
        bpf_map_lookup_elem(fd.get(), &key, out) != 0)
        return -1;
    return 1;
}

// The program a pinned link runs; empty when the pin is missing or the link is defunct (its
// interface is gone: the program runs on nothing).
UniqueFd linked_prog(const std::string& pin)
{
    UniqueFd link = open_pinned(pin);
    if (!link)
        return {};
    bpf_link_info li{};
    __u32 len = sizeof(li);
    if (bpf_link_get_info_by_fd(link.get(), &li, &len) != 0)
        return {};
    if ((li.type == BPF_LINK_TYPE_XDP && !li.xdp.ifindex) || (li.type == BPF_LINK_TYPE_TCX && !li.tcx.ifindex))
        return {};
    return UniqueFd{bpf_prog_get_fd_by_id(li.prog_id)};
}

// Whether a program with `have` must be reloaded for `want`; a program without cfg_paths
// (another xdpctl's) never is.
bool needs_reload(const std::optional<uint32_t>& have, uint32_t want, bool exact)
{
    return have && (exact ? *have != want : !paths_cover(*have, want));
}

// Whether a rule of generation g's direction d has --log: its records in the pinned
// xdpctl_prule (mmapable: read in place, not 10,000 lookups). Unreadable: yes (the log path
// is then merely loaded for nothing).
bool direction_logs(uint32_t g, uint32_t d, uint32_t n_rules)
{
    UniqueFd fd = open_pinned(shared_maps_dir() + "/xdpctl_prule");
    if (!fd)
        return false;
    // Only the pages of these records: the kernel maps every page of a mapping at mmap and
    // unmaps it at munmap (the whole map is 1.25 MiB, ~0.2 ms of a commit where a page table
    // change goes through the hypervisor, a PVM guest; calls cheap, no microcode).
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    const size_t first = sizeof(xdpctl_rule_rec) * size_t(XDPCTL_POL_GD(g, d)) * XDPCTL_POL_MAX_RANKS;
    const size_t n = std::min<uint32_t>(n_rules, XDPCTL_POL_MAX_RANKS);
    if (n == 0)
        return false;
    const size_t at = first / page * page;
    const size_t bytes = first + n * sizeof(xdpctl_rule_rec) - at;
    void* m = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd.get(), off_t(at));
    if (m == MAP_FAILED)
        return true;
    const auto* recs = reinterpret_cast<const xdpctl_rule_rec*>(static_cast<const char*>(m) + (first - at));
    const bool logs = std::any_of(recs, recs + n, [](const xdpctl_rule_rec& r) { return r.log_rate != 0; });
    munmap(m, bytes);
    return logs;
}

}  // namespace

// An update of an ARRAY_OF_MAPS element returns after synchronize_rcu(), whatever it writes (a
// private one here). After a reload, before the change: a packet that took the replaced
// program just before the swap must not read what the change writes.
void wait_for_runs()
{
    UniqueFd inner{bpf_map_create(BPF_MAP_TYPE_ARRAY, "xdpctl_gp_in", 4, 4, 1, nullptr)};
    LIBBPF_OPTS(bpf_map_create_opts, opts, .inner_map_fd = __u32(inner.get()));
    UniqueFd outer{inner ? bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "xdpctl_gp", 4, 4, 1, &opts) : -1};
    __u32 key = 0, value = __u32(inner.get());
    if (!outer || bpf_map_update_elem(outer.get(), &key, &value, BPF_ANY) != 0)
        fail("cannot wait for the programs running: {}", errno_str(errno));
}

bool paths_cover(uint32_t have, uint32_t need)
{
    if (have & XDPCTL_PATH_TABLES)
        have |= XDPCTL_PATH_SMALL | XDPCTL_PATH_FIELD;
    if (have & XDPCTL_PATHS_POLICY)
        have |= XDPCTL_PATH_DEFAULT;  // every shape reads the header, default included
    return (need & ~have) == 0;
}

bool DatapathPaths::covers(const DatapathPaths& o) const
{
    return paths_cover(xdp(), o.xdp()) && paths_cover(tc(), o.tc());
}

DatapathPaths all_paths()
{
    return {{XDPCTL_PATHS_ALL & ~XDPCTL_PATH_LB, XDPCTL_PATHS_ALL & ~XDPCTL_PATH_LB}, true};
}

DatapathPaths paths_in_force()
{
    DatapathPaths p;
    xdpctl_pol_ctl ctl{};
    const int got = read_pinned("xdpctl_pctl", 0, &ctl);
    if (got < 0)
        return all_paths();
    if (got > 0 && ctl.installed) {
        const uint32_t g = ctl.gen & 1;
        xdpctl_pol_hdr hdr{};
        if (read_pinned("xdpctl_phdr", g, &hdr) <= 0)
            return all_paths();
        for (uint32_t d = 0; d < XDPCTL_POL_DIRS; d++) {
            xdpctl_pol_small small{};
            // Missing (maps of an xdpctl before the small path): the header never says small.
            if ((hdr.dir[d].decide & XDPCTL_POL_DECIDE_SHAPE_MASK) == XDPCTL_POL_DECIDE_SMALL &&
                read_pinned("xdpctl_psmall", XDPCTL_POL_GD(g, d), &small) < 0)
                return all_paths();
            p.dir[d] = policy::written_paths(hdr.dir[d], small,
                                             hdr.dir[d].n_rules && direction_logs(g, d, hdr.dir[d].n_rules),
                                             hdr.default_action == XDPCTL_ACT_DROP);
        }
    }
    xdpctl_lb_ctl lb{};
    const int got_lb = read_pinned("xdpctl_lb_ctl", 0, &lb);
    if (got_lb < 0)
        return all_paths();
    p.lb = got_lb > 0 && lb.n_vips > 0;
    return p;
}

std::optional<uint32_t> program_paths(int prog_fd)
{
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (bpf_prog_get_info_by_fd(prog_fd, &info, &len) != 0)
        return std::nullopt;
    std::vector<__u32> ids(info.nr_map_ids);
    info = {};
    info.nr_map_ids = __u32(ids.size());
    info.map_ids = reinterpret_cast<__u64>(ids.data());
    len = sizeof(info);
    if (bpf_prog_get_info_by_fd(prog_fd, &info, &len) != 0)
        return std::nullopt;
    for (__u32 id : ids) {
        UniqueFd map{bpf_map_get_fd_by_id(id)};
        bpf_map_info mi{};
        __u32 mlen = sizeof(mi);
        if (!map || bpf_map_get_info_by_fd(map.get(), &mi, &mlen) != 0 || !std::strstr(mi.name, ".rodata") ||
            !mi.btf_id)
            continue;
        // Where cfg_paths is in the section, from the program's own BTF: right for a program
        // of any build.
        std::unique_ptr<btf, void (*)(btf*)> b(btf__load_from_kernel_by_id(mi.btf_id), btf__free);
        const btf_type* sec = b ? btf__type_by_id(b.get(), mi.btf_value_type_id) : nullptr;
        if (!sec || !btf_is_datasec(sec))
            continue;
        const btf_var_secinfo* v = btf_var_secinfos(sec);
        for (__u16 i = 0; i < btf_vlen(sec); i++, v++) {
            const btf_type* var = btf__type_by_id(b.get(), v->type);
            if (!var || std::strcmp(btf__name_by_offset(b.get(), var->name_off), "cfg_paths") != 0 ||
                v->size != sizeof(uint32_t) || v->offset + v->size > mi.value_size)
                continue;
            std::vector<uint8_t> data(mi.value_size);
            __u32 key = 0;
            if (bpf_map_lookup_elem(map.get(), &key, data.data()) != 0)
                return std::nullopt;
            uint32_t paths = 0;
            std::memcpy(&paths, data.data() + v->offset, sizeof(paths));
            return paths;
        }
    }
    return std::nullopt;
}

std::vector<std::string> path_names(uint32_t paths)
{
    static const std::pair<uint32_t, const char*> names[] = {
        {XDPCTL_PATH_SMALL, "small"}, {XDPCTL_PATH_FIELD, "field"}, {XDPCTL_PATH_TABLES, "tables"},
        {XDPCTL_PATH_RATE, "rate"},   {XDPCTL_PATH_LB, "lb"}, {XDPCTL_PATH_LOG, "log"},
        {XDPCTL_PATH_DEFAULT, "default"}, {XDPCTL_PATH_EDGE, "edge"},
    };
    std::vector<std::string> out;
    for (const auto& [bit, name] : names)
        if (paths & bit)
            out.emplace_back(name);
    return out;
}

int reload_programs(const DatapathPaths& want, bool exact)
{
    int n = 0;
    for (const auto& iface : pinned_ifaces()) {
        if (!iface.where)
            continue;  // its namespace is gone, and its devices with it
        IfacePins pins(iface.dir);
        auto meta = pins.read_meta();
        if (!meta)
            continue;  // an interrupted load: the next load finishes it, with the paths then
        std::optional<uint32_t> xdp, tc;
        std::optional<uint32_t> have_xdp, have_tc;
        if (UniqueFd p = linked_prog(pins.link_xdp))
            have_xdp = program_paths(p.get());
        UniqueFd tc_prog = meta->tc_attach == XDPCTL_TC_CLSACT ? open_pinned(pins.prog_tc_in) : linked_prog(pins.link_tc_in);
        if (tc_prog)
            have_tc = program_paths(tc_prog.get());
        const bool xdp_lacks = needs_reload(have_xdp, want.xdp(), false);
        const bool tc_lacks = needs_reload(have_tc, want.tc(), false);
        if (needs_reload(have_xdp, want.xdp(), exact))
            xdp = want.xdp();
        if (needs_reload(have_tc, want.tc(), exact))
            tc = want.tc();
        if (!xdp && !tc)
            continue;
        try {
            reload_iface_programs(iface, xdp, tc);
            n += (xdp ? 1 : 0) + (tc ? 2 : 0);
        } catch (const Error&) {
            if (xdp_lacks || tc_lacks)
                throw;
        }
    }
    return n;
}

namespace {
int reload_holds = 0;  // HoldProgramReloads alive (one thread: the command's)
}

HoldProgramReloads::HoldProgramReloads()
{
    reload_holds++;
}

HoldProgramReloads::~HoldProgramReloads()
{
    reload_holds--;
}

PathsChange::PathsChange(const std::function<void(DatapathPaths&)>& change) : PathsChange(paths_in_force(), change) {}

PathsChange::PathsChange(const DatapathPaths& in_force, const std::function<void(DatapathPaths&)>& change)
    : before_(in_force)
{
    after_ = before_;
    change(after_);
    if (reload_holds)
        return;
    // The programs cover what is in force (every load and change keeps them so): only a path
    // the change adds can be missing. While the change is made they must cover both sides.
    if (!before_.covers(after_))
        reloaded_ += reload_programs(after_.covers(before_) ? after_ : before_ | after_, false);
    if (reloaded_)
        wait_for_runs();
}

void PathsChange::finish() const
{
    if (after_ != before_ && !reload_holds)
        reloaded_ += reload_programs(paths_in_force(), true);
}

}  // namespace xdpctl
