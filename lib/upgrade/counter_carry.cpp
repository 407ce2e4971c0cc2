#include "upgrade/counter_carry.h"

#include <algorithm>
#include <cerrno>

#include <bpf/bpf.h>

#include "stats/counters.h"
#include "util/error.h"
#include "upgrade/map_layout.h"

namespace xdpctl::upgrade {

namespace {
// A per-CPU value's stride in a lookup's buffer, in u64 words.
uint32_t stride_words(uint32_t value_size)
{
    return (value_size + 7) / 8;
}
}  // namespace

CounterCarry::CounterCarry(std::string name, UniqueFd from, UniqueFd to, uint64_t latest_words)
    : name_(std::move(name)), from_(std::move(from)), to_(std::move(to)), latest_(latest_words)
{
    const MapLayout a = map_layout(from_.get(), "the pinned " + name_);
    const MapLayout b = map_layout(to_.get(), "the new " + name_);
    if (a.type != BPF_MAP_TYPE_PERCPU_ARRAY || b.type != BPF_MAP_TYPE_PERCPU_ARRAY)
        fail("{}: only per-CPU counter arrays are carried across a layout change (pinned {}, new {})",
             name_, a.describe(), b.describe());
    keys_ = std::min(a.max_entries, b.max_entries);
    from_value_ = a.value_size;
    to_value_ = b.value_size;
    ncpu_ = size_t(possible_cpus());
}

std::vector<uint64_t> CounterCarry::read_all(int fd, uint32_t value_size) const
{
    const uint32_t w = stride_words(value_size);
    std::vector<uint64_t> all(size_t(keys_) * ncpu_ * w);
    for (uint32_t k = 0; k < keys_; k++)
        if (bpf_map_lookup_elem(fd, &k, all.data() + size_t(k) * ncpu_ * w) != 0)
            fail("cannot read {} entry {}: {}", name_, k, errno_str(errno));
    return all;
}

void CounterCarry::copy()
{
    copied_ = read_all(from_.get(), from_value_);
    const uint32_t fw = stride_words(from_value_), tw = stride_words(to_value_);
    const uint32_t common = std::min(fw, tw);
    std::vector<uint64_t> out(ncpu_ * tw);
    for (uint32_t k = 0; k < keys_; k++) {
        std::fill(out.begin(), out.end(), 0);
        for (size_t c = 0; c < ncpu_; c++)
            std::copy_n(copied_.data() + (size_t(k) * ncpu_ + c) * fw, common, out.data() + c * tw);
        if (bpf_map_update_elem(to_.get(), &k, out.data(), BPF_ANY) != 0)
            fail("cannot write {} entry {}: {}", name_, k, errno_str(errno));
    }
}

void CounterCarry::add_since_copy()
{
    const std::vector<uint64_t> now = read_all(from_.get(), from_value_);
    const uint32_t fw = stride_words(from_value_), tw = stride_words(to_value_);
    const uint32_t common = std::min(fw, tw);
    std::vector<uint64_t> cur(ncpu_ * tw);
    for (uint32_t k = 0; k < keys_; k++) {
        bool moved = false;
        for (size_t c = 0; c < ncpu_ && !moved; c++)
            for (uint32_t i = 0; i < common; i++)
                moved |= now[(size_t(k) * ncpu_ + c) * fw + i] != copied_[(size_t(k) * ncpu_ + c) * fw + i];
        if (!moved)
            continue;
        // The new programs count into `to` meanwhile: read it, add, write back. Nothing else
        // writes it from userspace (the writer lock), and a packet counted by the new
        // program between the read and the write is the one loss left: none when the
        // programs are swapped before this runs on a quiet key.
        if (bpf_map_lookup_elem(to_.get(), &k, cur.data()) != 0)
            fail("cannot read the new {} entry {}: {}", name_, k, errno_str(errno));
        for (size_t c = 0; c < ncpu_; c++)
            for (uint32_t i = 0; i < common; i++) {
                const size_t at = (size_t(k) * ncpu_ + c) * fw + i;
                uint64_t& to = cur[c * tw + i];
                to = (latest_ >> i) & 1 ? std::max(to, now[at]) : to + (now[at] - copied_[at]);
            }
        if (bpf_map_update_elem(to_.get(), &k, cur.data(), BPF_ANY) != 0)
            fail("cannot write the new {} entry {}: {}", name_, k, errno_str(errno));
    }
}

}  // namespace xdpctl::upgrade
