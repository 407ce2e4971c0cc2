// sd_notify(3) for Type=notify units: "READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...".
// Does nothing when NOTIFY_SOCKET is not set (xdpd not started by systemd).
#pragma once

#include <string>

namespace xdpctl::service {

void notify_systemd(const std::string& state);

}  // namespace xdpctl::service
