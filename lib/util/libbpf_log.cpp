#include "util/libbpf_log.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <sstream>
#include <vector>

#include <bpf/libbpf.h>

namespace xdpctl {

namespace {
std::string g_captured;

int capture(enum libbpf_print_level,  const char* fmt, va_list args)
{
    va_list copy;
    va_copy(copy, args);
    int n = std::vsnprintf(nullptr, 0, fmt, copy);
    va_end(copy);
    if (n > 0) {
        std::vector<char> buf(n + 1);
        std::vsnprintf(buf.data(), buf.size(), fmt, args);
        // Verifier logs can be megabytes; the reason is at the end.
        if (g_captured.size() > (4u << 20))
            g_captured.erase(0, g_captured.size() - (1u << 20));
        g_captured.append(buf.data(), n);
        static const bool debug = std::getenv("XDPCTL_DEBUG") != nullptr;
        if (debug)
            std::fputs(buf.data(), stderr);
    }
    return 0;
}
}  // namespace

void libbpf_log_start()
{
    libbpf_set_print(capture);
    g_captured.clear();
}

std::string libbpf_verifier_reason(size_t max_lines)
{
    const std::string begin = "-- BEGIN PROG LOAD LOG --";
    const std::string end = "-- END PROG LOAD LOG --";
    size_t b = g_captured.rfind(begin);
    if (b == std::string::npos)
        return "";
    size_t e = g_captured.find(end, b);
    std::string log = g_captured.substr(b + begin.size(), e == std::string::npos ? std::string::npos
                                                                                 : e - b - begin.size());
    std::deque<std::string> tail;
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);) {
        if (line.empty())
            continue;
        tail.push_back(line);
        if (tail.size() > max_lines)
            tail.pop_front();
    }
    std::string out;
    for (const auto& l : tail)
        out += "  " + l + "\n";
    return out;
}

std::string libbpf_kernel_message()
{
    const std::string tag = "Kernel error message: ";
    size_t b = g_captured.rfind(tag);
    if (b == std::string::npos)
        return "";
    size_t e = g_captured.find('\n', b);
    return g_captured.substr(b + tag.size(), e == std::string::npos ? std::string::npos : e - b - tag.size());
}

}  // namespace xdpctl
