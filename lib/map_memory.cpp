#include "map_memory.h"

#include <fstream>
#include <string>

namespace xdpctl {

uint64_t map_memlock(int fd)
{
    std::ifstream f("/proc/self/fdinfo/" + std::to_string(fd));
    for (std::string line; std::getline(f, line);)
        if (line.rfind("memlock:", 0) == 0)
            return std::stoull(line.substr(8));
    return 0;
}

}  // namespace xdpctl
