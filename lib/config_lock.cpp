#include "config_lock.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>

#include "error.h"

namespace xdpctl {

UniqueFd take_config_lock()
{
    UniqueFd fd{open("/run/xdpctl.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600)};
    if (!fd || flock(fd.get(), LOCK_EX) != 0)
        fail("cannot take the lock /run/xdpctl.lock: {}", errno_str(errno));
    return fd;
}

}  // namespace xdpctl
