// The heap of a short command that builds a small policy, in transparent huge pages.
// A `rule add` at 10,000 rules touches ~11 MiB of fresh memory (the image, the decoded rules,
// the compiler's rows and tables): ~2,900 faults of a 4 KiB page at ~1-2 us each where each
// fault is charged to a memory cgroup, ~25% of its CPU time. Grown in one step and marked
// for huge pages, the main heap takes a fault per 2 MiB, and the threads allocate from it
// too (~170 faults of a `rule add` remain: the program's start, the maps; ~270 of a `rule
// del`, whose command table is built before). Not for a
// policy with a large prefix set: its tables come from maps of their own, and a heap held in
// 2 MiB pages would keep more of its freed memory resident (the 256 MiB bar of issue 12).
#pragma once

#include <cstddef>

namespace xdpctl {

// Grows the main heap by kHugeHeapBytes at once and asks for it in huge pages (when this
// process allowed it, allow_huge_heap_pages()): for a caller about to build a small policy.
// Once a process; advice only (the kernel may ignore it). `expect_bytes`: about how much of
// it the caller will touch; that much (at most kPrefaultBytes) is faulted in by a worker of
// the task pool meanwhile, on another CPU: the kernel zeroes each 2 MiB page as it maps it
// (~0.15-0.2 ms a page on a PVM guest; calls cheap, no microcode), which the caller would
// otherwise wait for at its first touch.
inline constexpr size_t kHugeHeapBytes = size_t(64) << 20;
inline constexpr size_t kPrefaultBytes = size_t(16) << 20;
void heap_in_huge_pages(size_t expect_bytes = 0);
// A block of `bytes` (aligned to `align`) from the main heap once heap_in_huge_pages() has
// put it in huge pages, for HugePageAllocator: there the block is in 2 MiB pages already,
// often ones a worker faulted in ahead or that an earlier phase freed, where a mapping of
// its own is zeroed anew (a `rule add` at 10,000 rules built its 2.3 MiB source table in a
// fresh 4 MiB mapping). nullptr otherwise, or for a block near glibc's mapping threshold.
void* huge_heap_block(size_t bytes, size_t align);
// Whether `p` lies in the main heap: came from huge_heap_block(), not from a mapping.
bool in_huge_heap(const void* p);
// For a command that exits after one commit (xdpctl's `rule add`/`del`), before it starts a
// thread: its threads allocate from the main heap too (one arena). A daemon's heap, which
// lives on, keeps glibc's defaults.
void allow_huge_heap_pages();

}  // namespace xdpctl
