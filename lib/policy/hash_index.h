// An integer key's 64-bit mix (bit_key) and an open-addressed index from such keys to ids
// (HashIndex): the compiler's row interning and class alignment, and the ranks a commit keeps
// (rank_gaps.cpp), each over ~10,000-100,000 ids, where a node-based map allocates a node each.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace xdpctl::policy {

// A row hash that one XOR updates when one bit changes: the port sweep changes a bit per
// range end and interns a row per interval; the address sweep's rows are a few ranks.
inline uint64_t bit_key(uint32_t i)
{
    uint64_t z = (uint64_t(i) + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// Row hash -> the classes with that hash, open addressing in one array: a field may have
// tens of thousands of classes, and a node-based map would allocate one node for each.
class HashIndex {
public:
    // Room for `expect` ids before the first growth (each rehashes all of them).
    explicit HashIndex(size_t expect = 512) : slots_(std::bit_ceil(std::max<size_t>(1024, 2 * expect + 2))) {}
    // Calls `f(id)` for each id stored with hash h until it returns true; returns that id, or
    // UINT32_MAX.
    template <typename F>
    uint32_t find(uint64_t h, F&& f) const
    {
        for (size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
            const Slot& s = slots_[i];
            if (s.id == kEmpty)
                return UINT32_MAX;
            if (s.h == h && f(s.id))
                return s.id;
        }
    }
    void add(uint64_t h, uint32_t id)
    {
        if (2 * (used_ + 1) > slots_.size()) {
            std::vector<Slot> old(slots_.size() * 2);
            old.swap(slots_);
            used_ = 0;
            for (const Slot& s : old)
                if (s.id != kEmpty)
                    add(s.h, s.id);
        }
        size_t i = h & (slots_.size() - 1);
        while (slots_[i].id != kEmpty)
            i = (i + 1) & (slots_.size() - 1);
        slots_[i] = {h, id};
        used_++;
    }

private:
    static constexpr uint32_t kEmpty = UINT32_MAX;
    struct Slot {
        uint64_t h = 0;
        uint32_t id = kEmpty;
    };
    std::vector<Slot> slots_;
    size_t used_ = 0;
};

}  // namespace xdpctl::policy
