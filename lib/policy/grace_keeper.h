// The grace period after a flip, waited out after the command that flipped has exited.
//
// A commit rewrites the generation not in force, which packets that started before the
// last flip may still read: so before it writes, one RCU grace period must have passed
// since that flip (PolicyMaps::settle). A command that commits and exits leaves that wait
// to the next commit, which starts it when it opens the store and runs it beside its read
// and compile. Where the kernel expedites grace periods (/sys/kernel/rcu_expedited 1) the
// wait is ~0.05 ms; with the kernel's default it is 8-20 ms, longer than all a small
// policy's commit does before it writes, so each such command waited for most of it.
//
// A keeper (util/after_exit.h) starts the wait at the flip instead, in a process that
// outlives the command, and marks the generation settled for that flip (`settled_mark`).
// The next commit finds the mark, or finds the keeper still waiting and waits for it to
// end (it started first, so it ends first), and only when neither is there waits itself.
//
// Keepers are told apart by an open file description lock on a byte of the writer lock
// file (util/writer_lock.h), far past its text: each keeper holds it shared until it ends
// (the kernel drops it however the keeper ends); a writer that finds the generation
// unsettled takes it exclusive, which waits for every keeper there is.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace xdpctl::policy {

// The byte of the writer lock file (util/writer_lock.h) the keepers lock: far past any
// holder text, which writers write and truncate; byte-range locks and the writers' flock
// do not interact.
inline constexpr off_t kGraceKeeperLockByte = off_t(1) << 40;

// Whether a command that exits after its commit leaves the wait to a keeper: where grace
// periods are not expedited, unless XDPCTL_GRACE_KEEPER says 1 (always) or 0 (never).
bool grace_keeper_wanted();

// xdpctl_pol_hdr.settled as a keeper writes it for the flip that made the count of commits
// `commits`: never 0 (not settled) nor 1 (settled by a writer itself, which holds the
// writer lock and so is never late).
constexpr uint32_t settled_mark(uint64_t commits)
{
    return 0x80000000u | uint32_t(commits & 0x7fffffffu);
}

// Whether a generation whose header says `settled` is settled, `commits` being the count in
// force: a keeper's mark of another flip is not (it may land after a later commit made the
// generation active again).
constexpr bool is_settled(uint32_t settled, uint64_t commits)
{
    return settled == 1 || settled == settled_mark(commits);
}

// Whether this kernel expedites grace periods (/sys/kernel/rcu_expedited 1, rcu_normal 0):
// then a keeper gains nothing.
bool grace_periods_expedited();

// Starts a keeper for the flip that made the count `commits` and `gen` active: it puts
// `rows_inner_fd` (the rows map in `gen`'s slot of `rows_outer_fd`) back into that slot,
// which returns after a grace period, then marks `*settled` (xdpctl_pol_hdr.settled of
// `gen`, in a mapping never unmapped) if it is still 0. For a process about to exit: the
// keeper holds its memory until it ends. Its pid, or -1 when none could be started (the
// next commit then waits itself).
int start_grace_keeper(int rows_outer_fd, int rows_inner_fd, uint32_t gen, uint64_t commits,
                       volatile uint32_t* settled);

// Returns when no keeper is running (at once when none is): the next commit, before it
// waits on its own.
void wait_for_grace_keepers();

}  // namespace xdpctl::policy
