// An allocator for the compiler's large buffers (the bitmap rows: tens of MiB at 10,000
// rules): blocks from 2 MiB up are mapped on their own and marked for transparent huge pages,
// so filling them takes a fault per 2 MiB, not per 4 KiB (on the development VM a 4 KiB
// fault costs ~1-2 us, and a `rule add` at 10,000 rules made ~12,000 of them). Smaller
// blocks come from the heap, and so do blocks up to 16 MiB in a command whose heap is in huge
// pages already (util/heap_pages.h).
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include "util/heap_pages.h"

namespace xdpctl {

template <typename T>
struct HugePageAllocator {
    using value_type = T;
    static constexpr size_t kHuge = size_t(2) << 20;

    HugePageAllocator() = default;
    template <typename U>
    HugePageAllocator(const HugePageAllocator<U>&) noexcept
    {
    }

    static size_t mapped_bytes(size_t n) { return (n * sizeof(T) + kHuge - 1) / kHuge * kHuge; }

    T* allocate(size_t n)
    {
        if (n * sizeof(T) < kHuge)
            return std::allocator<T>().allocate(n);
        if (void* p = huge_heap_block(n * sizeof(T), alignof(T)))
            return static_cast<T*>(p);
        const size_t bytes = mapped_bytes(n);
        // Over-map by one huge page and trim, for an aligned start.
        void* p = mmap(nullptr, bytes + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            throw std::bad_alloc();
        const uintptr_t start = reinterpret_cast<uintptr_t>(p);
        const uintptr_t aligned = (start + kHuge - 1) / kHuge * kHuge;
        if (aligned > start)
            munmap(p, aligned - start);
        if (const uintptr_t tail = start + bytes + kHuge - (aligned + bytes))
            munmap(reinterpret_cast<void*>(aligned + bytes), tail);
        madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);  // advice: may be ignored
        return reinterpret_cast<T*>(aligned);
    }

    void deallocate(T* p, size_t n) noexcept
    {
        if (n * sizeof(T) < kHuge)
            std::allocator<T>().deallocate(p, n);
        else if (in_huge_heap(p))
            std::free(p);
        else
            munmap(p, mapped_bytes(n));
    }

    template <typename U>
    bool operator==(const HugePageAllocator<U>&) const noexcept
    {
        return true;
    }
};

}  // namespace xdpctl
