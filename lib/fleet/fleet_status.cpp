#include "fleet/fleet_status.h"

#include <stdexcept>

namespace xdpctl::fleet {

nlohmann::json to_json(const FleetStatus& s)
{
    return {{"host", s.host},   {"applied_revision", s.applied_revision},
            {"tried_revision", s.tried_revision}, {"error", s.error},
            {"time", s.time},   {"version", s.version}};
}

std::string to_json_text(const FleetStatus& s)
{
    return to_json(s).dump();
}

namespace {
template <typename T>
T field(const nlohmann::json& j, const char* name, bool (nlohmann::json::*is)() const noexcept, const char* type)
{
    auto it = j.find(name);
    if (it == j.end())
        throw std::runtime_error(std::string("no \"") + name + "\"");
    if (!((*it).*is)())
        throw std::runtime_error(std::string("\"") + name + "\" is not " + type);
    return it->get<T>();
}
}  // namespace

FleetStatus status_from_json(const nlohmann::json& j)
{
    if (!j.is_object())
        throw std::runtime_error("not a JSON object");
    FleetStatus s;
    s.host = field<std::string>(j, "host", &nlohmann::json::is_string, "a string");
    s.applied_revision = field<int64_t>(j, "applied_revision", &nlohmann::json::is_number_integer, "an integer");
    s.tried_revision = field<int64_t>(j, "tried_revision", &nlohmann::json::is_number_integer, "an integer");
    s.error = field<std::string>(j, "error", &nlohmann::json::is_string, "a string");
    s.time = field<double>(j, "time", &nlohmann::json::is_number, "a number");
    s.version = field<std::string>(j, "version", &nlohmann::json::is_string, "a string");
    return s;
}

FleetStatus status_from_json_text(const std::string& text)
{
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded())
        throw std::runtime_error("not JSON");
    return status_from_json(j);
}

}  // namespace xdpctl::fleet
