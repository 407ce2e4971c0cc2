// xdpctl-benchgen: the benchmark workloads of bench/workloads.h as text, for scripts/bench.sh
// (which loads them with `xdpctl apply` and `xdpctl set load`):
//
//   xdpctl-benchgen rules N [--seed S] [--drop-src ADDR]   N rules of the issue-4 mix, as
//                                                         `rule ...` lines of a policy file
//   xdpctl-benchgen prefixes N [--seed S]                 N BGP-like IPv4 prefixes, one a line
//   xdpctl-benchgen hosts N [--seed S]                    N distinct random IPv4 /32s over the
//                                                         whole space (a worst case for tables)
//
// The same seed gives the same output. Bad arguments: a message naming them, exit code 2.
#include <arpa/inet.h>

#include <charconv>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "util/error.h"
#include "policy/rule.h"
#include "policy/rule_parse.h"
#include "workloads.h"

using namespace xdpctl;

namespace {

constexpr const char* kUsage =
    "usage: xdpctl-benchgen rules N [--seed S] [--drop-src IPV4]\n"
    "       xdpctl-benchgen prefixes N [--seed S]\n"
    "       xdpctl-benchgen hosts N [--seed S]\n";

uint64_t parse_count(std::string_view opt, std::string_view tok, uint64_t max)
{
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
    if (ec != std::errc{} || p != tok.data() + tok.size() || tok.empty() || v > max)
        fail_usage("{} '{}': expected a number 0-{}", opt, tok, max);
    return v;
}

int run(const std::vector<std::string_view>& args)
{
    if (args.size() < 2)
        fail_usage("expected a kind (rules, prefixes, hosts) and a count");
    const std::string_view kind = args[0];
    if (kind != "rules" && kind != "prefixes" && kind != "hosts")
        fail_usage("unknown kind '{}' (rules, prefixes, hosts)", kind);
    // A direction holds at most kMaxRulesPerDirection rules; 16M prefixes is past any table.
    const uint64_t n = parse_count(kind, args[1], kind == "rules" ? policy::kMaxRulesPerDirection : 16u << 20);
    uint64_t seed = 1;
    std::optional<uint32_t> drop_src;
    for (size_t i = 2; i < args.size(); i++) {
        const std::string_view opt = args[i];
        if (i + 1 >= args.size())
            fail_usage("{} needs a value", opt);
        const std::string_view val = args[++i];
        if (opt == "--seed") {
            seed = parse_count(opt, val, UINT64_MAX);
        } else if (opt == "--drop-src" && kind == "rules") {
            in_addr a{};
            if (inet_pton(AF_INET, std::string(val).c_str(), &a) != 1)
                fail_usage("--drop-src '{}': expected an IPv4 address", val);
            drop_src = ntohl(a.s_addr);
        } else {
            fail_usage("unknown option '{}' for {}", opt, kind);
        }
    }
    if (kind == "rules") {
        std::mt19937_64 rng(seed);
        for (const auto& r : bench::rule_mix(n, rng, drop_src).rules)
            fmt::print("rule {}\n", policy::format_rule(r));
    } else if (kind == "hosts") {
        for (const auto& e : bench::random_hosts4(n, seed))
            fmt::print("{}\n", to_string(e.prefix));
    } else {
        for (const auto& e : bench::bgp_like4(n, seed))
            fmt::print("{}\n", to_string(e.prefix));
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv)
{
    try {
        return run(std::vector<std::string_view>(argv + 1, argv + argc));
    } catch (const Error& e) {
        std::fprintf(stderr, "xdpctl-benchgen: %s\n%s", e.what(), kUsage);
        return int(e.code());
    }
}
