// `rule add`'s options (the rule grammar): refused with an Error or parsed into a rule that
// prints back (format_rule) to itself.
#include "util/error.h"
#include "fuzz_input.h"
#include "policy/rule_parse.h"

using namespace xdpctl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    policy::Rule r;
    try {
        r = policy::parse_rule(fuzz::words(fuzz::as_text(data, size)));
    } catch (const Error&) {
        return 0;
    }
    const std::string text = policy::format_rule(r);
    policy::Rule again;
    try {
        again = policy::parse_rule(fuzz::words(text));
    } catch (const Error& e) {
        fuzz::require(false, "a parsed rule's text is refused");
    }
    fuzz::require(again == r, "a parsed rule's text parses to another rule");
    return 0;
}
