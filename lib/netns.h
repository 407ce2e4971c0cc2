// Enters a named network namespace (/run/netns/NAME, as `ip netns add` makes them) for the
// calling thread, and returns to the original one when the scope ends. Only the network
// namespace changes: the mount namespace, and so the host's bpffs with xdpctl's pins,
// stays (unlike `ip netns exec`, which remounts /sys and hides the host's bpffs).
#pragma once

#include <string>

namespace xdpctl {

class NetnsScope {
public:
    explicit NetnsScope(const std::string& name);  // empty name: stays where it is
    ~NetnsScope();
    NetnsScope(const NetnsScope&) = delete;
    NetnsScope& operator=(const NetnsScope&) = delete;

private:
    int orig_fd_ = -1;
};

bool netns_exists(const std::string& name);

}  // namespace xdpctl
