#include "service/systemd_notify.h"

#include <systemd/sd-daemon.h>

#include "util/error.h"
#include "service/log.h"

namespace xdpctl::service {

void notify_systemd(const std::string& state)
{
    // 0: NOTIFY_SOCKET is not set. Kept in the environment (unset_environment 0): nothing
    // xdpd starts is a service of its own.
    if (int r = sd_notify(0, state.c_str()); r < 0)
        log(LogLevel::warning, "sd_notify({}): {}", state, errno_str(r));
}

}  // namespace xdpctl::service
