// The etcd keys of a fleet (issue 15, docs/fleet.md):
//   /xdpctl/fleet/NAME/config          the export/apply file text, put by `xdpctl fleet push`
//   /xdpctl/fleet/NAME/status/HOSTID   each xdpd's last attempt (fleet_status.h)
#pragma once

#include <string>

namespace xdpctl::fleet {

// A fleet name or host id: 1-128 of [A-Za-z0-9._-], not "." or "..": one key component, so
// that a status prefix never takes another fleet's keys in. Throws a usage error naming it.
void validate_fleet_name(const std::string& name);
void validate_host_id(const std::string& id);

std::string fleet_prefix(const std::string& fleet);        // "/xdpctl/fleet/NAME/"
std::string config_key(const std::string& fleet);          // ".../config"
std::string status_prefix(const std::string& fleet);       // ".../status/"
std::string status_key(const std::string& fleet, const std::string& host);  // ".../status/HOST"
// The host id of a key under status_prefix(fleet); empty if it is not one.
std::string host_of_status_key(const std::string& fleet, const std::string& key);

}  // namespace xdpctl::fleet
