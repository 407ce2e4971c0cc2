#include "policy_programs.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "attach/loader.h"
#include "stats/counters.h"
#include "util/error.h"
#include "xdpctl_tc.skel.h"
#include "xdpctl_xdp.skel.h"

namespace xdpctl::test {

namespace {
bool is_policy_map(const char* name)
{
    return std::strncmp(name, "xdpctl_p", 8) == 0 || std::strncmp(name, "xdpctl_r", 8) == 0;
}
}  // namespace

PolicyPrograms::PolicyPrograms(uint32_t xdp_paths, uint32_t tc_paths)
{
    xdp_.reset(xdpctl_xdp::open());
    if (!xdp_)
        fail("cannot open the xdpctl_xdp skeleton: {}", errno_str(errno));
    xdp_->rodata->cfg_malformed_action = XDPCTL_MALFORMED_PASS;
    xdp_->rodata->cfg_paths = xdp_paths;
    // The program `load` attaches for these paths (the one-field path alone has its own).
    xdp_prog_ = xdp_program_for_paths(*xdp_, xdp_paths);
    bpf_program__set_autoload(xdp_->progs.xdpctl_xdp, false);
    bpf_program__set_autoload(xdp_prog_, true);
    if (int err = xdpctl_xdp::load(xdp_.get()))
        fail("cannot load xdpctl_xdp (root? verifier log above): {}", errno_str(err));

    tc_.reset(xdpctl_tc::open());
    if (!tc_)
        fail("cannot open the xdpctl_tc skeleton: {}", errno_str(errno));
    tc_->rodata->cfg_malformed_action = XDPCTL_MALFORMED_PASS;
    tc_->rodata->cfg_paths = tc_paths;
    bpf_map* m;
    bpf_object__for_each_map(m, tc_->obj)
    {
        if (bpf_map__is_internal(m) || !is_policy_map(bpf_map__name(m)))
            continue;
        bpf_map* mine = bpf_object__find_map_by_name(xdp_->obj, bpf_map__name(m));
        if (!mine || bpf_map__reuse_fd(m, bpf_map__fd(mine)) != 0)
            fail("cannot share the map {} with the TC object", bpf_map__name(m));
    }
    if (int err = xdpctl_tc::load(tc_.get()))
        fail("cannot load xdpctl_tc (root? verifier log above): {}", errno_str(err));
    maps_ = std::make_unique<policy::PolicyMaps>(policy::PolicyMaps::from_skeleton(*xdp_));
}

PolicyPrograms::~PolicyPrograms() = default;

int PolicyPrograms::prog_fd(int hook) const
{
    return hook == XDPCTL_HOOK_XDP ? bpf_program__fd(xdp_prog_) : hook_prog_fd(*xdp_, *tc_, hook);
}

int PolicyPrograms::stats_fd(int hook) const
{
    return hook_stats_fd(*xdp_, *tc_, hook);
}

int PolicyPrograms::rule_counters_fd() const
{
    return bpf_map__fd(xdp_->maps.xdpctl_rctr);
}

int PolicyPrograms::map_fd(const char* name) const
{
    const bpf_map* m = bpf_object__find_map_by_name(xdp_->obj, name);
    if (!m)
        fail("no map {}", name);
    return bpf_map__fd(m);
}

RunResult PolicyPrograms::run(int hook, const std::vector<uint8_t>& frame, uint32_t ifindex, int repeat) const
{
    return prog_test_run(prog_fd(hook), hook == XDPCTL_HOOK_XDP, frame, ifindex, repeat);
}

std::vector<xdpctl_rule_ctr> read_rule_counters(int fd, uint32_t n)
{
    const size_t ncpu = size_t(possible_cpus());
    std::vector<uint32_t> keys(n);
    std::vector<xdpctl_rule_ctr> raw(size_t(n) * ncpu), out(n);
    uint32_t next = 0, done = 0;
    while (done < n) {
        __u32 count = n - done;
        int err = bpf_map_lookup_batch(fd, done ? &next : nullptr, &next, keys.data() + done,
                                       raw.data() + size_t(done) * ncpu, &count, nullptr);
        done += count;
        if (err && errno != ENOENT)
            fail("cannot read the rule counters: {}", errno_str(errno));
        if (err)
            break;
    }
    for (uint32_t i = 0; i < done; i++)
        for (size_t cpu = 0; cpu < ncpu; cpu++) {
            const xdpctl_rule_ctr& c = raw[size_t(i) * ncpu + cpu];
            out[keys[i]].packets += c.packets;
            out[keys[i]].bytes += c.bytes;
            out[keys[i]].last_hit_ns = std::max(out[keys[i]].last_hit_ns, c.last_hit_ns);
        }
    return out;
}

policy::SlotOf slots_by_id(const policy::Policy& p, uint32_t first_slot)
{
    std::vector<uint32_t> ids;
    for (const auto& r : p.rules)
        ids.push_back(r.id);
    std::sort(ids.begin(), ids.end());
    policy::SlotOf out;
    uint32_t s = first_slot;
    for (uint32_t id : ids)
        out[id] = s++;  // by id: id i -> slot first_slot + i - 1 when ids are 1..N
    return out;
}

}  // namespace xdpctl::test
