#include "policy/policy_binary.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "util/error.h"

namespace xdpctl::policy {

namespace {

// Little-endian fields of fixed width; strings as a u16 length and the bytes. The image only
// ever goes back to the machine that wrote it (a pinned map), so no portability beyond that.
class Writer {
public:
    void u8(uint8_t v) { raw(&v, 1); }
    void u16(uint16_t v) { raw(&v, sizeof v); }
    void u32(uint32_t v) { raw(&v, sizeof v); }
    void u64(uint64_t v) { raw(&v, sizeof v); }
    void str(const std::string& s)
    {
        u16(uint16_t(s.size()));
        raw(s.data(), s.size());
    }
    void prefix(const Prefix& p, bool except)
    {
        u8(uint8_t(p.family) | (except ? 0x80 : 0));
        u8(p.len);
        raw(p.addr.data(), p.family == Family::v4 ? 4 : 16);
    }
    void raw(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
    // Bytes held elsewhere, alive as long as the image: taken as they are when the image is
    // made of pieces (take_pieces), copied otherwise.
    void held(const ImageBytes& from, size_t offset, size_t n)
    {
        if (!pieces_)
            return from.copy(offset, grow(n), n);
        pieces_->add_own(out_.size());
        pieces_->add_held(from, offset, n);
        held_bytes_ += n;
    }
    // `n` bytes more, to be filled through the pointer returned.
    char* grow(size_t n)
    {
        const size_t at = out_.size();
        out_.resize(at + n);
        return out_.data() + at;
    }
    size_t size() const { return out_.size() + held_bytes_; }
    // Capacity only: what the image does not use is never touched, so never resident.
    void reserve(size_t n) { out_.reserve(n); }
    std::string take() { return std::move(out_); }
    // From here on, held() bytes are pieces of the image, not copied into it.
    void make_pieces(ImagePieces& into) { pieces_ = &into; }
    void take_pieces()
    {
        pieces_->add_own(out_.size());
        pieces_->set_own(std::move(out_));
    }

private:
    std::string out_;
    ImagePieces* pieces_ = nullptr;
    size_t held_bytes_ = 0;
};

class Reader {
public:
    Reader(std::string_view in, const std::string& source) : in_(in), source_(source) {}
    uint8_t u8() { return take<uint8_t>(); }
    uint16_t u16() { return take<uint16_t>(); }
    uint32_t u32() { return take<uint32_t>(); }
    uint64_t u64() { return take<uint64_t>(); }
    std::string str()
    {
        size_t n = u16();
        need(n);
        std::string s(in_.substr(pos_, n));
        pos_ += n;
        return s;
    }
    Prefix prefix(bool* except)
    {
        uint8_t fam = u8();
        *except = fam & 0x80;
        fam &= 0x7f;
        if (fam != uint8_t(Family::v4) && fam != uint8_t(Family::v6))
            fail("{} is damaged: address family {} at byte {}", source_, fam, pos_ - 1);
        Prefix p;
        p.family = Family(fam);
        p.len = u8();
        size_t n = p.family == Family::v4 ? 4 : 16;
        need(n);
        std::memcpy(p.addr.data(), in_.data() + pos_, n);
        pos_ += n;
        return p;
    }
    // A set's `n` entries in one pass over the bytes: at 1,000,000 prefixes a call of
    // prefix() for each, with its checks, was most of decoding the set (~19 ms of ~25).
    void entries(std::vector<SetEntry>& out, size_t n)
    {
        need(n * 6);  // the smallest entry: before making room for a damaged count
        out.resize(n);
        const auto* base = reinterpret_cast<const uint8_t*>(in_.data());
        const uint8_t* p = base + pos_;
        const uint8_t* const end = base + in_.size();
        for (SetEntry& e : out) {
            const uint8_t fam = end - p >= 2 ? p[0] & 0x7f : 0;
            const size_t len = fam == uint8_t(Family::v4) ? 4 : 16;
            if ((fam != uint8_t(Family::v4) && fam != uint8_t(Family::v6)) || size_t(end - p) < 2 + len) {
                pos_ = size_t(p - base);
                bool except = false;
                prefix(&except);  // says what is wrong, where
                fail("{} is damaged at byte {}", source_, pos_);
            }
            e.except = p[0] & 0x80;
            e.prefix.family = Family(fam);
            e.prefix.len = p[1];
            std::memcpy(e.prefix.addr.data(), p + 2, len);
            p += 2 + len;
        }
        pos_ = size_t(p - base);
    }
    bool done() const { return pos_ == in_.size(); }
    size_t pos() const { return pos_; }
    void skip(size_t n)
    {
        need(n);
        pos_ += n;
    }
    void need(size_t n) const
    {
        if (in_.size() - pos_ < n)
            fail("{} is cut short at byte {} of {}", source_, pos_, in_.size());
    }

private:
    template <typename T>
    T take()
    {
        need(sizeof(T));
        T v;
        std::memcpy(&v, in_.data() + pos_, sizeof v);
        pos_ += sizeof v;
        return v;
    }

    std::string_view in_;
    const std::string& source_;
    size_t pos_ = 0;
};

constexpr uint8_t kLogBit = 2;
constexpr size_t kDecodeSpareRules = 4;

void put_addr(Writer& w, const AddrMatch& a)
{
    w.u8(uint8_t(a.kind));
    if (a.kind == AddrMatch::Kind::prefix)
        w.prefix(a.prefix, false);
    else if (a.kind == AddrMatch::Kind::set)
        w.str(a.set);
}

void get_addr(Reader& r, AddrMatch& a)
{
    a.kind = AddrMatch::Kind(r.u8());
    bool except = false;
    if (a.kind == AddrMatch::Kind::prefix)
        a.prefix = r.prefix(&except);
    else if (a.kind == AddrMatch::Kind::set)
        a.set = r.str();
}

}  // namespace

bool is_policy_image(std::string_view stored)
{
    std::string_view magic = stored.substr(0, kPolicyImageMagic.size());
    return magic == kPolicyImageMagic || magic == kPolicyImageMagicV1;
}

namespace {

void encode(Writer& w, const Policy& p, const IifIndexes& resolved, bool with_sets, std::vector<ImageSet>* where = nullptr,
            const StoredSetBytes* reuse = nullptr, bool pieces = false)
{
    static const std::map<std::string, PrefixSet> no_sets;
    const auto& sets = with_sets ? p.sets : no_sets;
    // Grown by doubling, the image of 10,000 rules was copied ~15 times on the way (~0.3 ms);
    // room for the largest entries and rules instead (a set left undecoded is its bytes,
    // none of them in the buffer when the image is made of pieces).
    size_t entries = 0, held = 0;
    for (const auto& [_, s] : sets)
        if (s.undecoded)
            held += pieces ? 0 : s.undecoded->bytes;
        else
            entries += s.size();
    w.reserve(64 + entries * 18 + held + p.rules.size() * 48);
    w.raw(kPolicyImageMagic.data(), kPolicyImageMagic.size());
    w.u8(uint8_t(p.default_action));
    w.u32(uint32_t(sets.size()));
    for (const auto& [name, s] : sets) {
        w.str(name);
        w.u32(uint32_t(s.size()));
        ImageSet at{.name = name, .count = uint32_t(s.size()), .offset = w.size()};
        const ImageSet* stored = reuse && !s.undecoded ? reuse->stored(s) : nullptr;
        if (const auto& u = s.undecoded) {  // the bytes as they were read
            w.held(*u->image, u->offset, u->bytes);
            at.v4_count = u->v4_count;
        } else if (stored && stored->count == s.entries.size()) {
            reuse->copy(stored->offset, w.grow(stored->bytes), stored->bytes);
            at.v4_count = stored->v4_count;
        } else {
            for (const auto& e : s.entries) {
                w.prefix(e.prefix, e.except);
                at.v4_count += e.prefix.family == Family::v4;
            }
        }
        at.bytes = w.size() - at.offset;
        if (where)
            where->push_back(std::move(at));
    }
    w.u32(uint32_t(p.rules.size()));
    for (const Rule& r : p.rules) {
        w.u32(r.id);
        w.u32(r.priority);
        w.u8(uint8_t(r.dir));
        put_addr(w, r.src);
        put_addr(w, r.dst);
        w.u8(r.proto.has_value());
        w.u8(r.proto.value_or(0));
        w.u16(r.sport.lo);
        w.u16(r.sport.hi);
        w.u16(r.dport.lo);
        w.u16(r.dport.hi);
        w.u8(r.vlan.has_value());
        w.u16(r.vlan.value_or(0));
        w.str(r.iif);
        if (!r.iif.empty()) {  // version 2
            w.str(r.iif_netns);
            w.u8(r.iif_pending);
            auto it = resolved.find(r.id);
            w.u32(it == resolved.end() ? 0 : it->second);
        }
        w.u8(r.tcp_flags.mask);
        w.u8(r.tcp_flags.value);
        // Bit 0: --fragment; bit 1: --log, its rate follows (images before --log hold 0 or 1).
        w.u8(uint8_t(r.fragment) | (r.log_rate ? kLogBit : 0));
        if (r.log_rate)
            w.u32(r.log_rate);
        w.u8(uint8_t(r.action.kind));
        w.u64(r.action.rate_pps);
        w.u64(r.action.burst);
    }
}

std::string encode(const Policy& p, const IifIndexes& resolved, bool with_sets, std::vector<ImageSet>* where = nullptr)
{
    Writer w;
    encode(w, p, resolved, with_sets, where);
    return w.take();
}

}  // namespace

std::string encode_policy(const Policy& p, const IifIndexes& resolved, std::vector<ImageSet>* where)
{
    return encode(p, resolved, true, where);
}

ImagePieces encode_policy(const Policy& p, const IifIndexes& resolved, std::vector<ImageSet>* where,
                          const StoredSetBytes& reuse)
{
    ImagePieces out;
    Writer w;
    w.make_pieces(out);
    encode(w, p, resolved, true, where, &reuse, true);
    w.take_pieces();
    return out;
}

std::string encode_policy_rules(const Policy& p)
{
    return encode(p, {}, false);
}

ImagePieces::ImagePieces(std::string whole)
{
    add_own(whole.size());
    set_own(std::move(whole));
}

void ImagePieces::add_own(size_t end)
{
    if (end > own_end_)
        pieces_.push_back({nullptr, own_end_, end - own_end_});
    own_end_ = end;
}

void ImagePieces::add_held(const ImageBytes& from, size_t offset, size_t n)
{
    if (n)
        pieces_.push_back({&from, offset, n});
}

void ImagePieces::set_own(std::string own)
{
    own_ = std::move(own);
    size_ = 0;
    for (const Piece& x : pieces_)
        size_ += x.n;
}

void ImagePieces::copy(size_t pos, char* out, size_t n) const
{
    size_t at = 0;  // where the piece starts in the image
    for (const Piece& x : pieces_) {
        if (n == 0)
            return;
        if (pos < at + x.n) {
            const size_t in = pos - at, k = std::min(n, x.n - in);
            if (x.held)
                x.held->copy(x.off + in, out, k);
            else
                std::memcpy(out, own_.data() + x.off + in, k);
            out += k, pos += k, n -= k;
        }
        at += x.n;
    }
    if (n)
        fail("an image of {} bytes read past its end", size_);
}

std::string ImagePieces::joined() const
{
    std::string out(size_, '\0');
    copy(0, out.data(), size_);
    return out;
}

namespace {

Policy decode(std::string_view image, const std::string& source, IifIndexes* resolved,
              const std::shared_ptr<const ImageBytes>& owner = {},
              const std::function<const ImageSet*(const std::string&)>& leave = {})
{
    if (!is_policy_image(image))
        fail("{} is not a policy image", source);
    const bool v1 = image.substr(0, kPolicyImageMagicV1.size()) == kPolicyImageMagicV1;
    Reader r(image.substr(kPolicyImageMagic.size()), source);
    Policy p;
    p.default_action = ActionKind(r.u8());
    uint32_t n_sets = r.u32();
    for (uint32_t i = 0; i < n_sets; i++) {
        PrefixSet s;
        s.name = r.str();
        const uint32_t count = r.u32();
        // Left undecoded where the caller knows these bytes: the same place, count and length
        // (IPv4 entries 6 bytes, IPv6 ones 18).
        const size_t at = kPolicyImageMagic.size() + r.pos();
        if (const ImageSet* known = leave ? leave(s.name) : nullptr;
            known && !v1 && known->count == count && known->offset == at && known->v4_count <= count &&
            known->bytes == 6 * size_t(known->v4_count) + 18 * size_t(count - known->v4_count)) {
            r.skip(known->bytes);
            s.undecoded = UndecodedEntries{owner, at, known->bytes, count, known->v4_count, std::nullopt};
        } else {
            if (owner)  // bytes the reader left in the map, should the index have said otherwise
                owner->bytes(at, std::min(image.size() - std::min(image.size(), at), size_t(count) * 18));
            r.entries(s.entries, count);
        }
        std::string name = s.name;
        p.sets.emplace(std::move(name), std::move(s));
    }
    uint32_t n_rules = r.u32();
    r.need(size_t(n_rules) * 40);
    // Room for the rules a command adds to what it read (`rule add`): growing a vector of
    // 10,000 rules (2.4 MB) copies it into memory not yet touched, ~1 ms of page faults.
    p.rules.reserve(size_t(n_rules) + kDecodeSpareRules);
    for (uint32_t i = 0; i < n_rules; i++) {
        Rule& x = p.rules.emplace_back();  // one pass over fresh memory, each rule made in place
        x.id = r.u32();
        x.priority = r.u32();
        x.dir = Direction(r.u8());
        get_addr(r, x.src);
        get_addr(r, x.dst);
        bool has_proto = r.u8();
        uint8_t proto = r.u8();
        if (has_proto)
            x.proto = proto;
        x.sport.lo = r.u16();
        x.sport.hi = r.u16();
        x.dport.lo = r.u16();
        x.dport.hi = r.u16();
        bool has_vlan = r.u8();
        uint16_t vlan = r.u16();
        if (has_vlan)
            x.vlan = vlan;
        x.iif = r.str();
        if (!v1 && !x.iif.empty()) {
            x.iif_netns = r.str();
            x.iif_pending = r.u8();
            uint32_t ifindex = r.u32();
            if (resolved)
                (*resolved)[x.id] = ifindex;
        }
        x.tcp_flags.mask = r.u8();
        x.tcp_flags.value = r.u8();
        const uint8_t flags = r.u8();
        x.fragment = flags & 1;
        if (flags & kLogBit)
            x.log_rate = r.u32();
        x.action.kind = ActionKind(r.u8());
        x.action.rate_pps = r.u64();
        x.action.burst = r.u64();
    }
    if (!r.done())
        fail("{} has bytes after its last rule", source);
    return p;
}

}  // namespace

Policy decode_policy(std::string_view image, const std::string& source, IifIndexes* resolved)
{
    return decode(image, source, resolved);
}

Policy decode_policy_leaving_sets(const std::shared_ptr<const ImageBytes>& image, const std::string& source,
                                  IifIndexes* resolved, const std::function<const ImageSet*(const std::string&)>& leave)
{
    return decode(image->view(), source, resolved, image, leave);
}

Policy decode_policy_leaving_sets(const std::shared_ptr<const std::string>& image, const std::string& source,
                                  IifIndexes* resolved, const std::function<const ImageSet*(const std::string&)>& leave)
{
    return decode_policy_leaving_sets(std::make_shared<const ImageBytes>(image), source, resolved, leave);
}

const std::vector<SetEntry>& set_entries(const PrefixSet& s, std::vector<SetEntry>& scratch)
{
    if (!s.undecoded)
        return s.entries;
    const UndecodedEntries& u = *s.undecoded;
    const std::string where = "the stored entries of set '" + s.name + "'";
    Reader r(std::string_view(u.image->bytes(u.offset, u.bytes), u.bytes), where);
    r.entries(scratch, u.count);
    if (!r.done())
        fail("{} are damaged: {} bytes for {} entries", where, u.bytes, u.count);
    return scratch;
}

void throw_damaged_entries(const UndecodedEntries& u, uint32_t entry)
{
    fail("the stored entries of a set are damaged at entry {} of {} ({} bytes)", entry, u.count, u.bytes);
}

bool undecoded_has_member(const UndecodedEntries& u, Family f)
{
    // IPv4 entries: 6 bytes each from the start; IPv6 ones, 18 each, after them.
    const bool v4 = f == Family::v4;
    const size_t size = v4 ? 6 : 18, from = v4 ? 0 : 6 * size_t(u.v4_count);
    const uint32_t n = v4 ? u.v4_count : u.count - u.v4_count;
    if (from + size * n > u.bytes)
        throw_damaged_entries(u, 0);
    // Read from the map a block at a time: the first entry is usually a member.
    constexpr uint32_t kBlock = 4096;
    for (uint32_t i = 0; i < n; i += kBlock) {
        const uint32_t k = std::min(kBlock, n - i);
        const char* p = u.image->bytes(u.offset + from + size * i, size * k);
        for (uint32_t j = 0; j < k; j++, p += size)
            if (!(p[0] & 0x80))
                return true;
    }
    return false;
}

void decode_entries(PrefixSet& s)
{
    if (!s.undecoded)
        return;
    std::vector<SetEntry> out;
    set_entries(s, out);
    s.entries = std::move(out);
    s.undecoded.reset();
}

}  // namespace xdpctl::policy

namespace xdpctl::policy {

ImageBytes::ImageBytes(std::shared_ptr<const std::string> whole)
    : whole_(std::move(whole)), data_(const_cast<char*>(whole_->data())), len_(whole_->size())
{
    // Never written: no chunk is left to load (loaded_ empty).
}

ImageBytes::ImageBytes(size_t len, uint32_t chunk_bytes, const std::vector<std::pair<size_t, size_t>>& holes,
                       ChunkReader read, uint32_t gen)
    : len_(len), chunk_bytes_(chunk_bytes), gen_(gen), read_(std::move(read))
{
    if (chunk_bytes_ <= sizeof(uint64_t))
        fail("the stored policy's map has values of {} bytes: too small for an image", chunk_bytes_);
    // Pages of its own, in 4 KiB pages (not the heap's 2 MiB ones): the holes' pages are
    // never touched, so never resident.
    mapped_ = std::max<size_t>(len_, 1);
    void* p = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        throw std::bad_alloc();
    madvise(p, mapped_, MADV_NOHUGEPAGE);  // advice: fine if refused
    data_ = static_cast<char*>(p);
    const auto chunks = uint32_t((len_ + sizeof(uint64_t) + chunk_bytes_ - 1) / chunk_bytes_);
    loaded_.assign(chunks, false);
    unloaded_ = chunks;
    const std::lock_guard lock(mu_);
    for (uint32_t c = 0; c < chunks; c++) {
        size_t from = 0, to = 0;
        chunk_span(c, from, to);
        if (std::none_of(holes.begin(), holes.end(),
                         [&](const auto& h) { return h.first <= from && to <= h.first + h.second; }))
            load_chunk(c);
    }
}

ImageBytes::~ImageBytes()
{
    if (mapped_)
        munmap(data_, mapped_);
}

void ImageBytes::chunk_span(uint32_t c, size_t& from, size_t& to) const
{
    // Image byte i is stored at i + 8: the first chunk starts with the image's length.
    const size_t s0 = size_t(c) * chunk_bytes_, s1 = std::min(s0 + chunk_bytes_, len_ + sizeof(uint64_t));
    from = std::max(s0, sizeof(uint64_t)) - sizeof(uint64_t);
    to = s1 - sizeof(uint64_t);
}

void ImageBytes::load_chunk(uint32_t c) const
{
    if (loaded_[c])
        return;
    if (scratch_chunk_ != c) {
        scratch_.resize(chunk_bytes_);
        scratch_chunk_ = UINT32_MAX;
        read_(c, scratch_.data());
        scratch_chunk_ = c;
    }
    size_t from = 0, to = 0;
    chunk_span(c, from, to);
    std::memcpy(data_ + from, scratch_.data() + (from + sizeof(uint64_t) - size_t(c) * chunk_bytes_), to - from);
    loaded_[c] = true;
    unloaded_--;
}

const char* ImageBytes::bytes(size_t offset, size_t n) const
{
    if (offset > len_ || n > len_ - offset)
        fail("the stored policy's bytes {}-{} are past its end ({} bytes)", offset, offset + n, len_);
    const std::lock_guard lock(mu_);
    if (unloaded_ && n)
        for (auto c = uint32_t((offset + sizeof(uint64_t)) / chunk_bytes_);
             size_t(c) * chunk_bytes_ < offset + n + sizeof(uint64_t); c++)
            load_chunk(c);
    return data_ + offset;
}

void ImageBytes::copy(size_t offset, char* out, size_t n) const
{
    if (offset > len_ || n > len_ - offset)
        fail("the stored policy's bytes {}-{} are past its end ({} bytes)", offset, offset + n, len_);
    const std::lock_guard lock(mu_);
    if (!unloaded_) {
        std::memcpy(out, data_ + offset, n);
        return;
    }
    while (n > 0) {
        const auto c = uint32_t((offset + sizeof(uint64_t)) / chunk_bytes_);
        size_t from = 0, to = 0;
        chunk_span(c, from, to);
        const size_t k = std::min(n, to - offset);
        if (loaded_[c]) {
            std::memcpy(out, data_ + offset, k);
        } else {
            if (scratch_chunk_ != c) {
                scratch_.resize(chunk_bytes_);
                scratch_chunk_ = UINT32_MAX;
                read_(c, scratch_.data());
                scratch_chunk_ = c;
            }
            std::memcpy(out, scratch_.data() + (offset + sizeof(uint64_t) - size_t(c) * chunk_bytes_), k);
        }
        out += k, offset += k, n -= k;
    }
}

std::optional<uint32_t> ImageBytes::lazy_generation() const
{
    const std::lock_guard lock(mu_);
    return unloaded_ ? std::optional<uint32_t>(gen_) : std::nullopt;
}

}  // namespace xdpctl::policy
