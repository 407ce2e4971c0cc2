// The committed policy as stored in the pinned xdpctl_psrc map: a compact binary image of
// the Policy. Every policy command reads it back before it changes and commits: decoding a
// binary image of 10,000 rules takes well under a millisecond, where re-parsing the same
// policy as text took ~20 ms and a 1,000,000-prefix set as text ~1 s.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
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
// A stored image's bytes as a command read them: all of them, or all but the entries of the
// sets a rule command leaves undecoded (~6 MiB of a 1M-prefix set's), which stay in the map
// they were read from until something needs them. A `rule add` beside such a set only stores
// them again, and that copy goes from map to map through one chunk's buffer: no ~6 MiB of
// fresh memory first (docs/filtering.md, "Fresh memory"). Safe to use from two threads.
class ImageBytes {
public:
    explicit ImageBytes(std::shared_ptr<const std::string> whole);
    // Reads stored chunk `c` (chunk_bytes, the first starting with the image's 8-byte length)
    // into `out`; throws when it is missing.
    using ChunkReader = std::function<void(uint32_t c, char* out)>;
    // An image of `len` bytes stored in chunks of `chunk_bytes`, of which the chunks that lie
    // wholly inside one of `holes` ([offset, offset + bytes) of the image) are not read now.
    // `gen`: the generation they are read from (lazy_generation()).
    ImageBytes(size_t len, uint32_t chunk_bytes, const std::vector<std::pair<size_t, size_t>>& holes,
               ChunkReader read, uint32_t gen);
    ~ImageBytes();
    ImageBytes(const ImageBytes&) = delete;
    ImageBytes& operator=(const ImageBytes&) = delete;

    size_t size() const { return len_; }
    // All the bytes, those of the holes not read yet as zeros: for the decoder, which skips
    // the sets it leaves undecoded and reads any other through bytes() first.
    std::string_view view() const { return {data_, len_}; }
    // Bytes [offset, offset + n), read first where they were left in the map.
    const char* bytes(size_t offset, size_t n) const;
    // The same into `out`, without keeping what is read from the map (the store's copy).
    void copy(size_t offset, char* out, size_t n) const;
    // The generation that bytes not read yet come from; nullopt once all are read.
    std::optional<uint32_t> lazy_generation() const;

private:
    void load_chunk(uint32_t c) const;  // mu_ held
    void chunk_span(uint32_t c, size_t& from, size_t& to) const;  // the image bytes of chunk c

    std::shared_ptr<const std::string> whole_;
    char* data_ = nullptr;
    size_t len_ = 0, mapped_ = 0;
    uint32_t chunk_bytes_ = 0, gen_ = 0;
    ChunkReader read_;
    mutable std::mutex mu_;
    mutable std::vector<bool> loaded_;  // per chunk; empty: all of them
    mutable size_t unloaded_ = 0;
    mutable std::vector<char> scratch_;  // the last chunk read for copy()
    mutable uint32_t scratch_chunk_ = UINT32_MAX;
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
    void add_held(const ImageBytes& from, size_t offset, size_t n);
    void set_own(std::string own);

private:
    struct Piece {
        const ImageBytes* held;  // nullptr: own_ from `off`; else its bytes from `off`
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
Policy decode_policy_leaving_sets(const std::shared_ptr<const ImageBytes>& image, const std::string& source,
                                  IifIndexes* resolved, const std::function<const ImageSet*(const std::string&)>& leave);
Policy decode_policy_leaving_sets(const std::shared_ptr<const std::string>& image, const std::string& source,
                                  IifIndexes* resolved, const std::function<const ImageSet*(const std::string&)>& leave);
// A set's entries: `s.entries`, or those it left undecoded, decoded into `scratch`.
const std::vector<SetEntry>& set_entries(const PrefixSet& s, std::vector<SetEntry>& scratch);
// Decodes the entries `s` left undecoded into `s.entries`.
void decode_entries(PrefixSet& s);
[[noreturn]] void throw_damaged_entries(const UndecodedEntries& u, uint32_t entry);
// Entry `i` of those `u` left undecoded, at `p` of bytes ending at `end`: calls f(family,
// length, except, address bytes) and returns where the next entry starts. Throws on bytes
// that are not such an entry (a byte of family | 0x80 for an exception, the length, 4 or 16
// address bytes).
template <typename F>
const uint8_t* visit_undecoded_entry(const UndecodedEntries& u, uint32_t i, const uint8_t* p, const uint8_t* end, F& f)
{
    const uint8_t fam = end - p >= 2 ? p[0] & 0x7f : 0;
    const size_t n = fam == uint8_t(Family::v4) ? 4 : 16;
    if ((fam != uint8_t(Family::v4) && fam != uint8_t(Family::v6)) || size_t(end - p) < 2 + n)
        throw_damaged_entries(u, i);
    f(Family(fam), p[1], bool(p[0] & 0x80), p + 2);
    return p + 2 + n;
}
// Calls f(family, length, except, address bytes) for each entry a set left undecoded, without
// decoding them. Throws on bytes that are not such entries.
template <typename F>
void visit_undecoded(const UndecodedEntries& u, F&& f)
{
    const auto* p = reinterpret_cast<const uint8_t*>(u.image->bytes(u.offset, u.bytes));
    const uint8_t* const end = p + u.bytes;
    for (uint32_t i = 0; i < u.count; i++)
        p = visit_undecoded_entry(u, i, p, end, f);
}
// visit_undecoded() reading the bytes a window at a time and keeping none (ImageBytes::copy):
// one pass over a large set that is not read otherwise, without the first touches of its
// bytes (~16 ms for a 1M-prefix set's 6 MiB where those cost ~10 us a page).
template <typename F>
void visit_undecoded_streamed(const UndecodedEntries& u, F&& f)
{
    constexpr size_t kWindow = 64 << 10, kMaxEntry = 18;
    std::vector<uint8_t> buf(kWindow + kMaxEntry);
    size_t read = 0, have = 0, at = 0;  // of the entries' bytes; in buf; parsed in buf
    for (uint32_t i = 0; i < u.count; i++) {
        if (have - at < kMaxEntry && read < u.bytes) {
            std::memmove(buf.data(), buf.data() + at, have - at);
            have -= at;
            at = 0;
            const size_t n = std::min(kWindow, u.bytes - read);
            u.image->copy(u.offset + read, reinterpret_cast<char*>(buf.data() + have), n);
            read += n;
            have += n;
        }
        at = size_t(visit_undecoded_entry(u, i, buf.data() + at, buf.data() + have, f) - buf.data());
    }
}
// Whether entries left undecoded hold a member (not an exception) of family `f`: the IPv4
// ones come first, so this reads up to the first such member of the family, not all.
bool undecoded_has_member(const UndecodedEntries& u, Family f);

}  // namespace xdpctl::policy
