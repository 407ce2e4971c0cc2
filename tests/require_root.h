// Tests that load BPF programs or make namespaces need root. A developer without it gets a
// skip; CI runs as root, so there a skip would hide a broken setup and fails instead.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <string_view>

#include <gtest/gtest.h>

namespace xdpctl::test {

// True when running under CI (env CI == "true").
inline bool in_ci()
{
    const char* ci = std::getenv("CI");
    return ci && std::string_view(ci) == "true";
}

}  // namespace xdpctl::test

#define XDPCTL_REQUIRE_ROOT()                                                              \
    do {                                                                                   \
        if (::geteuid() != 0) {                                                            \
            if (::xdpctl::test::in_ci())                                                   \
                FAIL() << "this test needs root, and CI runs as root";                     \
            GTEST_SKIP() << "needs root (BPF programs, network namespaces)";              \
        }                                                                                  \
    } while (0)
