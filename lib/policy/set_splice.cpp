#include "policy/set_splice.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "policy/policy_binary.h"
#include "policy/set_tables.h"

namespace xdpctl::policy {

namespace {

constexpr size_t kV4EntryBytes = 6;

// The result of a splice: runs of the base's bytes and entries of its own, in order.
struct Spliced {
    struct Piece {
        size_t at;    // where it starts in the result
        size_t from;  // in the base's entries' bytes, or (own) in `own`
        size_t n;
        bool own;
    };
    std::shared_ptr<const ImageBytes> base;
    size_t base_offset = 0;
    std::vector<Piece> pieces;
    std::string own;

    // Bytes [from, to) of the result into `out`.
    void copy(size_t from, size_t to, char* out) const
    {
        if (from >= to)
            return;
        auto it = std::upper_bound(pieces.begin(), pieces.end(), from, [](size_t x, const Piece& p) { return x < p.at; });
        for (--it; from < to; ++it) {
            const size_t skip = from - it->at, k = std::min(to - from, it->n - skip);
            if (it->own)
                std::memcpy(out, own.data() + it->from + skip, k);
            else
                base->copy(base_offset + it->from + skip, out, k);
            out += k;
            from += k;
        }
    }
};

}  // namespace

SetEntry StoredV4Entries::at(size_t i) const
{
    uint8_t p[kV4EntryBytes];
    copy_(i * kV4EntryBytes, p, kV4EntryBytes);
    SetEntry e;
    e.except = p[0] & 0x80;
    e.prefix.family = Family::v4;
    e.prefix.len = p[1];
    std::memcpy(e.prefix.addr.data(), p + 2, 4);
    return e;
}

size_t StoredV4Entries::lower_bound(const SetEntry& e) const
{
    size_t lo = 0, hi = count_;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if (set_entry_less(at(mid), e))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool StoredV4Entries::contains(const SetEntry& e) const
{
    if (e.prefix.family != Family::v4)
        return false;
    const size_t i = lower_bound(e);
    return i < count_ && at(i) == e;
}

std::optional<UndecodedEntries> splice_set_changes(const UndecodedEntries& u,
                                                   const std::vector<std::pair<SetEntry, bool>>& ops,
                                                   uint64_t& print_sum)
{
    std::map<SetEntry, bool, decltype(&set_entry_less)> last(set_entry_less);  // the last op on each entry, in order
    for (const auto& [e, member] : ops) {
        if (e.prefix.family != Family::v4)
            return std::nullopt;
        last.insert_or_assign(e, member);
    }
    auto s = std::make_shared<Spliced>();
    s->base = u.image;
    s->base_offset = u.offset;
    const StoredV4Entries v4(u.v4_count, [&u](size_t off, void* out, size_t n) {
        u.image->copy(u.offset + off, static_cast<char*>(out), n);
    });
    UndecodedEntries out = u;
    size_t pos = 0, at = 0;  // in the base's bytes; in the result's
    auto base_run = [&](size_t to) {
        if (to > pos) {
            s->pieces.push_back({at, pos, to - pos, false});
            at += to - pos;
            pos = to;
        }
    };
    uint64_t sum = print_sum;
    for (const auto& [e, member] : last) {
        const size_t i = v4.lower_bound(e);
        const bool in_base = i < v4.count() && v4.at(i) == e;
        sum += (uint64_t(member) - uint64_t(in_base)) * set_entry_print(e);
        if (member == in_base)
            continue;
        base_run(i * kV4EntryBytes);
        if (member) {
            s->pieces.push_back({at, s->own.size(), kV4EntryBytes, true});
            s->own.push_back(char(uint8_t(Family::v4) | (e.except ? 0x80 : 0)));
            s->own.push_back(char(e.prefix.len));
            s->own.append(reinterpret_cast<const char*>(e.prefix.addr.data()), 4);
            at += kV4EntryBytes;
            out.count++, out.v4_count++;
        } else {
            pos += kV4EntryBytes;  // the entry is left out
            out.count--, out.v4_count--;
        }
    }
    base_run(u.bytes);
    print_sum = sum;
    out.print_sum = sum;
    out.offset = 0;
    out.bytes = at;
    // The result as an image of its own whose chunks are made from the pieces when read
    // (nothing is read now: all of it is one hole). Bytes not read yet come from the
    // generation the base's do.
    constexpr uint32_t kChunk = 64 << 10;
    const size_t len = at;
    out.image = std::make_shared<const ImageBytes>(
        len, kChunk, std::vector<std::pair<size_t, size_t>>{{0, len}},
        [s, len](uint32_t c, char* chunk) {
            // Image byte i is at i + 8 of the chunks (ImageBytes): the first starts with the length.
            const size_t s0 = size_t(c) * kChunk, s1 = std::min(s0 + kChunk, len + sizeof(uint64_t));
            if (c == 0)
                std::memcpy(chunk, &len, sizeof(uint64_t));
            const size_t from = std::max(s0, sizeof(uint64_t)) - sizeof(uint64_t), to = s1 - sizeof(uint64_t);
            s->copy(from, to, chunk + (from + sizeof(uint64_t) - s0));
        },
        u.image->lazy_generation().value_or(UINT32_MAX));
    return out;
}

}  // namespace xdpctl::policy
