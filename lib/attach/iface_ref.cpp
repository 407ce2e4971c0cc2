#include "attach/iface_ref.h"

#include <net/if.h>

#include "util/error.h"

namespace xdpctl {

std::string IfaceRef::display() const
{
    return netns.empty() ? ifname : ifname + "@" + netns;
}

std::string IfaceRef::cli_args() const
{
    return netns.empty() ? ifname : "-n " + netns + " " + ifname;
}

std::string shared_maps_dir()
{
    return std::string(kPinRoot) + "/maps";
}

void validate_ifname(const std::string& name)
{
    if (name.empty() || name.size() >= IFNAMSIZ || name == "." || name == ".." ||
        name.find_first_of("/: \t\n") != std::string::npos)
        fail_usage("'{}' is not a valid interface name (1-{} characters, no '/', ':' or spaces)",
                   name, IFNAMSIZ - 1);
}

void validate_netns_name(const std::string& name)
{
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
        fail_usage("'{}' is not a valid network namespace name", name);
}

}  // namespace xdpctl
