#include "state/state_record.h"

#include <cstdio>
#include <cstdlib>

#include <fmt/core.h>

#include "error.h"
#include "lb/lb_config.h"
#include "lb/lb_maps.h"
#include "state/state_dir.h"

namespace xdpctl::state {

namespace {
std::string g_dir;
int g_paused = 0;
bool g_failed = false;

bool recording()
{
    return !g_dir.empty() && g_paused == 0;
}

// The commit is in force whatever happens here: say that first.
template <typename F>
void record(const char* what, F&& write)
{
    if (!recording())
        return;
    try {
        write(StateDir(g_dir));
    } catch (const std::exception& e) {
        throw Error(ExitCode::runtime,
                    fmt::format("{} is in force, but the state directory was not updated ({}): "
                                "'xdpctl restore' after a reboot would not re-create it",
                                what, e.what()));
    }
}
}  // namespace

std::string default_state_dir()
{
    const char* env = std::getenv(kStateDirEnv);
    return env && *env ? env : kDefaultStateDir;
}

void set_state_dir(const std::string& dir)
{
    g_dir = dir;
}

const std::string& state_dir()
{
    return g_dir;
}

PauseRecording::PauseRecording()
{
    g_paused++;
}

PauseRecording::~PauseRecording()
{
    g_paused--;
}

void policy_committed(const policy::Policy& p)
{
    record("the policy", [&](StateDir d) { d.save_policy(p); });
}

void lb_changed(const lb::LbMaps& maps) noexcept
{
    try {
        record("the load-balancer change", [&](StateDir d) { d.save_lb(lb::read_lb_config(maps)); });
    } catch (const std::exception& e) {
        fmt::print(stderr, "xdpctl: {}\n", e.what());
        g_failed = true;
    }
}

void iface_loaded(const LoadOptions& opts, const LoadResult& r)
{
    record("the load", [&](StateDir d) {
        d.save_iface({opts.iface, r.meta.hooks, r.meta.xdp_mode, r.meta.tc_attach, r.meta.malformed},
                     opts.lb_conntrack);
    });
}

void iface_unloaded(const IfaceRef& iface)
{
    record("the unload", [&](StateDir d) { d.forget_iface(iface); });
}

void all_unloaded()
{
    record("the unload", [](StateDir d) { d.clear(); });
}

bool record_failed()
{
    return g_failed;
}

}  // namespace xdpctl::state
