// The load balancer's configuration and the interface records as the state manifest holds
// them (JSON, docs/service.md). Read back only by the xdpctl that wrote them, or a later one.
#pragma once

#include <nlohmann/json.hpp>

#include "lb/lb_config.h"
#include "state/state_dir.h"

namespace xdpctl::state {

nlohmann::json lb_to_json(const lb::LbConfig& c);
// A health check (null: none), as the manifest and `lb list --json` show it; the reader
// checks it as the command line does.
nlohmann::json check_to_json(const std::optional<lb::CheckSpec>& c);
std::optional<lb::CheckSpec> check_from_json(const nlohmann::json& j);
// Throws naming `source` (the manifest's path) and the entry that is damaged.
lb::LbConfig lb_from_json(const nlohmann::json& j, const std::string& source);

nlohmann::json iface_to_json(const IfaceRecord& r);
IfaceRecord iface_from_json(const nlohmann::json& j, const std::string& source);

nlohmann::json decap_to_json(const DecapRecord& r);
DecapRecord decap_from_json(const nlohmann::json& j, const std::string& source);

}  // namespace xdpctl::state
