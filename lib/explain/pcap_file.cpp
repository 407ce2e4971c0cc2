#include "explain/pcap_file.h"

#include <dlfcn.h>
#include <pcap/pcap.h>
#include <stdio.h>

#include <cstring>

#include "util/error.h"
#include "util/input_file.h"

namespace xdpctl::explain {

namespace {
constexpr uint64_t kNsecPerSec = 1000000000ull;

// libpcap is opened when a capture file is first read or written, not linked: with what it
// links (libdbus, libsystemd, libgcrypt, ...) loading it cost every xdpctl command ~1.5 ms
// of its start, where only `explain --pcap` and `trace --pcap` use it.
struct Libpcap {
    decltype(&::pcap_fopen_offline_with_tstamp_precision) fopen_offline_with_tstamp_precision;
    decltype(&::pcap_open_dead_with_tstamp_precision) open_dead_with_tstamp_precision;
    decltype(&::pcap_close) close;
    decltype(&::pcap_datalink) datalink;
    decltype(&::pcap_next_ex) next_ex;
    decltype(&::pcap_geterr) geterr;
    decltype(&::pcap_dump_open) dump_open;
    decltype(&::pcap_dump) dump;
    decltype(&::pcap_dump_flush) dump_flush;
    decltype(&::pcap_dump_close) dump_close;
};

constexpr const char* kLibpcap = "libpcap.so.0.8";  // the soname of libpcap 1.x

template <typename F>
void bind(void* lib, F& fn, const char* name)
{
    fn = reinterpret_cast<F>(dlsym(lib, name));
    if (!fn)
        fail("{} has no {}: {}", kLibpcap, name, dlerror());
}

const Libpcap& libpcap()
{
    static const Libpcap lib = [] {
        void* h = dlopen(kLibpcap, RTLD_NOW | RTLD_LOCAL);
        if (!h)
            fail("capture files need libpcap: {} ('apt install libpcap0.8')", dlerror());
        Libpcap l{};
        bind(h, l.fopen_offline_with_tstamp_precision, "pcap_fopen_offline_with_tstamp_precision");
        bind(h, l.open_dead_with_tstamp_precision, "pcap_open_dead_with_tstamp_precision");
        bind(h, l.close, "pcap_close");
        bind(h, l.datalink, "pcap_datalink");
        bind(h, l.next_ex, "pcap_next_ex");
        bind(h, l.geterr, "pcap_geterr");
        bind(h, l.dump_open, "pcap_dump_open");
        bind(h, l.dump, "pcap_dump");
        bind(h, l.dump_flush, "pcap_dump_flush");
        bind(h, l.dump_close, "pcap_dump_close");
        return l;
    }();
    return lib;
}
}  // namespace

std::vector<PcapPacket> read_pcap(const std::string& path)
{
    // read_input_file's limits first (a directory, /dev/zero, a huge file), then libpcap on
    // the bytes read, so the file is read once.
    std::string f = read_input_file(path, kPcapFile);
    const Libpcap& lib = libpcap();
    FILE* mem = fmemopen(f.data(), f.size(), "rb");
    if (!mem)
        fail("cannot read '{}' from memory: {}", path, errno_str(errno));
    char err[PCAP_ERRBUF_SIZE] = "";
    std::unique_ptr<pcap, void (*)(pcap*)> p(
        lib.fopen_offline_with_tstamp_precision(mem, PCAP_TSTAMP_PRECISION_NANO, err), lib.close);
    if (!p) {
        fclose(mem);
        if (f.size() < 24)
            fail_usage("--pcap '{}': {} bytes, shorter than a pcap file header (24)", path, f.size());
        fail_usage("--pcap '{}': not a pcap file ({})", path, err);
    }
    const int linktype = lib.datalink(p.get());
    if (linktype != DLT_EN10MB)
        fail_usage("--pcap '{}': link type {}, explain takes Ethernet (1) only", path, linktype);
    std::vector<PcapPacket> out;
    for (;;) {
        pcap_pkthdr* h = nullptr;
        const u_char* data = nullptr;
        const int r = lib.next_ex(p.get(), &h, &data);
        if (r == PCAP_ERROR_BREAK)
            break;
        const size_t n = out.size() + 1;
        if (r != 1)
            fail_usage("--pcap '{}': packet {} is cut off or damaged ({})", path, n, lib.geterr(p.get()));
        PcapPacket pk;
        pk.index = n;
        pk.ts_ns = uint64_t(h->ts.tv_sec) * kNsecPerSec + uint64_t(h->ts.tv_usec);  // ns precision asked
        pk.orig_len = h->len;
        pk.data.assign(data, data + h->caplen);
        out.push_back(std::move(pk));
    }
    return out;
}

PcapWriter::PcapWriter(const std::string& path, uint32_t snaplen) : path_(path)
{
    const Libpcap& lib = libpcap();
    pcap_ = lib.open_dead_with_tstamp_precision(DLT_EN10MB, int(snaplen), PCAP_TSTAMP_PRECISION_NANO);
    if (!pcap_)
        fail("cannot start a pcap for {}", path);
    dumper_ = lib.dump_open(pcap_, path.c_str());
    if (!dumper_) {
        std::string why = lib.geterr(pcap_);
        lib.close(pcap_);
        fail_usage("--pcap '{}': {}", path, why);
    }
}

PcapWriter::~PcapWriter()
{
    libpcap().dump_close(dumper_);
    libpcap().close(pcap_);
}

void PcapWriter::add(uint64_t ts_ns, uint32_t orig_len, const uint8_t* data, uint32_t caplen)
{
    pcap_pkthdr h{};
    h.ts.tv_sec = time_t(ts_ns / kNsecPerSec);
    h.ts.tv_usec = suseconds_t(ts_ns % kNsecPerSec);  // ns: the file's precision
    h.caplen = caplen;
    h.len = orig_len;
    libpcap().dump(reinterpret_cast<u_char*>(dumper_), &h, data);
}

void PcapWriter::flush()
{
    if (libpcap().dump_flush(dumper_) != 0)
        fail("cannot write {}: {}", path_, errno_str(errno));
}

void write_pcap(const std::string& path, const std::vector<std::vector<uint8_t>>& frames)
{
    PcapWriter w(path, 65535);
    uint64_t t = 1700000000;
    for (const auto& fr : frames)
        w.add(t++ * kNsecPerSec, uint32_t(fr.size()), fr.data(), uint32_t(fr.size()));
    w.flush();
}

}  // namespace xdpctl::explain
