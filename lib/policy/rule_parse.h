// Text -> policy model: CIDRs, rule options (the same words on the command line and in
// rule files), and whole rule files. Every error is a usage error naming the token.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/rule.h"

namespace xdpctl::policy {

// "198.18.0.0/15", "2001:2::/48", a bare address means /32 or /128. Host bits set is an
// error (the message shows the network it would be), not silently normalised: a typo in
// a drop rule should not widen or move it.
Prefix parse_prefix(std::string_view token);
std::string format_prefix(const Prefix& p);

// The line without its comment: a '#' at the start of a word (or of the line) starts one,
// so `set x#y` is the (invalid) name "x#y", not set `x` and a comment.
std::string_view strip_comment(std::string_view line);

// The set name grammar (docs/prefix-sets.md): 1-kMaxSetNameLen of [A-Za-z0-9_.-], starting
// with a letter or digit, so every name is one word of a rule file and `export` reads back.
// Throws a usage error quoting the name (control bytes escaped).
void validate_set_name(std::string_view name);
// `s` with control bytes and '\' as \xNN: user text quoted in a message stays on its line.
std::string printable(std::string_view s);

// Rule options, e.g. {"--src","198.18.0.0/15","--proto","tcp","--dport","80","--action","drop"}.
// Checks the rule on its own (ports need tcp/udp, families agree, ...). Set names are
// not resolved here: check_policy does that.
Rule parse_rule(const std::vector<std::string>& args);
// The canonical text of a rule's options (what export prints); parse_rule reads it back.
std::string format_rule(const Rule& r);

// The namespace an --iif rule records (--iif-netns, or -n when the rule is added): a
// namespace name that also survives a rule file's words. Throws a usage error.
void validate_iif_netns(const std::string& name);

// Whole-policy checks: sets exist, ids unique, limits. Throws a usage error. A set for which
// `checked` is true has its entries taken as checked (a commit's, unchanged since).
void check_policy(const Policy& p, const std::function<bool(const PrefixSet&)>& checked = {});
// A rule being added or changed: its addresses (prefixes, or the sets of `p` it names) share
// an IP family, and an ICMP/ICMPv6 protocol fits it; a usage error naming them otherwise. Not
// part of check_policy: a rule stored before (or a set changed since) that can no longer
// match is harmless and must not block every later commit.
void check_rule_can_match(const Policy& p, const Rule& r);

// A statement of a rule file that another part owns (`lb ...`, read by ctl/cmd_lb.cpp into
// its own model), so Policy holds no types of theirs. `parse` gets the words after the
// keyword and throws a usage error; the parser adds the file and line.
struct ExtraStatement {
    std::string keyword;
    std::function<void(const std::vector<std::string>& args)> parse;
};

// A rule file: one statement a line, '#' comments, blank lines ignored:
//   default pass|drop
//   set NAME [CIDR|!CIDR ...]
//   rule OPTIONS...
//   KEYWORD ...   (one of `extra`)
// Errors name the file and line. Nothing is returned unless the whole file is good.
Policy parse_policy_text(std::string_view text, const std::string& source_name,
                         const std::vector<ExtraStatement>& extra = {});
Policy parse_policy_file(const std::string& path, const std::vector<ExtraStatement>& extra = {});
std::string format_policy(const Policy& p);

std::string action_name(ActionKind a);
std::string proto_name(uint8_t proto);  // "tcp", "udp", "icmp", "icmpv6" or the number

}  // namespace xdpctl::policy
