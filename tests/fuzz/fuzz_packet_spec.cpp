// explain's packet ('tcp 198.18.0.2:1234 -> 198.19.0.1:80 vlan 10 ...'): refused with an
// Error, or parsed into a spec from which a frame is built.
#include "util/error.h"
#include "explain/packet_spec.h"
#include "fuzz_input.h"

using namespace xdpctl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    try {
        const explain::PacketSpec spec = explain::parse_packet_spec(fuzz::words(fuzz::as_text(data, size)));
        fuzz::require(!explain::build_frame(spec).empty(), "an empty frame");
    } catch (const Error&) {
    }
    return 0;
}
