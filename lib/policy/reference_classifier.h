// The plain reference classifier: first match over the rules in (priority, id) order,
// written straight from the matching rules in docs/filtering.md and independent of the
// compiled datapath. Tests compare the BPF program against it.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "policy/rule.h"

namespace xdpctl::policy {

// What the classifier sees of a packet (what the parser extracts).
struct PacketKey {
    std::optional<Family> family;       // nullopt: not IPv4/IPv6
    std::array<uint8_t, 16> src{}, dst{};
    std::optional<uint8_t> proto;       // IP protocol, known for later fragments too
    bool has_ports = false;             // TCP/UDP header present (not a later fragment)
    uint16_t sport = 0, dport = 0;      // host order
    std::optional<uint8_t> tcp_flags;   // TCP header present
    std::optional<uint16_t> vlan;       // outermost tag's ID
    std::string iif;
    bool later_fragment = false;
    Direction dir = Direction::ingress;
};

struct Verdict {
    ActionKind action = ActionKind::pass;  // drop or pass
    uint32_t rule_id = 0;                  // the deciding rule; 0: the default action
    std::vector<uint32_t> counted;         // count (and conforming rate-limit) rules passed on the way
};

bool rule_matches(const Policy& p, const Rule& r, const PacketKey& k);

// Rate-limit rules are taken as conforming (the reference has no clock): they count
// and go on, as a packet within the rate does in the datapath.
Verdict classify(const Policy& p, const PacketKey& k);

}  // namespace xdpctl::policy
