// The committed policy as stored in the pinned xdpctl_psrc map: a compact binary image of
// the Policy. Every policy command reads it back before it changes and commits: decoding a
// binary image of 10,000 rules takes well under a millisecond, where re-parsing the same
// policy as text took ~20 ms and a 1,000,000-prefix set as text ~1 s.
#pragma once

#include <string>
#include <string_view>

#include "policy/rule.h"

namespace xdpctl::policy {

// Starts every binary image; a stored policy without it is text from an older xdpctl
// (read with parse_policy_text, so an upgrade keeps the policy). Version 2 adds to each
// rule its --iif namespace, the --iif-pending flag and the ifindex its name resolved to;
// version 1 images (the release before) still decode, as rules without these.
inline constexpr std::string_view kPolicyImageMagic{"XDPCTLP2", 8};
inline constexpr std::string_view kPolicyImageMagicV1{"XDPCTLP1", 8};

// `resolved`: the committed ifindex of each --iif rule (by id); none given stores 0s.
std::string encode_policy(const Policy& p, const IifIndexes& resolved = {});
// The image of `p` without its sets (the rules and the default action): the state
// directory's rules file, encoded without copying the rules into a policy of their own.
std::string encode_policy_rules(const Policy& p);
// Throws Error naming `source` when the image is cut short or malformed. The policy is
// taken as stored: it was checked when committed. `resolved`, when given, gets the
// ifindex of each --iif rule as stored (none from a version 1 image).
Policy decode_policy(std::string_view image, const std::string& source, IifIndexes* resolved = nullptr);
bool is_policy_image(std::string_view stored);

}  // namespace xdpctl::policy
