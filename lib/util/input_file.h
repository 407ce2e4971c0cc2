// Reading a file the user names (an apply file, a prefix file, a pcap) with limits: a
// directory, a device that never ends (/dev/zero) or a binary file is a usage error naming
// the file (and the line), not an empty policy or memory that grows without bound.
#pragma once

#include <cstddef>
#include <string>

namespace xdpctl {

struct InputLimits {
    const char* what;        // "rule file", "prefix file", "pcap file": named in errors
    size_t max_bytes;        // a larger file is refused
    size_t max_line = 0;     // text files: the longest line; 0: a binary file (no line checks)
};

// The limits docs/cli.md ("Input limits") states. A 1,000,000-prefix set as a prefix file
// is ~20-45 MB and as `set` lines of an export ~50 MB; a 10,000-rule file with VIPs ~3 MB.
inline constexpr size_t kMaxTextFileBytes = size_t(256) << 20;
inline constexpr size_t kMaxPcapFileBytes = size_t(256) << 20;
inline constexpr size_t kMaxRuleLine = 64 * 1024;   // a `set NAME CIDR...` line holds many
inline constexpr size_t kMaxPrefixLine = 4 * 1024;  // one CIDR and a comment

inline constexpr InputLimits kRuleFile{"rule file", kMaxTextFileBytes, kMaxRuleLine};
inline constexpr InputLimits kPrefixFile{"prefix file", kMaxTextFileBytes, kMaxPrefixLine};
inline constexpr InputLimits kPcapFile{"pcap file", kMaxPcapFileBytes, 0};

// The whole file. Usage errors (exit 2) for: a file that cannot be opened or read (with the
// reason: "Is a directory"), one over max_bytes, and for text files a NUL byte or a line
// over max_line (naming FILE:LINE).
std::string read_input_file(const std::string& path, const InputLimits& limits);

}  // namespace xdpctl
