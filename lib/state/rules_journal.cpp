#include "state/rules_journal.h"

#include <cstring>

#include "policy/policy_binary.h"
#include "state/durable_file.h"
#include "state/record_bytes.h"
#include "util/error.h"

namespace xdpctl::state {

namespace {

constexpr char kMagic[4] = {'X', 'R', 'J', '1'};
constexpr size_t kHeader = 4 + 4 + 8 + 4 + 4, kTrailer = 8;

uint64_t addr_key(uint64_t h, const policy::AddrMatch& a)
{
    if (a.kind == policy::AddrMatch::Kind::prefix) {
        uint64_t w0 = 0, w1 = 0;
        std::memcpy(&w0, a.prefix.addr.data(), 8);
        std::memcpy(&w1, a.prefix.addr.data() + 8, 8);
        return fold64(fold64(fold64(h, uint64_t(a.prefix.family) | uint64_t(a.prefix.len) << 8), w0), w1);
    }
    if (a.kind == policy::AddrMatch::Kind::set)
        return fold64(h, checksum64(a.set));
    return h;
}

}  // namespace

uint64_t rules_key(const policy::Policy& p)
{
    // Every field of a rule is in the key: a field added to Rule must be added here too, or
    // two policies differing only in it would look alike to the journal.
    static_assert(sizeof(policy::Rule) == 248, "a field of policy::Rule is missing from rules_key");
    uint64_t h = uint64_t(p.default_action);
    for (const policy::Rule& r : p.rules) {
        h = fold64(h, uint64_t(r.id) | uint64_t(r.priority) << 32);
        h = fold64(h, uint64_t(r.dir) | uint64_t(r.src.kind) << 8 | uint64_t(r.dst.kind) << 16 |
                          uint64_t(r.proto.has_value()) << 24 | uint64_t(r.proto.value_or(0)) << 32 |
                          uint64_t(r.vlan.has_value()) << 40 | uint64_t(r.tcp_flags.mask) << 48 |
                          uint64_t(r.tcp_flags.value) << 56);
        h = fold64(h, uint64_t(r.sport.lo) | uint64_t(r.sport.hi) << 16 | uint64_t(r.dport.lo) << 32 |
                          uint64_t(r.dport.hi) << 48);
        h = fold64(h, uint64_t(r.vlan.value_or(0)) | uint64_t(r.iif_pending) << 16 | uint64_t(r.fragment) << 17 |
                          uint64_t(r.action.kind) << 24 | uint64_t(r.log_rate) << 32);
        h = fold64(fold64(h, r.action.rate_pps), r.action.burst);
        h = addr_key(addr_key(h, r.src), r.dst);
        if (!r.iif.empty() || !r.iif_netns.empty())
            h = fold64(fold64(h, checksum64(r.iif)), checksum64(r.iif_netns));
    }
    return mix64(h, p.rules.size());
}

std::string encode_rules_record(uint64_t generation, const RulesSplice& s, const policy::Policy& after)
{
    policy::Policy body;
    body.default_action = after.default_action;
    body.rules.assign(after.rules.begin() + long(s.at), after.rules.begin() + long(s.at + s.inserted));
    const std::string image = policy::encode_policy(body);
    std::string out(kMagic, 4);
    put_field(out, uint32_t(image.size()));
    put_field(out, generation);
    put_field(out, uint32_t(s.at));
    put_field(out, uint32_t(s.removed));
    out += image;
    put_field(out, checksum64(out));
    return out;
}

size_t replay_rules_journal(policy::Policy& p, std::string_view bytes, const std::string& source)
{
    size_t at = 0;
    while (bytes.size() - at >= kHeader + kTrailer && std::memcmp(bytes.data() + at, kMagic, 4) == 0) {
        const size_t len = kHeader + get_field<uint32_t>(bytes, at + 4) + kTrailer;
        if (bytes.size() - at < len)
            break;
        const std::string_view rec = bytes.substr(at, len - kTrailer);
        if (checksum64(rec) != get_field<uint64_t>(bytes, at + len - kTrailer))
            break;
        const size_t keep = get_field<uint32_t>(rec, 16), removed = get_field<uint32_t>(rec, 20);
        if (keep + removed > p.rules.size())
            break;  // not whole for these rules: the caller names the byte
        const policy::Policy body = policy::decode_policy(rec.substr(kHeader), source);
        const auto from = p.rules.begin() + long(keep);
        p.rules.erase(from, from + long(removed));
        p.rules.insert(p.rules.begin() + long(keep), body.rules.begin(), body.rules.end());
        p.default_action = body.default_action;
        at += len;
    }
    return at;
}

}  // namespace xdpctl::state
