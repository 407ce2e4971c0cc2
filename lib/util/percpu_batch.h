// Reading a whole per-CPU array map in batches (bpf_map_lookup_batch): the keys read and,
// for each, one value per possible CPU. For the counter maps, summed by their readers.
#pragma once

#include <bpf/bpf.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#include "util/error.h"

namespace xdpctl {

template <typename T>
struct PercpuRows {
    std::vector<uint32_t> keys;  // the first `n` hold the keys read
    std::vector<T> values;       // ncpu values per key, in key order
    uint32_t n = 0;
};

// Up to `entries` elements of the per-CPU array `fd`; `what` names the map in errors.
template <typename T>
PercpuRows<T> read_percpu_array(int fd, uint32_t entries, size_t ncpu, const char* what)
{
    PercpuRows<T> r;
    r.keys.resize(entries);
    r.values.resize(size_t(entries) * ncpu);
    uint32_t next = 0;
    bool first = true;
    while (r.n < entries) {
        __u32 count = entries - r.n;
        int err = bpf_map_lookup_batch(fd, first ? nullptr : &next, &next, r.keys.data() + r.n,
                                       r.values.data() + size_t(r.n) * ncpu, &count, nullptr);
        first = false;
        r.n += count;
        if (err) {
            if (errno == ENOENT)
                break;
            fail("cannot read {}: {}", what, errno_str(errno));
        }
    }
    return r;
}

}  // namespace xdpctl
