// Freeing what a finished step built, off the caller's path. A commit at 10,000 rules
// leaves tens of thousands of heap blocks and a few large ones (given back with munmap) that
// took ~0.9 ms to free before the command could print and exit; a thread of its own frees
// them while the command goes on. In a command that exits right after, exit stops that thread
// and the kernel takes the memory back whole; in a process that stays (xdpd), it finishes.
#pragma once

#include <system_error>
#include <thread>
#include <utility>

namespace xdpctl {

// Takes the values (moved from) and destroys them in a detached thread. When no thread can
// be started, they are destroyed here, as they would have been.
template <typename... T>
void free_in_background(T&&... values)
{
    auto hold = [... held = std::move(values)]() {};
    try {
        std::thread(std::move(hold)).detach();
    } catch (const std::system_error&) {
    }
}

}  // namespace xdpctl
