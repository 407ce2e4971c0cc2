#include "attach/xdp_next.h"

#include <cerrno>
#include <fstream>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_ether.h>

#include "util/error.h"
#include "attach/iface_pins.h"

namespace xdpctl {

namespace {

// "prog", "map", "link" or "" from /proc/self/fdinfo: what a bpf_obj_get fd is.
std::string bpf_fd_kind(int fd)
{
    std::ifstream in("/proc/self/fdinfo/" + std::to_string(fd));
    for (std::string line; std::getline(in, line);)
        for (const char* k : {"prog", "map", "link"})
            if (line.rfind(std::string(k) + "_type:", 0) == 0 || line.rfind(std::string(k) + "_id:", 0) == 0)
                return k;
    return "";
}

// A two-instruction XDP program (return XDP_PASS), multi-buffer or not: the probe that tells
// which kind a program is (the kernel keeps its flag to itself).
UniqueFd probe_prog(bool frags)
{
    const bpf_insn insns[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = 2},
        {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
    };
    LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = BPF_XDP,
                .prog_flags = frags ? BPF_F_XDP_HAS_FRAGS : 0u);
    return UniqueFd{bpf_prog_load(BPF_PROG_TYPE_XDP, "xdpctl_probe", "GPL", insns, 2, &o)};
}

// Whether `fd` is a multi-buffer program: a program array takes its owner's kind (the first
// program put in it), and then only programs of that kind.
std::optional<bool> is_frags(int fd)
{
    UniqueFd arr{bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "xdpctl_probe", 4, 4, 2, nullptr)};
    if (!arr)
        return std::nullopt;
    __u32 k0 = 0, k1 = 1;
    int v = fd;
    if (bpf_map_update_elem(arr.get(), &k0, &v, BPF_ANY) != 0)
        return std::nullopt;
    for (bool frags : {false, true}) {
        UniqueFd p = probe_prog(frags);
        v = p.get();
        if (p && bpf_map_update_elem(arr.get(), &k1, &v, BPF_ANY) == 0)
            return frags;
    }
    return std::nullopt;  // neither: another attach type or JIT state
}

}  // namespace

NextProg open_next_prog(const std::string& path)
{
    NextProg n;
    n.fd = UniqueFd{bpf_obj_get(path.c_str())};
    if (!n.fd) {
        int err = errno;
        if (err == ENOENT)
            fail_usage("--next {}: no such pin (a path in bpffs where a program is pinned, e.g. "
                       "by 'bpftool prog load OBJ PATH')", path);
        fail_usage("--next {}: cannot open the pin: {}", path, errno_str(err));
    }
    std::string kind = bpf_fd_kind(n.fd.get());
    if (kind != "prog")
        fail_usage("--next {}: is not a program but {}", path, kind.empty() ? "another object" : "a " + kind);
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (bpf_prog_get_info_by_fd(n.fd.get(), &info, &len) != 0)
        fail_usage("--next {}: cannot read the program's info: {}", path, errno_str(errno));
    if (info.type != BPF_PROG_TYPE_XDP) {
        const char* t = libbpf_bpf_prog_type_str(static_cast<bpf_prog_type>(info.type));
        fail_usage("--next {}: is a {} program (id {}), not an XDP program", path, t ? t : "?", info.id);
    }
    n.id = info.id;
    n.name = info.name;
    auto frags = is_frags(n.fd.get());
    if (!frags)
        fail_usage("--next {}: XDP program id {} cannot be tail-called from xdpctl (loaded with "
                   "another expected attach type, e.g. for a devmap or cpumap)", path, n.id);
    n.frags = *frags;
    return n;
}

std::optional<NextProg> pinned_next_prog(const std::string& map_pin, bool kind)
{
    UniqueFd arr = open_pinned(map_pin);
    __u32 key = 0, id = 0;
    if (!arr || bpf_map_lookup_elem(arr.get(), &key, &id) != 0 || !id)
        return std::nullopt;
    NextProg n;
    n.fd = UniqueFd{bpf_prog_get_fd_by_id(id)};
    if (!n.fd)
        return std::nullopt;
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (bpf_prog_get_info_by_fd(n.fd.get(), &info, &len) != 0)
        return std::nullopt;
    n.id = id;
    n.name = info.name;
    n.frags = kind && is_frags(n.fd.get()).value_or(false);
    return n;
}

void set_next_slot(int map_fd, const NextProg* prog, bool owner_frags, const std::string& where)
{
    __u32 key = 0;
    if (!prog) {
        if (bpf_map_delete_elem(map_fd, &key) != 0 && errno != ENOENT)
            fail("{}: cannot clear the next program's slot: {}", where, errno_str(errno));
        return;
    }
    int fd = prog->fd.get();
    if (bpf_map_update_elem(map_fd, &key, &fd, BPF_ANY) == 0)
        return;
    int err = errno;
    if (err == EINVAL && prog->frags != owner_frags)
        fail_usage("{}: the next program id {} ('{}') is {} but xdpctl's XDP program here is {}: "
                   "a tail call needs both alike", where, prog->id, prog->name,
                   prog->frags ? "multi-buffer (xdp.frags)" : "single-buffer (SEC(\"xdp\"))",
                   owner_frags ? "multi-buffer" : "single-buffer");
    fail("{}: cannot set the next program id {}: {}", where, prog->id, errno_str(err));
}

bool xdp_needs_frags(uint32_t mtu, const NextProg* next, const std::string& where)
{
    // Drivers fit a standard frame (1500 + headers) in one buffer; over that, some need
    // several (veth's limit is ~3.5 KB, others' 3 KB or less), so jumbo MTUs load as
    // multi-buffer. The cost is one helper call a packet for the frame's length.
    const bool mtu_needs = mtu > ETH_DATA_LEN;
    if (mtu_needs && next && !next->frags)
        fail_usage("{}: MTU {} needs xdpctl to run as a multi-buffer XDP program, but the next "
                   "program id {} ('{}') is single-buffer: load it as SEC(\"xdp.frags\") "
                   "(BPF_F_XDP_HAS_FRAGS) or lower the MTU to {}",
                   where, mtu, next->id, next->name, ETH_DATA_LEN);
    return mtu_needs || (next && next->frags);
}

}  // namespace xdpctl
