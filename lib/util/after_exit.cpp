#include "util/after_exit.h"

#include <sched.h>
#include <signal.h>
#include <sys/mman.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "util/raw_syscall.h"

namespace xdpctl {

namespace {

constexpr size_t kStackBytes = 64 << 10;
constexpr size_t kMaxKeep = 8;
constexpr size_t kMaxArg = 256;

// At the bottom of the child's stack mapping: all the child reads.
struct Start {
    void (*fn)(void*);
    int keep[kMaxKeep];  // ascending
    size_t n_keep;
    alignas(16) unsigned char arg[kMaxArg];
};

// The child shares the thread pointer of the thread that started it, whose memory may be
// gone by the time it runs.
XDPCTL_NO_LIBC_STATE int child_main(void* p)
{
    const Start* s = static_cast<const Start*>(p);
    // Every descriptor but the kept ones, in the gaps between them.
    unsigned lo = 0;
    for (size_t i = 0; i < s->n_keep; i++) {
        const unsigned fd = unsigned(s->keep[i]);
        if (fd > lo)
            raw_syscall(SYS_close_range, lo, fd - 1, 0);
        lo = fd + 1;
    }
    raw_syscall(SYS_close_range, lo, UINT_MAX, 0);
    s->fn(const_cast<unsigned char*>(s->arg));
    raw_syscall(SYS_exit, 0);
    return 0;
}

}  // namespace

int run_after_exit(void (*fn)(void*), const void* arg, size_t arg_bytes, std::initializer_list<int> keep)
{
    if (arg_bytes > kMaxArg || keep.size() > kMaxKeep)
        return -1;
    // Never unmapped: the child may run after this process's threads are gone, and the
    // pages go with the memory when the last user of it ends.
    void* stack = mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
        return -1;
    Start* s = static_cast<Start*>(stack);
    s->fn = fn;
    s->n_keep = 0;
    for (int fd : keep)
        if (fd >= 0)
            s->keep[s->n_keep++] = fd;
    std::sort(s->keep, s->keep + s->n_keep);
    std::memcpy(s->arg, arg, arg_bytes);
    // Signals blocked in the child from its first instruction: a handler of the command
    // would run libc code on the child's stack. The command's own mask is put back after.
    sigset_t all, was;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &was);
    // SIGCHLD as its exit signal, as a forked child's: init reaps it once the command is
    // gone (a caller still running when it ends may wait for it).
    const int pid = clone(child_main, static_cast<char*>(stack) + kStackBytes, CLONE_VM | SIGCHLD, s);
    pthread_sigmask(SIG_SETMASK, &was, nullptr);
    if (pid < 0)
        munmap(stack, kStackBytes);
    return pid;
}

}  // namespace xdpctl
