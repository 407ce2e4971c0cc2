// The filtering policy as the user writes it: rules, prefix sets and the default action.
// This is the model the CLI, rule files, export, the compiler (to BPF maps) and the
// reference classifier share. docs/filtering.md gives the matching rules in prose.
#pragma once

#include <algorithm>
#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace xdpctl::policy {

enum class Family : uint8_t { v4 = 4, v6 = 6 };

// A CIDR with its host bits zero (xdpctl rejects host bits: see parse_prefix).
struct Prefix {
    Family family = Family::v4;
    std::array<uint8_t, 16> addr{};  // network order; IPv4 uses the first 4 bytes
    uint8_t len = 0;

    bool contains(Family f, const std::array<uint8_t, 16>& a) const;
    // The prefix of length `l` (at most len) that holds this one: the address's bits from
    // `l` on cleared. A prefix with no host bits is its own network_of(len).
    Prefix network_of(uint8_t l) const
    {
        Prefix n = *this;
        n.len = l;
        for (unsigned b = 0; b < 16; b++) {
            const unsigned keep = l > 8 * b ? std::min(8u, l - 8 * b) : 0;
            n.addr[b] &= uint8_t(0xff00u >> keep);
        }
        return n;
    }
    // As the defaulted ones would (family, the address's bytes, length), with the bytes
    // compared as two big-endian words: a set of 1M prefixes is compared ~2M times a
    // commit (normalize, check), and the defaults called memcmp for each.
    bool operator==(const Prefix& o) const
    {
        return family == o.family && len == o.len && word(0) == o.word(0) && word(1) == o.word(1);
    }
    std::strong_ordering operator<=>(const Prefix& o) const
    {
        if (auto c = family <=> o.family; c != 0)
            return c;
        if (auto c = word(0) <=> o.word(0); c != 0)
            return c;
        if (auto c = word(1) <=> o.word(1); c != 0)
            return c;
        return len <=> o.len;
    }

private:
    // Bytes 8i..8i+7 of the address as one big-endian number.
    uint64_t word(int i) const
    {
        uint64_t w = 0;
        for (int b = 0; b < 8; b++)
            w = w << 8 | addr[size_t(8 * i + b)];
        return w;
    }
};

struct AddrMatch {
    enum class Kind : uint8_t { any, prefix, set } kind = Kind::any;
    Prefix prefix;    // kind == prefix
    std::string set;  // kind == set, without the '@'
    bool operator==(const AddrMatch&) const = default;
};

struct PortRange {
    uint16_t lo = 0, hi = 65535;
    bool any() const { return lo == 0 && hi == 65535; }
    bool contains(uint16_t p) const { return p >= lo && p <= hi; }
    bool operator==(const PortRange&) const = default;
};

// TCP flags as (packet_flags & mask) == value; "syn,!ack" is mask SYN|ACK, value SYN.
struct TcpFlagsMatch {
    uint8_t mask = 0, value = 0;
    bool any() const { return mask == 0; }
    bool operator==(const TcpFlagsMatch&) const = default;
};

enum class Direction : uint8_t { ingress, egress };

enum class ActionKind : uint8_t { drop, pass, count, rate_limit };

struct Action {
    ActionKind kind = ActionKind::drop;
    uint64_t rate_pps = 0;  // rate_limit
    uint64_t burst = 0;     // rate_limit: bucket depth in packets
    bool operator==(const Action&) const = default;
};

inline constexpr uint32_t kDefaultPriority = 1000;

struct Rule {
    uint32_t id = 0;  // 0: not yet assigned
    uint32_t priority = kDefaultPriority;  // lower first; ties by id
    Direction dir = Direction::ingress;
    AddrMatch src, dst;
    std::optional<uint8_t> proto;  // IP protocol number
    PortRange sport, dport;
    std::optional<uint16_t> vlan;  // outermost VLAN tag's ID
    std::string iif;               // ingress interface name, empty: any
    // The network namespace (`ip netns` name) `iif` is an interface of, recorded when the
    // rule was added (`-n NS`); empty: the namespace xdpctl runs in. Every commit resolves
    // `iif` there, whatever namespace that command was given (lib/policy/iif_resolve.h).
    std::string iif_netns;
    // `iif` need not exist yet (--iif-pending): a missing name is not an error and is
    // resolved again at every commit. Without it, adding a rule whose `iif` is missing fails.
    bool iif_pending = false;
    TcpFlagsMatch tcp_flags;
    bool fragment = false;         // matches non-first fragments only
    Action action;
    // --log: the packets this rule decides send decision events (`xdpctl trace`), at most
    // this many a second; 0: no events. Count rules decide nothing and take no --log.
    uint32_t log_rate = 0;
    bool operator==(const Rule&) const = default;
};

struct SetEntry {
    Prefix prefix;
    bool except = false;  // "!CIDR": the longest match says "not a member"
    bool operator==(const SetEntry&) const = default;
};
// The order of a normalized set's entries (PrefixSet::normalize), as stored: the prefix, then
// the exception bit.
inline bool set_entry_less(const SetEntry& a, const SetEntry& b)
{
    return std::tie(a.prefix, a.except) < std::tie(b.prefix, b.except);
}

// A set's entries left as a stored policy image holds them (policy_binary.h), not decoded:
// how a rule command reads a set it does not change (PolicyStore::current_rules). Decoding a
// 1M-prefix set cost ~16-27 ms and ~20 MiB of every `rule add`; the commit copies these bytes
// into the new image and finds the set's table by the print the image's set index gives.
class ImageBytes;  // policy_binary.h
struct UndecodedEntries {
    // The image read, shared by its sets; a rule command's leaves these bytes in the map
    // until something needs them (ImageBytes::bytes()).
    std::shared_ptr<const ImageBytes> image;
    size_t offset = 0, bytes = 0;              // the entries' bytes in it
    uint32_t count = 0, v4_count = 0;          // entries, IPv4 ones (first: a stored set is normalized)
    // The sum of the entries' prints (set_tables.h) when the image's set index gives it
    // exactly (StoredSets::exact_sums): the state directory's key of the set, with no pass.
    std::optional<uint64_t> print_sum;
    bool operator==(const UndecodedEntries&) const = default;
};

struct PrefixSet {
    std::string name;
    std::vector<SetEntry> entries;  // kept sorted and unique (normalize()); empty while `undecoded`
    // Set: the entries are these stored bytes, normalized and checked when they were
    // committed. Code that reads `entries` of a set it did not decode itself goes through
    // set_entries() (policy_binary.h) or size().
    std::optional<UndecodedEntries> undecoded;
    size_t size() const { return undecoded ? undecoded->count : entries.size(); }
    void normalize();
    // Longest prefix of the address's family wins; an exception means "not a member".
    bool contains(Family f, const std::array<uint8_t, 16>& addr) const;
    bool operator==(const PrefixSet&) const = default;
};

struct Policy {
    std::vector<Rule> rules;               // any order; evaluation sorts by (priority, id)
    std::map<std::string, PrefixSet> sets;
    ActionKind default_action = ActionKind::pass;  // pass or drop only
    bool operator==(const Policy&) const = default;
};

// Rule id -> the ifindex its `iif` resolved to at the commit (0: not found). Kept with the
// stored policy, so `rule list` can say which names matched nothing when committed.
using IifIndexes = std::map<uint32_t, uint32_t>;

// Limits the datapath is built for (docs/filtering.md).
inline constexpr size_t kMaxSets = 16;
inline constexpr size_t kMaxRulesPerDirection = 10000;
inline constexpr size_t kMaxSetNameLen = 32;
// The most a rate limit's rate and burst can be (packets): the datapath's token bucket
// counts nanotokens in a signed 64-bit word.
inline constexpr uint64_t kMaxBurst = uint64_t(INT64_MAX) / 1000000000ull;
// --log without --log-rate: events a second (per rule); --log-rate's bounds.
inline constexpr uint32_t kDefaultLogRate = 100;
inline constexpr uint32_t kMaxLogRate = 1000000;  // abi: XDPCTL_LOG_RATE_MAX

// Rules in evaluation order: priority, then id.
std::vector<const Rule*> evaluation_order(const Policy& p);

}  // namespace xdpctl::policy
