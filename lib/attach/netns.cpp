#include "attach/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "util/error.h"

namespace fs = std::filesystem;

namespace xdpctl {

namespace {
constexpr const char* kNamedNetnsDir = "/run/netns";

std::string netns_path(const std::string& name)
{
    return std::string(kNamedNetnsDir) + "/" + name;
}

std::optional<NetnsId> id_of(const std::string& path)
{
    struct stat st {};
    if (stat(path.c_str(), &st) != 0)
        return std::nullopt;
    return NetnsId{uint64_t(st.st_dev), uint64_t(st.st_ino)};
}

// The first name under /run/netns that is a bind mount of `id`.
std::string name_of(const NetnsId& id)
{
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(kNamedNetnsDir, ec))
        if (id_of(e.path().string()) == id)
            return e.path().filename().string();
    return "";
}
}  // namespace

std::string NetnsId::key() const
{
    return std::to_string(dev) + "-" + std::to_string(ino);
}

std::optional<NetnsId> named_netns_id(const std::string& name)
{
    return id_of(netns_path(name));
}

std::optional<NetnsId> parse_netns_key(const std::string& key)
{
    auto dash = key.find('-');
    if (dash == std::string::npos || dash == 0 || dash + 1 == key.size() ||
        key.find_first_not_of("0123456789-") != std::string::npos ||
        key.find('-', dash + 1) != std::string::npos)
        return std::nullopt;
    return NetnsId{std::strtoull(key.c_str(), nullptr, 10),
                   std::strtoull(key.c_str() + dash + 1, nullptr, 10)};
}

NetnsId current_netns_id()
{
    auto id = id_of("/proc/thread-self/ns/net");
    if (!id)
        fail("cannot read the current network namespace: {}", errno_str(errno));
    return *id;
}

std::string current_netns_name()
{
    return name_of(current_netns_id());
}

std::optional<NetnsLocation> find_netns(const NetnsId& id)
{
    if (current_netns_id() == id)
        return NetnsLocation{true, "", ""};
    if (std::string name = name_of(id); !name.empty())
        return NetnsLocation{false, name, netns_path(name)};
    // A container's namespace often has no name: any process inside it is a way in.
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc", ec)) {
        const std::string pid = e.path().filename().string();
        if (pid.find_first_not_of("0123456789") != std::string::npos)
            continue;
        std::string p = "/proc/" + pid + "/ns/net";
        if (id_of(p) == id)
            return NetnsLocation{false, "", p};
    }
    return std::nullopt;
}

std::optional<NetnsLocation> netns_by_name(const std::string& name)
{
    if (!netns_exists(name))
        return std::nullopt;
    return NetnsLocation{false, name, netns_path(name)};
}

bool netns_exists(const std::string& name)
{
    return access(netns_path(name).c_str(), F_OK) == 0;
}

NetnsScope::NetnsScope(const std::string& name)
{
    if (!name.empty())
        enter(netns_path(name), "'" + name + "'");
}

NetnsScope::NetnsScope(const NetnsLocation& where)
{
    if (!where.here)
        enter(where.path, where.name.empty() ? where.path : "'" + where.name + "'");
}

void NetnsScope::enter(const std::string& path, const std::string& label)
{
    int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (target < 0) {
        if (errno == ENOENT)
            fail("network namespace {} not found (see 'ip netns list')", label);
        fail("cannot open network namespace {}: {}", label, errno_str(errno));
    }
    orig_fd_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (orig_fd_ < 0) {
        int e = errno;
        close(target);
        fail("cannot open the current network namespace: {}", errno_str(e));
    }
    if (setns(target, CLONE_NEWNET) != 0) {
        int e = errno;
        close(target);
        close(orig_fd_);
        orig_fd_ = -1;
        fail("cannot enter network namespace {}: {}", label, errno_str(e));
    }
    close(target);
}

NetnsScope::~NetnsScope()
{
    if (orig_fd_ < 0)
        return;
    // Failing to go back would leave every later step in the wrong namespace.
    if (setns(orig_fd_, CLONE_NEWNET) != 0) {
        std::perror("xdpctl: cannot return to the original network namespace");
        std::abort();
    }
    close(orig_fd_);
}

}  // namespace xdpctl
