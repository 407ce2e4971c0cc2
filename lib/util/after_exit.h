// Work that outlives the process that starts it, for a command that has done its part and
// exits: a child process that shares the command's memory (clone with CLONE_VM, no
// CLONE_THREAD), so starting it copies no page table, and the command's exit is reported
// to whoever waits for it while the child goes on. Once the command is gone the child is an
// orphan, which init reaps when it ends.
//
// The child runs `fn` on a stack of its own, with every signal blocked and no descriptor
// but `keep` (a pipe the command's caller reads to its end, or a lock the command held, is
// not kept open by it). `fn` may only make raw system calls (util/raw_syscall.h) and touch
// memory that stays mapped: the copy of `arg` it gets, and mappings the command never
// unmaps. libc's state (malloc, errno, stdio, locks) belongs to the command's threads,
// which may still be running or may be gone.
#pragma once

#include <cstddef>
#include <initializer_list>

namespace xdpctl {

// Starts the child; its pid, or -1 when it cannot be started (then nothing runs: whoever
// needs the work does it). `arg` (at most 256 bytes) is copied. The child's exit signal is
// SIGCHLD, as a forked child's: a caller that goes on may wait for it.
int run_after_exit(void (*fn)(void* arg), const void* arg, size_t arg_bytes, std::initializer_list<int> keep);

}  // namespace xdpctl
