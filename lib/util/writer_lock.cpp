#include "util/writer_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <mutex>
#include <thread>

#include "util/error.h"
#include "util/system_checks.h"
#include "util/unique_fd.h"

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

// The pid holding the flock on fd's file, from /proc/locks (0: none seen), for a holder that
// wrote no text: an xdpctl from before it did (during an upgrade), or one taking it now.
pid_t flock_holder_pid(int fd)
{
    struct stat st {};
    if (fstat(fd, &st) != 0)
        return 0;
    // "1: FLOCK  ADVISORY  WRITE PID MAJ:MIN:INODE 0 EOF"; waiters' lines have "->".
    const std::string file = fmt::format(" {:02x}:{:02x}:{} ", major(st.st_dev), minor(st.st_dev), st.st_ino);
    std::ifstream in("/proc/locks");
    for (std::string line; std::getline(in, line);) {
        const size_t at = line.find(file);
        if (at == std::string::npos || line.find("FLOCK") == std::string::npos ||
            line.find("->") != std::string::npos)
            continue;
        const size_t start = line.rfind(' ', at - 1) + 1;
        return pid_t(std::strtol(line.c_str() + start, nullptr, 10));
    }
    return 0;
}

std::string cmdline_of(pid_t pid)
{
    std::ifstream in(fmt::format("/proc/{}/cmdline", pid));
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!s.empty() && s.back() == '\0')
        s.pop_back();
    std::replace(s.begin(), s.end(), '\0', ' ');
    return s.empty() ? "?" : s;
}

// "pid N: COMMAND" of whoever holds the lock: its own text, else /proc's account of it.
std::string holder_of(int fd)
{
    std::string text = read_holder(fd);
    if (text.empty())
        if (pid_t pid = flock_holder_pid(fd); pid > 0)
            text = fmt::format("pid {}: {}", pid, cmdline_of(pid));
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
            const std::string holder = holder_of(fd.get());
            throw Error(ExitCode::busy,
                        fmt::format("another xdpctl ({}) holds {}; gave up after {:g} s (--wait)",
                                    holder.empty() ? "pid unknown" : holder,
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
