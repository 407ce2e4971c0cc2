// The committed policy as stored in the pinned xdpctl_psrc map: a compact binary image of
// the Policy. Every policy command reads it back before it changes and commits: decoding a
// binary image of 10,000 rules takes well under a millisecond, where re-parsing the same
// policy as text took ~20 ms and a 1,000,000-prefix set as text ~1 s.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "policy/rule.h"

namespace xdpctl::policy {

// Starts every binary image; a stored policy without it is text from an older xdpctl
// (read with parse_policy_text, so an upgrade keeps the policy). Version 2 adds to each
// rule its --iif namespace, the --iif-pending flag and the ifindex its name resolved to;
// version 1 images (the release before) still decode, as rules without these.
inline constexpr std::string_view kPolicyImageMagic{"XDPCTLP2", 8};
inline constexpr std::string_view kPolicyImageMagicV1{"XDPCTLP1", 8};

// Where a set's entries lie in an image: its bytes [offset, offset + bytes), an entry a byte
// of family | 0x80 for an exception, the length, then 4 or 16 address bytes. A stored set is
// normalized, so its v4_count IPv4 entries come first, in order, six bytes each: what `set
// add` reads to change a set in place, without decoding a million entries.
struct ImageSet {
    std::string name;
    uint32_t count = 0, v4_count = 0;
    size_t offset = 0, bytes = 0;
};
// `resolved`: the committed ifindex of each --iif rule (by id); none given stores 0s.
// `where`, when given, gets where each set's entries lie in the image (ImageSet).
std::string encode_policy(const Policy& p, const IifIndexes& resolved = {}, std::vector<ImageSet>* where = nullptr);
// The same, a set's entries copied instead of encoded where `stored` gives where an image of
// this version holds exactly them (their count must be the set's): `copy(offset, out, n)`
// reads that image's bytes.
struct StoredSetBytes {
    std::function<const ImageSet*(const PrefixSet&)> stored;
    std::function<void(size_t offset, char* out, size_t n)> copy;
};
// An image as the pieces it is made of, in order: bytes of its own, and the bytes of each set
// left undecoded where they are (the image it was read from, which must outlive this). A rule
// command beside a 1M-prefix set stores its ~6 MiB without copying them into a buffer of
// their own first: memory a command touches for the first time is what it pays most for
// (docs/filtering.md, "Fresh memory").
class ImagePieces {
public:
    ImagePieces() = default;
    explicit ImagePieces(std::string whole);
    size_t size() const { return size_; }
    // Bytes [pos, pos + n) of the image into `out`.
    void copy(size_t pos, char* out, size_t n) const;
    std::string joined() const;
    // How the encoder makes one: its own bytes up to `end` (of the buffer it fills) are the
    // next piece; `n` bytes at `p` the next; then the buffer, whole.
    void add_own(size_t end);
    void add_held(const char* p, size_t n);
    void set_own(std::string own);

private:
    struct Piece {
        const char* held;  // nullptr: own_ from `off`
        size_t off, n;
    };
    std::string own_;
    std::vector<Piece> pieces_;
    size_t own_end_ = 0, size_ = 0;
};
// The pieces of the image encode_policy() makes, with the sets left undecoded held as they are.
ImagePieces encode_policy(const Policy& p, const IifIndexes& resolved, std::vector<ImageSet>* where,
                          const StoredSetBytes& reuse);
// The image of `p` without its sets (the rules and the default action): the state
// directory's rules file, encoded without copying the rules into a policy of their own.
std::string encode_policy_rules(const Policy& p);
// Throws Error naming `source` when the image is cut short or malformed. The policy is
// taken as stored: it was checked when committed. `resolved`, when given, gets the
// ifindex of each --iif rule as stored (none from a version 1 image).
Policy decode_policy(std::string_view image, const std::string& source, IifIndexes* resolved = nullptr);
bool is_policy_image(std::string_view stored);
// decode_policy(), each set for which `leave` gives where `image` holds its entries (an image
// of this version: the count and length found there must be the same) left undecoded
// (PrefixSet::undecoded), sharing `image`.
Policy decode_policy_leaving_sets(const std::shared_ptr<const std::string>& image, const std::string& source,
                                  IifIndexes* resolved, const std::function<const ImageSet*(const std::string&)>& leave);
// A set's entries: `s.entries`, or those it left undecoded, decoded into `scratch`.
const std::vector<SetEntry>& set_entries(const PrefixSet& s, std::vector<SetEntry>& scratch);
// Decodes the entries `s` left undecoded into `s.entries`.
void decode_entries(PrefixSet& s);
[[noreturn]] void throw_damaged_entries(const UndecodedEntries& u, uint32_t entry);
// Calls f(family, length, except, address bytes) for each entry a set left undecoded, without
// decoding them (each entry: a byte of family | 0x80 for an exception, the length, 4 or 16
// address bytes). Throws on bytes that are not such entries.
template <typename F>
void visit_undecoded(const UndecodedEntries& u, F&& f)
{
    const auto* p = reinterpret_cast<const uint8_t*>(u.image->data() + u.offset);
    const uint8_t* const end = p + u.bytes;
    for (uint32_t i = 0; i < u.count; i++) {
        const uint8_t fam = end - p >= 2 ? p[0] & 0x7f : 0;
        const size_t n = fam == uint8_t(Family::v4) ? 4 : 16;
        if ((fam != uint8_t(Family::v4) && fam != uint8_t(Family::v6)) || size_t(end - p) < 2 + n)
            throw_damaged_entries(u, i);
        f(Family(fam), p[1], bool(p[0] & 0x80), p + 2);
        p += 2 + n;
    }
}
// Whether entries left undecoded hold a member (not an exception) of family `f`: the IPv4
// ones come first, so this reads up to the first such member of the family, not all.
bool undecoded_has_member(const UndecodedEntries& u, Family f);

}  // namespace xdpctl::policy
