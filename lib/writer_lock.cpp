#include "writer_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>

#include "error.h"
#include "system_checks.h"
#include "unique_fd.h"

namespace xdpctl {

namespace {

struct LockState {
    std::mutex m;
    UniqueFd fd;    // open while this process holds the lock
    int holds = 0;  // WriterLocks alive in this process
    double wait_s = default_writer_wait_s;
    std::string cmdline = "xdpctl";
};

LockState& state()
{
    static LockState s;
    return s;
}

// "pid N: COMMAND" of the holder, or "" when it wrote nothing (yet, or it is releasing it).
std::string read_holder(int fd)
{
    char buf[4096];
    ssize_t n = pread(fd, buf, sizeof(buf), 0);
    if (n <= 0)
        return "";
    std::string text(buf, size_t(n));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\0'))
        text.pop_back();
    return text;
}

// Best effort: the text serves only the message of a writer that gives up.
void write_holder(int fd, const std::string& cmdline)
{
    const std::string text = fmt::format("pid {}: {}\n", getpid(), cmdline);
    if (ftruncate(fd, 0) != 0)
        return;
    [[maybe_unused]] const ssize_t n = pwrite(fd, text.data(), text.size(), 0);
}

}  // namespace

void set_writer_wait(double seconds)
{
    std::lock_guard g(state().m);
    state().wait_s = seconds;
}

void set_writer_command(const std::string& cmdline)
{
    std::lock_guard g(state().m);
    state().cmdline = cmdline;
}

std::string writer_lock_holder()
{
    UniqueFd fd{open(writer_lock_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)};
    return fd ? read_holder(fd.get()) : "";
}

WriterLock::WriterLock()
{
    LockState& s = state();
    std::lock_guard g(s.m);
    if (s.holds > 0) {
        s.holds++;
        return;
    }
    require_privileges();  // say what is missing rather than "Permission denied"
    UniqueFd fd{open(writer_lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)};
    if (!fd)
        fail("cannot open the lock file {}: {}", writer_lock_path, errno_str(errno));
    // Polled rather than a blocking flock under a timer: no signal handler to install, and
    // a few ms of latency do not matter to a command that waits for another.
    using namespace std::chrono;
    const auto start = steady_clock::now();
    const auto deadline = start + duration_cast<steady_clock::duration>(duration<double>(s.wait_s));
    auto pause = milliseconds(1);
    while (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK)
            fail("cannot take the lock {}: {}", writer_lock_path, errno_str(errno));
        const auto now = steady_clock::now();
        if (now >= deadline) {
            const std::string holder = read_holder(fd.get());
            throw Error(ExitCode::busy,
                        fmt::format("another xdpctl ({}) holds {}; gave up after {:g} s (--wait)",
                                    holder.empty() ? "which did not say its pid yet" : holder,
                                    writer_lock_path, s.wait_s));
        }
        std::this_thread::sleep_for(std::min<steady_clock::duration>(pause, deadline - now));
        pause = std::min(pause * 2, milliseconds(20));
    }
    write_holder(fd.get(), s.cmdline);
    s.fd = std::move(fd);
    s.holds = 1;
}

WriterLock::~WriterLock()
{
    LockState& s = state();
    std::lock_guard g(s.m);
    if (--s.holds > 0)
        return;
    // Emptied before the lock goes, so that no waiter reads a holder that has left (if
    // this fails, the next holder overwrites it).
    [[maybe_unused]] const int rc = ftruncate(s.fd.get(), 0);
    s.fd.reset();  // closing the last descriptor releases the flock
}

}  // namespace xdpctl
