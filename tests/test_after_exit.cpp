// util/after_exit.h: a child sharing this process's memory runs the work with a copy of its
// argument and only the descriptors it was told to keep.
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "util/after_exit.h"
#include "util/raw_syscall.h"

namespace xdpctl::test {
namespace {

struct Report {
    int fd;       // where the child writes `byte`
    int hold;     // then it reads this to its end: it runs until the test lets it go
    char byte;
};

XDPCTL_NO_LIBC_STATE void report(void* p)
{
    const Report* r = static_cast<const Report*>(p);
    raw_syscall(SYS_write, r->fd, long(&r->byte), 1);
    char c;
    while (raw_syscall(SYS_read, r->hold, long(&c), 1) > 0) {
    }
}

// Whether `fd` reads to its end (EOF) within `ms`.
bool ends_within(int fd, int ms)
{
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, ms) != 1)
        return false;
    char c;
    return read(fd, &c, 1) == 0;
}

// The child writes the argument it was given into the kept pipe, and holds no copy of the
// other pipe's write end: a reader of that pipe sees its end once this process closes its
// own (a caller's `$(xdpctl ...)` does not wait for the child).
TEST(AfterExit, RunsWithItsArgumentAndOnlyTheDescriptorsKept)
{
    int kept[2], hold[2], other[2];
    ASSERT_EQ(pipe(kept), 0);
    ASSERT_EQ(pipe(hold), 0);
    ASSERT_EQ(pipe(other), 0);  // the highest descriptors: past every kept one
    Report r{kept[1], hold[0], 'k'};
    const int pid = run_after_exit(report, &r, sizeof(r), {kept[1], hold[0]});
    ASSERT_GT(pid, 0);
    r.byte = 'x';  // the child has its own copy
    char got = 0;
    EXPECT_EQ(read(kept[0], &got, 1), 1);
    EXPECT_EQ(got, 'k');
    // The child runs (it waits on `hold`), and holds no copy of other[1].
    close(other[1]);
    EXPECT_TRUE(ends_within(other[0], 5000)) << "the child kept a descriptor it was not told to keep";
    close(kept[1]);
    close(hold[0]);
    close(hold[1]);  // lets it go
    EXPECT_TRUE(ends_within(kept[0], 5000)) << "the child still holds the kept pipe after its work";
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(kept[0]);
    close(other[0]);
}

TEST(AfterExit, RefusesWhatItCannotCarry)
{
    char big[257] = {};
    EXPECT_EQ(run_after_exit(report, big, sizeof(big), {}), -1);
}

}  // namespace
}  // namespace xdpctl::test
