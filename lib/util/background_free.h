// Freeing what a finished step built, off the caller's path. A commit at 10,000 rules
// leaves tens of thousands of heap blocks and a few large ones (given back with munmap) that
// took ~0.9 ms to free before the command could print and exit; a worker of the task pool
// (task_pool.h) frees them while the command goes on. In a command that exits right after,
// the kernel takes the memory back whole, freed or not; in a process that stays (xdpd), it
// is freed.
#pragma once

#include <utility>

#include "util/task_pool.h"

namespace xdpctl {

// Takes the values (moved from) and destroys them in a worker of the pool.
template <typename... T>
void free_in_background(T&&... values)
{
    run_detached([... held = std::move(values)]() {});
}

}  // namespace xdpctl
