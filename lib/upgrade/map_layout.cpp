#include "upgrade/map_layout.h"

#include <cerrno>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "util/error.h"

namespace xdpctl::upgrade {

std::string MapLayout::describe() const
{
    return fmt::format("type={} key={} value={} entries={} flags={:#x}", type, key_size, value_size,
                       max_entries, flags);
}

MapLayout map_layout(int fd, const std::string& what)
{
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_map_get_info_by_fd(fd, &info, &len) != 0)
        fail("cannot read the layout of {}: {}", what, errno_str(errno));
    return {info.type, info.key_size, info.value_size, info.max_entries, info.map_flags};
}

MapLayout declared_layout(const bpf_map* map)
{
    return {uint32_t(bpf_map__type(map)), bpf_map__key_size(map), bpf_map__value_size(map),
            bpf_map__max_entries(map), bpf_map__map_flags(map)};
}

}  // namespace xdpctl::upgrade
