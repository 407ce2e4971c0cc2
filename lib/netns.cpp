#include "netns.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "error.h"

namespace xdpctl {

namespace {
std::string netns_path(const std::string& name)
{
    return "/run/netns/" + name;
}
}  // namespace

bool netns_exists(const std::string& name)
{
    return access(netns_path(name).c_str(), F_OK) == 0;
}

NetnsScope::NetnsScope(const std::string& name)
{
    if (name.empty())
        return;
    int target = open(netns_path(name).c_str(), O_RDONLY | O_CLOEXEC);
    if (target < 0) {
        if (errno == ENOENT)
            fail("network namespace '{}' not found (see 'ip netns list')", name);
        fail("cannot open network namespace '{}': {}", name, errno_str(errno));
    }
    orig_fd_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (orig_fd_ < 0) {
        int e = errno;
        close(target);
        fail("cannot open the current network namespace: {}", errno_str(e));
    }
    if (setns(target, CLONE_NEWNET) != 0) {
        int e = errno;
        close(target);
        close(orig_fd_);
        orig_fd_ = -1;
        fail("cannot enter network namespace '{}': {}", name, errno_str(e));
    }
    close(target);
}

NetnsScope::~NetnsScope()
{
    if (orig_fd_ < 0)
        return;
    // Failing to go back would leave every later step in the wrong namespace.
    if (setns(orig_fd_, CLONE_NEWNET) != 0) {
        std::perror("xdpctl: cannot return to the original network namespace");
        std::abort();
    }
    close(orig_fd_);
}

}  // namespace xdpctl
