#include "policy/policy_paths.h"

#include <algorithm>

namespace xdpctl::policy {

namespace {

uint32_t rate_path(bool rate)
{
    return rate ? XDPCTL_PATH_RATE : 0;
}

// Decision events: only a program of a policy with a --log rule has their code.
uint32_t log_path(bool logs)
{
    return logs ? XDPCTL_PATH_LOG : 0;
}

// The paths of a written direction's shape (it has rules).
uint32_t shape_paths(const xdpctl_pol_dir_hdr& dh, const xdpctl_pol_small& small)
{
    switch (dh.decide & XDPCTL_POL_DECIDE_SHAPE_MASK) {
    case XDPCTL_POL_DECIDE_SMALL: {
        bool rate = false;
        for (uint32_t i = 0; i < std::min<uint32_t>(small.n, XDPCTL_POL_SMALL_MAX); i++)
            rate |= small.r[i].rec.action == XDPCTL_ACT_RATE_LIMIT;
        return XDPCTL_PATH_SMALL | rate_path(rate);
    }
    case XDPCTL_POL_DECIDE_SRC:
    case XDPCTL_POL_DECIDE_DST:
        return XDPCTL_PATH_FIELD;
    default:
        // The tables: whether a rate-limit rule is among them would take reading every
        // record; the rate code is small beside the walk's.
        return XDPCTL_PATH_TABLES | XDPCTL_PATH_RATE;
    }
}

}  // namespace

DirPaths compiled_paths(const CompiledPolicy& c)
{
    DirPaths out{};
    for (int d = 0; d < XDPCTL_POL_DIRS; d++) {
        const CompiledDirection& cd = c.dir[d];
        if (cd.n_rules == 0) {
            // The default decides: read only when it drops (no policy read passes).
            out[d] = c.default_action == ActionKind::drop ? XDPCTL_PATH_DEFAULT : 0;
            continue;
        }
        const bool rate = std::any_of(cd.ranked.begin(), cd.ranked.end(),
                                      [](const RuleRecord& r) { return r.action == ActionKind::rate_limit; });
        const bool logs = std::any_of(cd.ranked.begin(), cd.ranked.end(),
                                      [](const RuleRecord& r) { return r.log_rate != 0; });
        const int f = cd.decide_field;
        if (cd.small)
            out[d] = XDPCTL_PATH_SMALL | rate_path(rate);
        else if (f >= 0 && cd.n_classes[f] <= XDPCTL_POL_DECIDE_CLASSES)
            out[d] = XDPCTL_PATH_FIELD;  // drop and pass rules only (shapes.h)
        else
            out[d] = XDPCTL_PATH_TABLES | XDPCTL_PATH_RATE;  // as written_paths() reads it back
        out[d] |= log_path(logs) | (cd.edge ? XDPCTL_PATH_EDGE : 0);
    }
    return out;
}

uint32_t written_paths(const xdpctl_pol_dir_hdr& dh, const xdpctl_pol_small& small, bool logs, bool default_drop)
{
    if (!dh.n_rules)
        return default_drop ? XDPCTL_PATH_DEFAULT : 0;
    return shape_paths(dh, small) | log_path(logs) | (dh.decide & XDPCTL_POL_DECIDE_EDGE ? XDPCTL_PATH_EDGE : 0);
}


}  // namespace xdpctl::policy
