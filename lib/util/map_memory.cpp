#include "util/map_memory.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>

namespace xdpctl {

namespace {

// A page: one compare decides whether a page is dirtied.
constexpr size_t kBlock = 4096;

}  // namespace

uint64_t map_memlock(int fd)
{
    std::ifstream f("/proc/self/fdinfo/" + std::to_string(fd));
    for (std::string line; std::getline(f, line);)
        if (line.rfind("memlock:", 0) == 0)
            return std::stoull(line.substr(8));
    return 0;
}

size_t write_changed(void* dst, const void* src, size_t bytes)
{
    auto* d = static_cast<char*>(dst);
    const auto* s = static_cast<const char*>(src);
    size_t written = 0;
    for (size_t at = 0; at < bytes; at += kBlock) {
        const size_t n = std::min(kBlock, bytes - at);
        if (std::memcmp(d + at, s + at, n) != 0) {
            std::memcpy(d + at, s + at, n);
            written += n;
        }
    }
    return written;
}

size_t zero_changed(void* dst, size_t bytes)
{
    static const char zero[kBlock] = {};
    auto* d = static_cast<char*>(dst);
    size_t written = 0;
    for (size_t at = 0; at < bytes; at += kBlock) {
        const size_t n = std::min(kBlock, bytes - at);
        if (std::memcmp(d + at, zero, n) != 0) {
            std::memset(d + at, 0, n);
            written += n;
        }
    }
    return written;
}

}  // namespace xdpctl
