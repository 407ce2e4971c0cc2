#include "fleet/fleet_keys.h"

#include <algorithm>

#include "util/error.h"

namespace xdpctl::fleet {

namespace {
void validate_component(const char* what, const std::string& s)
{
    auto ok = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '_' || c == '-';
    };
    if (s.empty() || s.size() > 128 || s == "." || s == ".." || !std::all_of(s.begin(), s.end(), ok))
        fail_usage("{} '{}': expected 1-128 characters of A-Z a-z 0-9 . _ - (not '.' or '..')", what, s);
}
}  // namespace

void validate_fleet_name(const std::string& name)
{
    validate_component("fleet name", name);
}

void validate_host_id(const std::string& id)
{
    validate_component("host id", id);
}

std::string fleet_prefix(const std::string& fleet)
{
    return "/xdpctl/fleet/" + fleet + "/";
}

std::string config_key(const std::string& fleet)
{
    return fleet_prefix(fleet) + "config";
}

std::string status_prefix(const std::string& fleet)
{
    return fleet_prefix(fleet) + "status/";
}

std::string status_key(const std::string& fleet, const std::string& host)
{
    return status_prefix(fleet) + host;
}

std::string host_of_status_key(const std::string& fleet, const std::string& key)
{
    const std::string p = status_prefix(fleet);
    if (key.size() <= p.size() || key.compare(0, p.size(), p) != 0)
        return "";
    std::string host = key.substr(p.size());
    return host.find('/') == std::string::npos ? host : "";
}

}  // namespace xdpctl::fleet
