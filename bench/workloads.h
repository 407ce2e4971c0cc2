// The workloads the benchmarks share, so that the micro benchmarks, the prefix benchmark and
// scripts/bench.sh (through xdpctl-benchgen) measure the same policies and sets:
//   rule_mix     issue 4's rule mix (70% /32 source + destination port, 20% source prefixes
//                /8 to /30, 10% destination port ranges; random priorities)
//   bgp_like4    an IPv4 table shaped like a BGP table (mostly /24, /8 to /32)
//   random_hosts4  random /32s over all of IPv4 (the worst case for prefix tables)
//   real_like6   an IPv6 table shaped like a real one
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "policy/rule.h"
#include "policy/prefix_table.h"

namespace xdpctl::bench {

// Rule ids 1..n, priorities 0-999, 3 in 4 drop and the rest pass, drawn from `rng` (the
// micro benchmark goes on drawing its frames from it). With `drop_src`, every rule whose
// source prefix holds that address (host order) drops: traffic from it meets a drop
// whichever of them it meets first.
policy::Policy rule_mix(size_t n, std::mt19937_64& rng, std::optional<uint32_t> drop_src = std::nullopt);

// The prefix of `len` bits holding `addr` (host order).
policy::Prefix prefix4(uint32_t addr, unsigned len);

// n distinct IPv4 prefixes over unicast space (1.0.0.0-223.255.255.255), lengths as a 2024
// BGP table has them (~60% /24), values 1..100000.
std::vector<PrefixEntry4> bgp_like4(size_t n, uint64_t seed);
// n distinct /32s drawn uniformly from unicast IPv4: no two share much of a table.
std::vector<PrefixEntry4> random_hosts4(size_t n, uint64_t seed);

// n distinct IPv6 prefixes: allocations (/19-/32) over 2000::/3 and longer prefixes mostly
// nested in them.
std::vector<PrefixEntry6> real_like6(size_t n, uint64_t seed);

}  // namespace xdpctl::bench
