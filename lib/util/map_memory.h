// A BPF map's memory: what the kernel charges for it, and writes into an mmapable map's
// values that leave alone what already holds the bytes to be written.
#pragma once

#include <cstddef>
#include <cstdint>

namespace xdpctl {

// bpf_map_info does not carry it, the "memlock:" line of /proc/self/fdinfo/FD does.
uint64_t map_memlock(int fd);

// Copies `bytes` from `src` to `dst` (a mapped map's values) block by block, skipping the
// blocks that already hold them. A commit writes a generation that held the policy of two
// commits ago, which mostly equals the new one: reading a resident page costs less than
// dirtying it. Returns the bytes written.
size_t write_changed(void* dst, const void* src, size_t bytes);
// Zeroes `bytes` at `dst` the same way, skipping blocks that are zero already.
size_t zero_changed(void* dst, size_t bytes);

}  // namespace xdpctl
