// The stored policy image (policy_binary.h) as read back from the pinned map: refused with
// an Error, or decoded into a policy that encodes and decodes to itself.
#include "util/error.h"
#include "fuzz_input.h"
#include "policy/policy_binary.h"

using namespace xdpctl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    policy::Policy p;
    policy::IifIndexes resolved;
    try {
        p = policy::decode_policy(fuzz::as_text(data, size), "fuzz", &resolved);
    } catch (const Error&) {
        return 0;
    }
    policy::IifIndexes resolved_again;
    policy::Policy again;
    try {
        again = policy::decode_policy(policy::encode_policy(p, resolved), "encoded", &resolved_again);
    } catch (const Error&) {
        fuzz::require(false, "a decoded policy's image is refused");
    }
    fuzz::require(again == p, "a decoded policy's image decodes to another policy");
    return 0;
}
