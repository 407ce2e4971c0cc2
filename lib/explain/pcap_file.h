// Classic pcap files (not pcapng): the global header in either byte order, microsecond or
// nanosecond timestamps, link type Ethernet only. Enough for `xdpctl explain --pcap`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace xdpctl::explain {

struct PcapPacket {
    size_t index = 0;          // 1-based, as tcpdump and wireshark number them
    uint64_t ts_ns = 0;        // capture time, ns since the epoch
    uint32_t orig_len = 0;     // length on the wire
    std::vector<uint8_t> data; // what was captured (orig_len bytes, or fewer when cut by snaplen)
};

// Reads the whole file. A usage error (naming the file, and the packet for a cut-off record)
// for a missing file, another format, another link type or a truncated file.
std::vector<PcapPacket> read_pcap(const std::string& path);

// Writes a classic microsecond pcap, link type Ethernet (for tests and for users' tools).
void write_pcap(const std::string& path, const std::vector<std::vector<uint8_t>>& frames);

}  // namespace xdpctl::explain
