// The heap of a one-commit command in huge pages (lib/util/heap_pages.h): once set up, the
// blocks a command allocates come from the range marked for huge pages, and none of that
// range is mapped in 4 KiB pages. A 2 MiB page that glibc touched before the advice (the new
// top's header) would be: 4 KiB faults there cost a `rule del` at 10,000 rules ~330 faults.
// Each case runs in a child process: the setup is once a process and changes malloc's limits.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "util/heap_pages.h"
#include "util/huge_page_allocator.h"
#include "util/task_pool.h"

namespace {

bool thp_possible()
{
    std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string s;
    std::getline(f, s);
    return !s.empty() && s.find("[never]") == std::string::npos;
}

struct Marked {
    uintptr_t start = 0, end = 0;
    long rss_kib = -1, huge_kib = -1;
};

// The heap's range marked for huge pages ("hg" in its VmFlags), as /proc/self/smaps has it.
Marked marked_heap()
{
    std::FILE* f = std::fopen("/proc/self/smaps", "r");
    Marked m, cur;
    bool heap = false;
    char line[512];
    while (f && std::fgets(line, sizeof(line), f)) {
        unsigned long a = 0, b = 0;
        long kib = 0;
        if (std::sscanf(line, "%lx-%lx ", &a, &b) == 2 && std::strstr(line, " rw-p ")) {
            heap = std::strstr(line, "[heap]") != nullptr;
            cur = Marked{a, b};
        } else if (std::sscanf(line, "%lx-%lx ", &a, &b) == 2) {
            heap = false;
        } else if (heap && std::sscanf(line, "Rss: %ld kB", &kib) == 1) {
            cur.rss_kib = kib;
        } else if (heap && std::sscanf(line, "AnonHugePages: %ld kB", &kib) == 1) {
            cur.huge_kib = kib;
        } else if (heap && std::strncmp(line, "VmFlags:", 8) == 0 && std::strstr(line, " hg")) {
            m = cur;
        }
    }
    if (f)
        std::fclose(f);
    return m;
}

// Runs `body` in a child; its exit code is the number of failed checks (printed there).
int in_child(void (*body)(int&))
{
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
        int failed = 0;
        body(failed);
        std::fflush(nullptr);
        _exit(failed > 100 ? 100 : failed);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

#define CHILD_CHECK(cond, ...)                          \
    do {                                                \
        if (!(cond)) {                                  \
            std::fprintf(stderr, "child: " __VA_ARGS__); \
            std::fputc('\n', stderr);                   \
            failed++;                                   \
        }                                               \
    } while (0)

// Like a `rule add`: a worker allocating beside the setup (the pool's first task), then
// ~20 MiB of blocks written, past the range a worker faulted in ahead.
void blocks_after_setup(int& failed)
{
    xdpctl::allow_huge_heap_pages();
    std::vector<void*> early;
    for (int i = 0; i < 200; i++)
        early.push_back(std::malloc(512));  // a command's start: small blocks below
    xdpctl::Task<int> beside = xdpctl::run_beside([] {
        int n = 0;
        for (int i = 0; i < 2000; i++) {
            void* p = std::malloc(64 + i % 256);
            std::memset(p, 1, 64);
            n += static_cast<unsigned char*>(p)[0];
            std::free(p);
        }
        return n;
    });
    xdpctl::heap_in_huge_pages(size_t(8) << 20);
    std::vector<void*> blocks;
    for (int i = 0; i < 320; i++) {
        void* p = std::malloc(size_t(64) << 10);
        std::memset(p, 0x5a, size_t(64) << 10);
        blocks.push_back(p);
    }
    CHILD_CHECK(beside.get() == 2000, "the worker's blocks");
    const Marked m = marked_heap();
    CHILD_CHECK(m.start != 0, "no part of the heap is marked for huge pages");
    if (m.start == 0)
        return;
    const uintptr_t first = reinterpret_cast<uintptr_t>(blocks.front());
    CHILD_CHECK(first >= m.start && first < m.end, "the first block after the setup (%#lx) is not in the marked range %#lx-%#lx",
                static_cast<unsigned long>(first), static_cast<unsigned long>(m.start), static_cast<unsigned long>(m.end));
    CHILD_CHECK(m.huge_kib >= (long(20) << 10), "only %ld KiB of the marked range in huge pages", m.huge_kib);
    CHILD_CHECK(m.rss_kib == m.huge_kib, "%ld KiB of the marked range in 4 KiB pages", m.rss_kib - m.huge_kib);
    // The huge-page allocator's blocks (a 10,000-rule source table) come from that heap too,
    // and go back to it; those above a quarter of its growth are still mapped on their own.
    {
        std::vector<uint64_t, xdpctl::HugePageAllocator<uint64_t>> table(size_t(3) << 17);  // 3 MiB
        CHILD_CHECK(xdpctl::in_huge_heap(table.data()), "a 3 MiB table is not in the heap");
        std::vector<uint64_t, xdpctl::HugePageAllocator<uint64_t>> big(size_t(20) << 17);  // 20 MiB
        CHILD_CHECK(!xdpctl::in_huge_heap(big.data()), "a 20 MiB table is in the heap");
        CHILD_CHECK(reinterpret_cast<uintptr_t>(big.data()) % (size_t(2) << 20) == 0, "a mapped table is not 2 MiB-aligned");
    }
    for (void* p : blocks)
        std::free(p);
    for (void* p : early)
        std::free(p);
}

TEST(HeapPages, BlocksAfterTheSetupComeFromHugePagesOnly)
{
    if (!thp_possible())
        GTEST_SKIP() << "transparent huge pages are off on this machine ([never])";
    EXPECT_EQ(in_child(blocks_after_setup), 0) << "see the child's messages above";
}

// Without allow_huge_heap_pages() (a daemon's heap) nothing is marked.
void no_setup_unless_allowed(int& failed)
{
    xdpctl::heap_in_huge_pages(size_t(8) << 20);
    void* p = std::malloc(size_t(4) << 20);
    std::memset(p, 1, size_t(4) << 20);
    CHILD_CHECK(marked_heap().start == 0, "the heap was marked without allow_huge_heap_pages()");
    std::vector<uint64_t, xdpctl::HugePageAllocator<uint64_t>> table(size_t(3) << 17);
    CHILD_CHECK(!xdpctl::in_huge_heap(table.data()), "a table in a heap not set up");
    std::free(p);
}

TEST(HeapPages, NothingMarkedUnlessAllowed)
{
    EXPECT_EQ(in_child(no_setup_unless_allowed), 0) << "see the child's messages above";
}

}  // namespace
