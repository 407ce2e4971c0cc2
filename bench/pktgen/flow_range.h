// The ranges xdpctl-pktgen spreads its flows over: addresses as CIDR, "A-B" or one address,
// ports as "N-M" or one port. Parsing errors are usage errors that name the bad argument.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace xdpctl::pktgen {

struct AddrRange {
    bool ipv6 = false;
    std::array<uint8_t, 16> base{};  // IPv4 in the first 4 bytes
    uint64_t count = 1;              // up to 2^32: only the last 32 bits vary

    // The last 32 bits of base, host order: what the frame writer adds its offset to.
    uint32_t low32() const;
    std::string str() const;  // "198.18.0.0/24", "2001:2::1-2001:2::9" or one address
};

struct PortRange {
    uint16_t first = 0;
    uint32_t count = 1;  // up to 65536

    std::string str() const;
};

// `what` names the option in error messages ("--src").
AddrRange parse_addr_range(const std::string& text, const char* what);
PortRange parse_port_range(const std::string& text, const char* what);

// True when every address of r is in 198.18.0.0/15 or 2001:2::/48 (RFC 2544, RFC 5180).
bool in_benchmark_ranges(const AddrRange& r);

}  // namespace xdpctl::pktgen
