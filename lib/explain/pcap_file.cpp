#include "explain/pcap_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "util/error.h"
#include "util/input_file.h"

namespace xdpctl::explain {

namespace {

constexpr uint32_t kMagicUsec = 0xa1b2c3d4;
constexpr uint32_t kMagicNsec = 0xa1b23c4d;
constexpr uint32_t kMagicPcapng = 0x0a0d0d0a;
constexpr uint32_t kLinktypeEthernet = 1;
constexpr size_t kGlobalHeader = 24, kRecordHeader = 16;
// No Ethernet frame a test run takes comes near this; a larger length is a corrupt file.
constexpr uint32_t kMaxRecord = 256 * 1024;

uint32_t swap32(uint32_t v)
{
    return __builtin_bswap32(v);
}

uint32_t read32(const uint8_t* p, bool swapped)
{
    uint32_t v;
    std::memcpy(&v, p, 4);
    return swapped ? swap32(v) : v;
}

}  // namespace

std::vector<PcapPacket> read_pcap(const std::string& path)
{
    const std::string f = read_input_file(path, kPcapFile);
    if (f.size() < kGlobalHeader)
        fail_usage("--pcap '{}': {} bytes, shorter than a pcap file header (24)", path, f.size());
    const auto* bytes = reinterpret_cast<const uint8_t*>(f.data());
    uint32_t magic = read32(bytes, false);
    bool swapped = false, nsec = false;
    if (magic == kMagicUsec || magic == kMagicNsec) {
        nsec = magic == kMagicNsec;
    } else if (swap32(magic) == kMagicUsec || swap32(magic) == kMagicNsec) {
        swapped = true;
        nsec = swap32(magic) == kMagicNsec;
    } else if (magic == kMagicPcapng) {
        fail_usage("--pcap '{}': a pcapng file; explain reads classic pcap (convert it with "
                   "'tcpdump -r {} -w OUT.pcap')",
                   path, path);
    } else {
        fail_usage("--pcap '{}': not a pcap file (magic {:#010x})", path, magic);
    }
    uint32_t linktype = read32(bytes + 20, swapped) & 0x0fffffff;  // high bits: FCS info
    if (linktype != kLinktypeEthernet)
        fail_usage("--pcap '{}': link type {}, explain takes Ethernet (1) only", path, linktype);

    std::vector<PcapPacket> out;
    size_t off = kGlobalHeader;
    while (off < f.size()) {
        size_t n = out.size() + 1;
        if (f.size() - off < kRecordHeader)
            fail_usage("--pcap '{}': packet {} is cut off in its record header (file truncated)",
                       path, n);
        const uint8_t* h = bytes + off;
        uint32_t sec = read32(h, swapped), frac = read32(h + 4, swapped);
        uint32_t incl = read32(h + 8, swapped), orig = read32(h + 12, swapped);
        if (incl > kMaxRecord)
            fail_usage("--pcap '{}': packet {} claims {} bytes: a corrupt file", path, n, incl);
        off += kRecordHeader;
        if (f.size() - off < incl)
            fail_usage("--pcap '{}': packet {} is cut off ({} of {} bytes; file truncated)", path,
                       n, f.size() - off, incl);
        PcapPacket p;
        p.index = n;
        p.ts_ns = uint64_t(sec) * 1000000000ull + (nsec ? frac : uint64_t(frac) * 1000);
        p.orig_len = orig;
        p.data.assign(bytes + off, bytes + off + incl);
        out.push_back(std::move(p));
        off += incl;
    }
    return out;
}

void write_pcap(const std::string& path, const std::vector<std::vector<uint8_t>>& frames)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out)
        fail("cannot write {}: {}", path, std::strerror(errno));
    auto put32 = [&](uint32_t v) { out.write(reinterpret_cast<const char*>(&v), 4); };
    auto put16 = [&](uint16_t v) { out.write(reinterpret_cast<const char*>(&v), 2); };
    put32(kMagicUsec);
    put16(2);
    put16(4);
    put32(0);        // thiszone
    put32(0);        // sigfigs
    put32(65535);    // snaplen
    put32(kLinktypeEthernet);
    uint32_t t = 0;
    for (const auto& fr : frames) {
        put32(1700000000 + t++);
        put32(0);
        put32(uint32_t(fr.size()));
        put32(uint32_t(fr.size()));
        out.write(reinterpret_cast<const char*>(fr.data()), std::streamsize(fr.size()));
    }
    if (!out)
        fail("cannot write {}", path);
}

}  // namespace xdpctl::explain
