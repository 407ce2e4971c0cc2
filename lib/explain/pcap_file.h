// Capture files through libpcap: reading what `xdpctl explain --pcap` takes (classic pcap in
// either byte order and timestamp precision, or pcapng; link type Ethernet), and writing the
// classic pcap `xdpctl trace --pcap` and the tests make.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct pcap;
struct pcap_dumper;

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

// A classic pcap being written (link type Ethernet, ns timestamps): each packet goes to the
// file as it is added, flush() makes what was added readable by another process.
class PcapWriter {
public:
    PcapWriter(const std::string& path, uint32_t snaplen);
    ~PcapWriter();
    PcapWriter(const PcapWriter&) = delete;
    PcapWriter& operator=(const PcapWriter&) = delete;
    void add(uint64_t ts_ns, uint32_t orig_len, const uint8_t* data, uint32_t caplen);
    void flush();

private:
    std::string path_;
    pcap* pcap_ = nullptr;
    pcap_dumper* dumper_ = nullptr;
};

// Writes whole frames (for tests and for users' tools), one second apart.
void write_pcap(const std::string& path, const std::vector<std::vector<uint8_t>>& frames);

}  // namespace xdpctl::explain
