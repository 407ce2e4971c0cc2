#include "util/heap_pages.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "util/task_pool.h"

namespace xdpctl {

namespace {

bool g_allowed = false;
bool g_done = false;

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
    const uintptr_t before = reinterpret_cast<uintptr_t>(sbrk(0));
    // More than the top holds: the heap grows by `pad`. Volatile, or the compiler drops the
    // unused malloc and free.
    void* volatile grow = std::malloc(pad / 4);
    const uintptr_t after = reinterpret_cast<uintptr_t>(sbrk(0));
    const uintptr_t start = (before + kHuge - 1) & ~(kHuge - 1), end = after & ~(kHuge - 1);
    if (end > start) {
        madvise(reinterpret_cast<void*>(start), end - start, MADV_HUGEPAGE);
        const size_t ahead = std::min<size_t>({expect_bytes, kPrefaultBytes, end - start}) & ~(kHuge - 1);
        if (ahead)
            run_detached([start, ahead] { madvise(reinterpret_cast<void*>(start), ahead, MADV_POPULATE_WRITE); });
    }
    // The block came from the start of the heap's free top, below the first huge page, where
    // the next blocks (the image, the decoded rules) would take 4 KiB faults: shrunk to end
    // there and kept, it leaves the top starting in huge pages. Never touched past its header,
    // it stays virtual; the command exits without freeing it.
    const uintptr_t at = reinterpret_cast<uintptr_t>(grow);
    if (grow && start > at + 4096 && start < at + pad / 4)
        (void)!std::realloc(grow, start - at - 2 * sizeof(size_t));
    else
        std::free(grow);
}

}  // namespace xdpctl
