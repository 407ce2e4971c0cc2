// What the fuzz targets share: the input as words (argv-like), and the rule that a parser
// may refuse input only with xdpctl::Error (anything else escaping is a finding: libFuzzer
// reports the uncaught exception), and must never crash or hit undefined behaviour.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace xdpctl::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size)
{
    return {reinterpret_cast<const char*>(data), size};
}

// Words separated by blanks or newlines, as a shell would hand them to xdpctl.
inline std::vector<std::string> words(std::string_view text)
{
    std::vector<std::string> out;
    std::string w;
    for (char c : text) {
        if (c == ' ' || c == '\n' || c == '\t') {
            if (!w.empty())
                out.push_back(std::move(w));
            w.clear();
        } else {
            w += c;
        }
    }
    if (!w.empty())
        out.push_back(std::move(w));
    return out;
}

// A property every accepted input must have (a round trip); aborts, for libFuzzer to report.
inline void require(bool ok, const char* what)
{
    if (!ok) {
        std::fprintf(stderr, "fuzz property broken: %s\n", what);
        std::abort();
    }
}

}  // namespace xdpctl::fuzz
