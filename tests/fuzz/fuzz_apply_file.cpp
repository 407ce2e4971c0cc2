// An `apply` file (the format `export` prints): refused with an Error naming the line, or
// parsed into a policy whose export text reads back to the same export text (export lists
// rules by id, a file in any order). check_policy (what a commit checks of it) may refuse
// it, with an Error only.
#include "util/error.h"
#include "fuzz_input.h"
#include "policy/rule_parse.h"

using namespace xdpctl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    policy::Policy p;
    try {
        p = policy::parse_policy_text(fuzz::as_text(data, size), "fuzz");
    } catch (const Error&) {
        return 0;
    }
    try {
        policy::check_policy(p);
    } catch (const Error&) {
    }
    const std::string exported = policy::format_policy(p);
    policy::Policy again;
    try {
        again = policy::parse_policy_text(exported, "export");
    } catch (const Error&) {
        fuzz::require(false, "a parsed policy's export is refused");
    }
    fuzz::require(policy::format_policy(again) == exported, "a policy's export reads back as another");
    return 0;
}
