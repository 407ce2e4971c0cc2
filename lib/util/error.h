// The one error type of the library: a message for the user and the exit code it means.
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace xdpctl {

enum class ExitCode : int {
    ok = 0,
    runtime = 1,  // the system refused or failed: privileges, kernel, interface state
    usage = 2,    // the user's input was wrong
    busy = 75,    // another xdpctl held the writer lock past --wait (EX_TEMPFAIL: try again)
};

class Error : public std::runtime_error {
public:
    Error(ExitCode code, std::string msg) : std::runtime_error(std::move(msg)), code_(code) {}
    ExitCode code() const { return code_; }

private:
    ExitCode code_;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args)
{
    throw Error(ExitCode::runtime, fmt::format(f, std::forward<Args>(args)...));
}

template <typename... Args>
[[noreturn]] void fail_usage(fmt::format_string<Args...> f, Args&&... args)
{
    throw Error(ExitCode::usage, fmt::format(f, std::forward<Args>(args)...));
}

// strerror for a negative errno as libbpf returns it.
std::string errno_str(int neg_or_pos_errno);

}  // namespace xdpctl
