// `explain --pcap FILE`: refused with an Error, or read into packets that all lie within the
// file. Not "the whole file": libpcap cuts a record longer than the header's snaplen to it, and
// pcapng blocks carry more than 16 bytes each. The input is handed over as a file (a memfd),
// as read_pcap reads one.
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "util/error.h"
#include "explain/pcap_file.h"
#include "fuzz_input.h"

using namespace xdpctl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    static const int fd = memfd_create("fuzz_pcap", MFD_CLOEXEC);
    static const std::string path = "/proc/self/fd/" + std::to_string(fd);
    fuzz::require(fd >= 0 && ftruncate(fd, 0) == 0 &&
                      pwrite(fd, data, size, 0) == static_cast<ssize_t>(size),
                  "the memfd takes the input");
    try {
        size_t bytes = 0;
        for (const auto& p : explain::read_pcap(path))
            bytes += p.data.size() + 16;
        fuzz::require(bytes + 24 <= size, "the packets read are more than the file");
    } catch (const Error&) {
    }
    return 0;
}
