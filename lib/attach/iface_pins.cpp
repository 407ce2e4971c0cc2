#include "attach/iface_pins.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "util/error.h"
#include "attach/iface_ref.h"

namespace fs = std::filesystem;

namespace xdpctl {

IfacePins::IfacePins(const std::string& d)
    : dir(d),
      stats(dir + "/stats"),
      meta(dir + "/meta"),
      link_xdp(dir + "/link_xdp"),
      link_tc_in(dir + "/link_tc_in"),
      link_tc_eg(dir + "/link_tc_eg"),
      prog_tc_in(dir + "/prog_tc_in"),
      prog_tc_eg(dir + "/prog_tc_eg"),
      next(dir + "/next")
{
}

bool path_exists(const std::string& path)
{
    return access(path.c_str(), F_OK) == 0;
}

bool IfacePins::attached() const
{
    for (const auto* p : {&link_xdp, &link_tc_in, &link_tc_eg, &prog_tc_in, &prog_tc_eg})
        if (path_exists(*p))
            return true;
    return false;
}

std::optional<xdpctl_iface_meta> IfacePins::read_meta() const
{
    UniqueFd fd = open_pinned(meta);
    if (!fd)
        return std::nullopt;
    __u32 key = 0;
    xdpctl_iface_meta m{};
    if (bpf_map_lookup_elem(fd.get(), &key, &m) != 0 || m.abi_version == 0)
        return std::nullopt;
    return m;
}

UniqueFd open_pinned(const std::string& path)
{
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) {
        if (errno == ENOENT)
            return UniqueFd{};
        fail("cannot open pinned object {}: {}", path, errno_str(errno));
    }
    return UniqueFd{fd};
}

UniqueFd open_pinned_map(const std::string& dir, const char* name, const char* what)
{
    UniqueFd fd = open_pinned(dir + "/" + name);
    if (!fd)
        fail("the {} map {} is not pinned under {}", what, name, dir);
    return fd;
}

UniqueFd dup_map_fd(const bpf_map* map)
{
    const int fd = bpf_map__fd(map);
    if (fd < 0)
        fail("the map {} is not loaded", bpf_map__name(map));
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (d < 0)
        fail("cannot duplicate the fd of map {}: {}", bpf_map__name(map), errno_str(errno));
    return UniqueFd(d);
}

void pin_fd(int fd, const std::string& path)
{
    if (int err = bpf_obj_pin(fd, path.c_str()); err)
        fail("cannot pin {}: {}", path, errno_str(err));
}

void unpin(const std::string& path)
{
    if (unlink(path.c_str()) != 0 && errno != ENOENT)
        fail("cannot remove pin {}: {}", path, errno_str(errno));
}

void make_pin_dir(const std::string& dir)
{
    // Each missing directory 0700, as the pins in it are 0600: only root reads counters or
    // finds the maps. An unload elsewhere removes empty parents (netns/, if/): one it
    // removes between our mkdir of a parent and of its child makes the child's mkdir fail
    // with ENOENT. Retry.
    int err = 0;
    for (int i = 0; i < 5; i++) {
        err = 0;
        fs::path at;
        for (const auto& part : fs::path(dir)) {
            at /= part;
            if (mkdir(at.c_str(), 0700) == 0)
                continue;
            if (errno != EEXIST) {
                err = errno;
                break;
            }
            // Made 0755 by an older xdpctl: closed now (ours only, never bpffs's root).
            if (at.native().starts_with(kPinRoot))
                chmod(at.c_str(), 0700);
        }
        if (err != ENOENT)
            break;
    }
    if (err)
        fail("cannot create {}: {}", dir, errno_str(err));
}

void remove_pin_tree(const std::string& dir)
{
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (ec)
        fail("cannot remove {}: {}", dir, ec.message());
}

}  // namespace xdpctl
