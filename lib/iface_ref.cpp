#include "iface_ref.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include <net/if.h>

#include "error.h"

namespace fs = std::filesystem;

namespace xdpctl {

std::string IfaceRef::display() const
{
    return netns.empty() ? ifname : ifname + "@" + netns;
}

std::string IfaceRef::cli_args() const
{
    return netns.empty() ? ifname : "-n " + netns + " " + ifname;
}

std::string IfaceRef::pin_dir() const
{
    if (netns.empty())
        return std::string(kPinRoot) + "/if/" + ifname;
    return std::string(kPinRoot) + "/netns/" + netns + "/if/" + ifname;
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

std::vector<IfaceRef> pinned_ifaces()
{
    std::vector<IfaceRef> out;
    std::error_code ec;
    auto scan = [&](const fs::path& dir, const std::string& ns) {
        for (const auto& e : fs::directory_iterator(dir, ec))
            if (e.is_directory())
                out.push_back({ns, e.path().filename().string()});
    };
    scan(fs::path(kPinRoot) / "if", "");
    for (const auto& ns : fs::directory_iterator(fs::path(kPinRoot) / "netns", ec))
        scan(ns.path() / "if", ns.path().filename().string());
    std::sort(out.begin(), out.end(), [](const IfaceRef& a, const IfaceRef& b) {
        return std::tie(a.netns, a.ifname) < std::tie(b.netns, b.ifname);
    });
    return out;
}

}  // namespace xdpctl
