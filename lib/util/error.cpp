#include "util/error.h"

#include <cstring>

namespace xdpctl {

std::string errno_str(int e)
{
    return std::strerror(e < 0 ? -e : e);
}

}  // namespace xdpctl
