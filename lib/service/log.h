// xdpd's log: one line per event on stderr, which systemd puts in the journal (the "<N>"
// prefix is the syslog priority the journal reads; a terminal shows it as it is).
#pragma once

#include <cstdio>

#include <fmt/format.h>

namespace xdpctl::service {

enum class LogLevel { error = 3, warning = 4, info = 6 };

template <typename... Args>
void log(LogLevel level, fmt::format_string<Args...> f, Args&&... args)
{
    fmt::print(stderr, "<{}>xdpd: {}\n", int(level), fmt::format(f, std::forward<Args>(args)...));
    std::fflush(stderr);
}

}  // namespace xdpctl::service
