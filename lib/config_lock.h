// The lock every command that changes xdpctl's configuration holds (/run/xdpctl.lock): policy
// commits, the load balancer's changes and loads, so that a load sets its programs' paths
// (datapath_paths.h) from a policy no commit changes under it.
#pragma once

#include "unique_fd.h"

namespace xdpctl {

// Waits for the lock and returns it; it goes with the fd (or the process). A process that
// holds it must not take it again (flock would wait for itself).
UniqueFd take_config_lock();

}  // namespace xdpctl
