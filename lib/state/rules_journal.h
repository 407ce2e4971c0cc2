// The rules' journal (policy.GEN.log beside the rules file policy.GEN): the `rule add` and
// `rule del` commits since the rules file was written, so that adding a rule next to 10,000
// others appends ~80 bytes instead of re-encoding and rewriting ~500 KB (docs/service.md,
// "State directory").
//
// A record is a splice: keep the first `at` rules, drop the `removed` after them, put the
// record's rules there, keep the rest; the default action is the record's. Bytes: "XRJ1",
// the body's length (u32), the generation that wrote it (u64), at (u32), removed (u32), the
// body (the policy image of policy_binary.h holding the inserted rules and the default
// action, no sets), then a checksum64 of everything before it in the record; little-endian.
// As with a set's journal, the manifest counts the bytes that belong to its generation: a
// record a killed writer appended past them is never read and is cut off by the next append.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "policy/rule.h"

namespace xdpctl::state {

// A commit that changed the rules of `before` in one place: rules [at, at + removed) of
// `before` are replaced by rules [at, at + inserted) of the committed policy.
struct RulesSplice {
    uint64_t before_key = 0;  // rules_key(before)
    size_t before_size = 0;   // before.rules.size()
    size_t at = 0, removed = 0, inserted = 0;
};

// A key of the rules and the default action (sets not included), from their fields: whether
// the directory records exactly a given policy's rules, without encoding them (~0.1 ms at
// 10,000 rules, where encoding and checksumming the image took ~2.5).
uint64_t rules_key(const policy::Policy& p);

// The record of `s` for the committed policy `after` (its default action and inserted rules).
std::string encode_rules_record(uint64_t generation, const RulesSplice& s, const policy::Policy& after);

// Applies the whole records at the start of `bytes` to `p`'s rules and default action, in
// order, and returns how many bytes they took: a record cut short, failing its checksum or
// not fitting the rules ends it. `source` names the file in an error.
size_t replay_rules_journal(policy::Policy& p, std::string_view bytes, const std::string& source);

}  // namespace xdpctl::state
