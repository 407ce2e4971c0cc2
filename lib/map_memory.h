// A BPF map's memory as the kernel charges it: bpf_map_info does not carry it, the
// "memlock:" line of /proc/self/fdinfo/FD does.
#pragma once

#include <cstdint>

namespace xdpctl {

uint64_t map_memlock(int fd);

}  // namespace xdpctl
