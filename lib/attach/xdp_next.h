// `load --next`: the XDP program xdpctl passes frames to. xdpctl's program tail-calls slot 0
// of its program array (xdpctl_next, pinned as the interface's `next`) where it would return
// XDP_PASS, as Katran's root program chains: an empty slot is XDP_PASS.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <linux/types.h>

#include "util/unique_fd.h"

namespace xdpctl {

struct NextProg {
    UniqueFd fd;
    __u32 id = 0;
    std::string name;
    bool frags = false;  // loaded multi-buffer (SEC("xdp.frags")): a tail call needs the same on both sides
};

// The program pinned at `path`; a usage error (exit 2) naming the problem when the pin is
// missing, is not a program, or is not an XDP program.
NextProg open_next_prog(const std::string& path);
// The program in a pinned xdpctl_next's slot (by its id); none when the pin or slot is empty.
// `kind`: find out `frags` too (two tiny probe programs are loaded for it).
std::optional<NextProg> pinned_next_prog(const std::string& map_pin, bool kind = true);
// Puts `prog` into slot 0 of the program array `map_fd` (or empties the slot, prog null).
// The kernel refuses a program of another kind than the array's owner (xdpctl's program):
// `owner_frags` says which xdpctl is, for the message.
void set_next_slot(int map_fd, const NextProg* prog, bool owner_frags, const std::string& where);

// Whether xdpctl's XDP program must be multi-buffer: an MTU over what one buffer holds on
// every driver (a standard frame's), or a multi-buffer next program. A usage error when the
// MTU needs multi-buffer and the next program is not.
bool xdp_needs_frags(uint32_t mtu, const NextProg* next, const std::string& where);

}  // namespace xdpctl
