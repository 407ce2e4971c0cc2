#include "lb/counter_floor.h"

#include <algorithm>

#include "lb/lb_model.h"
#include "stats/counters.h"

namespace xdpctl::lb {

namespace {

// Each field at least what the last read showed.
void raise_to(xdpctl_lb_ctr& now, const xdpctl_lb_ctr& last)
{
    now.packets = std::max(now.packets, last.packets);
    now.bytes = std::max(now.bytes, last.bytes);
    now.new_flows = std::max(now.new_flows, last.new_flows);
}

}  // namespace

LbMaps::AllCounters CounterFloor::hold(const std::vector<VipEntry>& vips, const std::vector<BackendEntry>& backends,
                                       LbMaps::AllCounters now)
{
    std::lock_guard lock(mu_);
    std::map<VipKey, VipLast> vips_seen;
    for (const auto& v : vips) {
        if (v.rec.id >= now.vip.size())
            continue;
        VipKey key{v.rec.id, format_vip(v.spec)};
        xdpctl_lb_ctr& c = now.vip[v.rec.id];
        if (auto it = vips_.find(key); it != vips_.end() && it->second.table_gen <= v.rec.table_gen)
            raise_to(c, it->second.ctr);
        vips_seen.emplace(std::move(key), VipLast{v.rec.table_gen, c});
    }
    vips_ = std::move(vips_seen);
    std::map<BackendKey, xdpctl_lb_ctr> backends_seen;
    for (const auto& b : backends) {
        if (b.slot >= now.backend.size())
            continue;
        const BackendKey key{b.slot, b.rec.gen};
        xdpctl_lb_ctr& c = now.backend[b.slot];
        if (auto it = backends_.find(key); it != backends_.end())
            raise_to(c, it->second);
        backends_seen.emplace(key, c);
    }
    backends_ = std::move(backends_seen);
    // The global counts: hit and forwarded carry the pending hits; the maps made anew show
    // a drop no read can be short by.
    const bool reset = have_stats_ && now.stats.cnt[XDPCTL_LB_CNT_TX] + slack_ < stats_.cnt[XDPCTL_LB_CNT_TX];
    if (have_stats_ && !reset)
        for (int i = 0; i < XDPCTL_LB_CNT_MAX; i++)
            now.stats.cnt[i] = std::max(now.stats.cnt[i], stats_.cnt[i]);
    stats_ = now.stats;
    have_stats_ = true;
    return now;
}

uint64_t fcache_slack()
{
    return uint64_t(XDPCTL_LB_FCACHE_REFRESH - 1) * XDPCTL_LB_FCACHE_SLOTS * uint64_t(possible_cpus());
}

}  // namespace xdpctl::lb
