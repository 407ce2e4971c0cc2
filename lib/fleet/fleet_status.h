// What each xdpd writes to /xdpctl/fleet/NAME/status/HOSTID after every attempt to apply a
// revision of the fleet's config, and `xdpctl fleet status` reads back:
//   {"host", "applied_revision", "tried_revision", "error", "time" (unix seconds, float), "version"}
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace xdpctl::fleet {

struct FleetStatus {
    std::string host;
    int64_t applied_revision = 0;  // the config revision in force (0: none yet)
    int64_t tried_revision = 0;    // the last one attempted (== applied unless refused)
    std::string error;             // why tried_revision was refused; empty when it was applied
    double time = 0;               // when, unix seconds
    std::string version;           // xdpctl version of that xdpd

    // Whether `revision` was refused: tried, not applied, with an error.
    bool refused(int64_t revision) const
    {
        return tried_revision >= revision && applied_revision < revision && !error.empty();
    }
    bool operator==(const FleetStatus&) const = default;
};

nlohmann::json to_json(const FleetStatus& s);
std::string to_json_text(const FleetStatus& s);
// Throws std::runtime_error naming the field that is missing or of the wrong type.
FleetStatus status_from_json(const nlohmann::json& j);
FleetStatus status_from_json_text(const std::string& text);

}  // namespace xdpctl::fleet
