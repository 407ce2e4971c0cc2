// Network namespaces: entering one for the calling thread (returning to the original one
// when the scope ends), and telling them apart by identity rather than by name.
//
// Only the network namespace changes: the mount namespace, and so the host's bpffs with
// xdpctl's pins, stays (unlike `ip netns exec`, which remounts /sys and hides the host's
// bpffs).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace xdpctl {

// What the kernel identifies a network namespace by: the device and inode of its nsfs file
// (/proc/PID/ns/net, /run/netns/NAME). Names are only bind mounts of it: two containers may
// each call theirs anything, or nothing.
struct NetnsId {
    uint64_t dev = 0;
    uint64_t ino = 0;
    // "DEV-INO": a path component under the pin root
    std::string key() const;
    bool operator==(const NetnsId&) const = default;
};

// The calling thread's network namespace.
NetnsId current_netns_id();
// The namespace named NAME (/run/netns/NAME); none when there is no such name.
std::optional<NetnsId> named_netns_id(const std::string& name);
// Parses NetnsId::key(); none when it is not one.
std::optional<NetnsId> parse_netns_key(const std::string& key);

// Where a live namespace can be entered from.
struct NetnsLocation {
    bool here = false;    // the calling thread's namespace
    std::string name;     // its /run/netns name, if it has one
    std::string path;     // what to open to enter it (/run/netns/NAME or /proc/PID/ns/net)
};

// The namespace with this identity: the current one, a named one (/run/netns), or one a
// process is in (a container without a name); none when no longer exists.
std::optional<NetnsLocation> find_netns(const NetnsId& id);
// The named namespace (/run/netns/NAME), none when there is no such name.
std::optional<NetnsLocation> netns_by_name(const std::string& name);
// The /run/netns name of the current namespace, "" when none.
std::string current_netns_name();

class NetnsScope {
public:
    explicit NetnsScope(const std::string& name);  // empty name: stays where it is
    explicit NetnsScope(const NetnsLocation& where);
    ~NetnsScope();
    NetnsScope(const NetnsScope&) = delete;
    NetnsScope& operator=(const NetnsScope&) = delete;

private:
    void enter(const std::string& path, const std::string& label);
    int orig_fd_ = -1;
};

bool netns_exists(const std::string& name);

}  // namespace xdpctl
