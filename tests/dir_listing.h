// The names in a directory that start with a prefix, sorted: what the state tests check a
// commit left in the state directory.
#pragma once

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace xdpctl::test {

inline std::vector<std::string> files_starting(const std::string& dir, const std::string& prefix)
{
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.path().filename().string().rfind(prefix, 0) == 0)
            out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace xdpctl::test
