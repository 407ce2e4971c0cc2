#include "util/input_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "util/error.h"
#include "util/unique_fd.h"

namespace xdpctl {

namespace {

// 1-based line of byte `pos`.
size_t line_of(const std::string& text, size_t pos)
{
    return size_t(std::count(text.begin(), text.begin() + std::ptrdiff_t(pos), '\n')) + 1;
}

void check_text(const std::string& path, const std::string& text, const InputLimits& l)
{
    if (auto nul = text.find('\0'); nul != std::string::npos)
        fail_usage("{}:{}: a NUL byte: a {} is text", path, line_of(text, nul), l.what);
    size_t start = 0, lineno = 1;
    while (start < text.size()) {
        size_t nl = text.find('\n', start);
        size_t end = nl == std::string::npos ? text.size() : nl;
        if (end - start > l.max_line)
            fail_usage("{}:{}: a line of {} bytes: lines of a {} are at most {} bytes", path,
                       lineno, end - start, l.what, l.max_line);
        start = end + 1;
        lineno++;
    }
}

}  // namespace

std::string read_input_file(const std::string& path, const InputLimits& l)
{
    UniqueFd fd{open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (!fd)
        fail_usage("cannot read {} '{}': {}", l.what, path, errno_str(errno));
    struct stat st {};
    if (fstat(fd.get(), &st) == 0 && S_ISDIR(st.st_mode))
        fail_usage("cannot read {} '{}': {}", l.what, path, errno_str(EISDIR));
    auto too_large = [&] {
        fail_usage("{} '{}' is over {} MiB: the most xdpctl reads", l.what, path, l.max_bytes >> 20);
    };
    if (S_ISREG(st.st_mode) && size_t(st.st_size) > l.max_bytes)
        too_large();  // without reading it first
    std::string out;
    char buf[1 << 16];
    while (true) {
        ssize_t n = read(fd.get(), buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail_usage("cannot read {} '{}': {}", l.what, path, errno_str(errno));
        if (n == 0)
            break;
        // Checked before the append: a device that never ends stops here.
        if (out.size() + size_t(n) > l.max_bytes)
            too_large();
        out.append(buf, size_t(n));
    }
    if (l.max_line)
        check_text(path, out, l);
    return out;
}

}  // namespace xdpctl
