#include "util/heap_pages.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>

#include "util/task_pool.h"

namespace xdpctl {

namespace {

bool g_allowed = false;
bool g_done = false;
// Where the heap's huge pages start, once set up: read by any thread that frees a block.
std::atomic<uintptr_t> g_marked{0};

constexpr uintptr_t kHuge = uintptr_t(2) << 20;

}  // namespace

void allow_huge_heap_pages()
{
    g_allowed = true;
    // One arena for every thread: the commit's threads (the compiler's, the store's, the
    // prints', ...) would each get an arena of their own, grown in 4 KiB pages (~500-1,000
    // faults of a `rule add` at 10,000 rules, ~1-1.5 ms of its CPU), where the main heap is
    // in huge pages. Before any thread allocates: glibc fixes the limit at its first arena.
    mallopt(M_ARENA_MAX, 1);
}

void heap_in_huge_pages(size_t expect_bytes)
{
    if (!g_allowed || g_done)
        return;
    g_done = true;
    // Blocks up to the limit from the heap, not each mapped on its own (glibc maps blocks from
    // 128 KiB up, each in 4 KiB pages); the heap grows by the whole limit at once and is not
    // trimmed back between phases (each trim would be faulted in again).
    const size_t pad = kHugeHeapBytes;
    if (!mallopt(M_MMAP_THRESHOLD, int(pad / 2)) || !mallopt(M_TOP_PAD, int(pad)) ||
        !mallopt(M_TRIM_THRESHOLD, int(2 * pad)))
        return;
    // Grown by a block just larger than the heap's free top: glibc writes the new top's
    // header right after the block, within a page of the old end, below the first 2 MiB page
    // marked. (A block of a fixed size put that header inside the marked range before the
    // advice: its 2 MiB page was then mapped in 4 KiB pages, ~330 faults of a `rule del` at
    // 10,000 rules.) Volatile, or the compiler drops the unused malloc.
    const uintptr_t before = reinterpret_cast<uintptr_t>(sbrk(0));
    void* volatile grow = std::malloc(mallinfo2().keepcost + 64);
    const uintptr_t after = reinterpret_cast<uintptr_t>(sbrk(0));
    const uintptr_t at = reinterpret_cast<uintptr_t>(grow);
    // Two pages past the old end: the top's header is in neither 2 MiB page marked.
    const uintptr_t start = (before + 2 * 4096 + kHuge - 1) & ~(kHuge - 1), end = after & ~(kHuge - 1);
    if (!grow || after <= before || end <= start || at >= start) {
        std::free(grow);
        return;
    }
    if (madvise(reinterpret_cast<void*>(start), end - start, MADV_HUGEPAGE) == 0)
        g_marked.store(start, std::memory_order_release);
    const size_t ahead = std::min<size_t>({expect_bytes, kPrefaultBytes, end - start}) & ~(kHuge - 1);
    if (ahead)
        run_detached([start, ahead] { madvise(reinterpret_cast<void*>(start), ahead, MADV_POPULATE_WRITE); });
    // The top, from where it starts now up to the marked pages, taken by a second block that
    // is kept with the first: the next blocks (the image, the decoded rules) come from 2 MiB
    // pages, not from the 4 KiB pages below. (Not by growing the first in place: a worker
    // allocating meanwhile may hold the memory right after it.) Never touched past their
    // headers, both stay virtual; the command exits without freeing them (volatile, as above).
    const uintptr_t top_at = reinterpret_cast<uintptr_t>(sbrk(0)) - mallinfo2().keepcost;
    void* volatile fill = start > top_at + 4096 ? std::malloc(start - top_at - 2 * sizeof(size_t)) : nullptr;
    (void)fill;
}

void* huge_heap_block(size_t bytes, size_t align)
{
    if (!g_marked.load(std::memory_order_acquire) || bytes > kHugeHeapBytes / 4)
        return nullptr;
    void* p = nullptr;
    if (posix_memalign(&p, std::max(align, sizeof(void*)), bytes) != 0)
        return nullptr;
    if (!in_huge_heap(p)) {  // glibc mapped it after all: the caller maps its own
        std::free(p);
        return nullptr;
    }
    return p;
}

bool in_huge_heap(const void* p)
{
    const uintptr_t at = reinterpret_cast<uintptr_t>(p), marked = g_marked.load(std::memory_order_acquire);
    return marked && at >= marked && at < reinterpret_cast<uintptr_t>(sbrk(0));
}

}  // namespace xdpctl
