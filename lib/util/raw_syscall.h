// System calls with no libc in between: no errno written, no thread-local storage read, no
// lock taken. For code that runs where libc's state is not its own (util/after_exit.h: a
// process sharing the memory of one that may have exited, or may still be running and
// reading its own errno).
#pragma once

#include <sys/syscall.h>

// For a function that runs where libc's state is not its own: no stack protector (its
// canary is read through the thread pointer, whose memory may be gone) and no sanitizer
// instrumentation (its runtime keeps per-thread state too).
#define XDPCTL_NO_LIBC_STATE \
    __attribute__((no_stack_protector)) __attribute__((no_sanitize("address"))) \
    __attribute__((no_sanitize("undefined")))

namespace xdpctl {

// The raw result: >= 0, or -errno.
[[gnu::always_inline]] inline long raw_syscall(long nr, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0)
{
#if defined(__x86_64__)
    long ret;
    register long r10 asm("r10") = a4;
    asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10) : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x8 asm("x8") = nr;
    register long x0 asm("x0") = a1;
    register long x1 asm("x1") = a2;
    register long x2 asm("x2") = a3;
    register long x3 asm("x3") = a4;
    asm volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
    return x0;
#else
#error "raw_syscall: no system call sequence for this architecture"
#endif
}

}  // namespace xdpctl
