// Which interface xdpctl works on: a name, optionally inside a named network namespace
// (as `ip -n NAME`). Its pins are keyed by the namespace's identity (pin_layout.h).
#pragma once

#include <string>

namespace xdpctl {

inline constexpr const char* kBpffsRoot = "/sys/fs/bpf";
inline constexpr const char* kPinRoot = "/sys/fs/bpf/xdpctl";

struct IfaceRef {
    std::string netns;   // empty: the namespace xdpctl runs in
    std::string ifname;

    // "veth0" or "veth0@lab" — for messages and tables
    std::string display() const;
    // How to name it on xdpctl's command line: "veth0" or "-n lab veth0", for hints.
    std::string cli_args() const;
    bool operator==(const IfaceRef&) const = default;
};

// Checks a name the way the kernel does (dev_valid_name): throws a usage error if bad.
void validate_ifname(const std::string& name);
void validate_netns_name(const std::string& name);

// Pins under kPinRoot shared by all interfaces (rule and prefix maps live here).
std::string shared_maps_dir();

}  // namespace xdpctl
