// xdpd's fleet settings (issue 15, docs/fleet.md): which etcd members, which fleet, which host
// this is, and etcd's TLS client files. From the command line (--etcd, --fleet, --host,
// --etcd-cacert, --etcd-cert, --etcd-key) or xdpd.conf's keys of the same names; an option
// given wins over the file. No fleet named: xdpd follows none.
#pragma once

#include <string>
#include <vector>

namespace xdpctl::service {

struct FleetConfig {
    std::vector<std::string> etcd;  // member URLs, tried in order
    std::string fleet;              // "" = no fleet
    std::string host;               // "" = the hostname
    std::string cacert, cert, key;  // files; "" = not given
    bool operator==(const FleetConfig&) const = default;
};

// One configuration-file key: true when `key` is one of the fleet's (then `value` is taken
// or a usage error names `where`, "PATH:LINE"), false when it is not.
bool parse_fleet_key(FleetConfig& c, const std::string& key, const std::string& value,
                     const std::string& where);
// "URL[,URL...]" into `c.etcd`; a usage error naming the URL that is not http:// or https://.
void parse_etcd_urls(FleetConfig& c, const std::string& text);
// The file's settings with the command line's over them (a field given there wins).
FleetConfig merge_fleet_config(const FleetConfig& file, const FleetConfig& cli);
// A fleet needs etcd members and the reverse; TLS files only with https. Usage errors.
void check_fleet_config(const FleetConfig& c);
// The TLS files given can be read (a usage error naming the option and file otherwise): at
// start, not at the first connection, so that a typo stops xdpd instead of a silent fleet.
void check_fleet_files(const FleetConfig& c);

}  // namespace xdpctl::service
