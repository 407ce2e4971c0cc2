#include "state/durable_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "util/error.h"

namespace xdpctl::state {

namespace {

void write_all(int fd, std::string_view bytes, const std::string& path)
{
    while (!bytes.empty()) {
        ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail("cannot write {}: {}", path, errno_str(errno));
        bytes.remove_prefix(size_t(n));
    }
}

}  // namespace

DurableDir::DurableDir(const std::string& path) : path_(path)
{
    std::error_code ec;
    const bool made = std::filesystem::create_directories(path, ec);
    if (ec)
        fail("cannot create the state directory {}: {}", path, ec.message());
    fd_ = UniqueFd{::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (!fd_)
        fail("cannot open the state directory {}: {}", path, errno_str(errno));
    // One it made is private; one it was given is not changed (`--state-dir /tmp` must not
    // make /tmp 0700), but refused when others can reach into it.
    struct stat st {};
    if (made ? ::fchmod(fd_.get(), 0700) != 0 : ::fstat(fd_.get(), &st) != 0)
        fail("cannot make {} private (mode 0700): {}", path, errno_str(errno));
    if (!made && (st.st_mode & 077))
        fail("the state directory {} is open to others (mode {:04o}): it must be 0700 ('chmod 700 {}')",
             path, st.st_mode & 07777, path);
}

void DurableDir::write(const std::string& name, std::string_view bytes) const
{
    // One writer at a time (the writer lock): a fixed temporary name is enough, and one a
    // killed writer left is truncated here or removed by the next clean-up.
    const std::string tmp = ".tmp." + name;
    UniqueFd f{::openat(fd_.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
    if (!f)
        fail("cannot create {}: {}", file(tmp), errno_str(errno));
    write_all(f.get(), bytes, file(tmp));
    if (::fsync(f.get()) != 0)
        fail("cannot write {} to disk (fsync): {}", file(tmp), errno_str(errno));
    if (::renameat(fd_.get(), tmp.c_str(), fd_.get(), name.c_str()) != 0)
        fail("cannot rename {} to {}: {}", file(tmp), name, errno_str(errno));
    names_changed_ = true;
}

bool DurableDir::append(const std::string& name, uint64_t at, std::string_view bytes) const
{
    UniqueFd f{::openat(fd_.get(), name.c_str(), O_WRONLY | O_CLOEXEC)};
    if (!f && errno == ENOENT) {
        f = UniqueFd{::openat(fd_.get(), name.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600)};
        names_changed_ = true;
    }
    if (!f)
        fail("cannot open {}: {}", file(name), errno_str(errno));
    struct stat st {};
    if (::fstat(f.get(), &st) != 0)
        fail("cannot read {}: {}", file(name), errno_str(errno));
    if (uint64_t(st.st_size) < at)
        return false;
    if (::ftruncate(f.get(), off_t(at)) != 0 || ::lseek(f.get(), off_t(at), SEEK_SET) < 0)
        fail("cannot cut {} to {} bytes: {}", file(name), at, errno_str(errno));
    write_all(f.get(), bytes, file(name));
    if (::fdatasync(f.get()) != 0)
        fail("cannot write {} to disk (fdatasync): {}", file(name), errno_str(errno));
    return true;
}

void DurableDir::sync() const
{
    if (::fsync(fd_.get()) != 0)
        fail("cannot write the directory {} to disk (fsync): {}", path_, errno_str(errno));
    names_changed_ = false;
}

void DurableDir::remove(const std::string& name) const
{
    if (::unlinkat(fd_.get(), name.c_str(), 0) != 0 && errno != ENOENT)
        fail("cannot remove {}: {}", file(name), errno_str(errno));
}

std::optional<std::string> read_file_if_exists(const std::string& path)
{
    UniqueFd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (!f) {
        if (errno == ENOENT)
            return std::nullopt;
        fail("cannot open {}: {}", path, errno_str(errno));
    }
    struct stat st {};
    if (::fstat(f.get(), &st) != 0)
        fail("cannot read {}: {}", path, errno_str(errno));
    std::string out(size_t(st.st_size), '\0');
    size_t got = 0;
    while (got < out.size()) {
        ssize_t n = ::read(f.get(), out.data() + got, out.size() - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail("cannot read {}: {}", path, errno_str(errno));
        if (n == 0)
            break;
        got += size_t(n);
    }
    out.resize(got);
    return out;
}

uint64_t mix64(uint64_t h, uint64_t v)
{
    // A multiply-xorshift round per word (the finalizer of SplitMix64 over h ^ v): ~1 ns a
    // word, so a 1,000,000-prefix set keys in a few milliseconds.
    uint64_t z = (h ^ v) + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t checksum64(std::string_view bytes)
{
    uint64_t h = mix64(0, bytes.size());
    size_t i = 0;
    for (; i + 8 <= bytes.size(); i += 8) {
        uint64_t w;
        std::memcpy(&w, bytes.data() + i, 8);
        h = mix64(h, w);
    }
    uint64_t tail = 0;
    std::memcpy(&tail, bytes.data() + i, bytes.size() - i);
    return mix64(h, tail);
}

}  // namespace xdpctl::state
