// The committed policy as xdpctl_psrc holds it: per generation, the binary image
// (policy_binary.h) in chunks of the map's value size, keyed (generation << 24) | chunk, the
// first chunk starting with the image's length (u64). Read by the chunk size the map has,
// not this build's, so an upgrade reads a table an xdpctl of another layout wrote.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "policy/rule.h"

namespace xdpctl::policy {

inline uint32_t stored_image_key(uint32_t gen, uint32_t chunk)
{
    return (gen << 24) | chunk;
}

// The image (or an older xdpctl's text) generation `gen` stored in the map `src_fd`; "" when
// none is stored (the empty policy). Throws when it is cut short. `sized`, when given, is
// called with the image's length before its buffer is made (PolicyStore::current() chooses
// its heap by it).
std::string read_stored_image(int src_fd, uint32_t gen, const std::function<void(uint64_t)>& sized = {});

// The policy such a stored image holds (text from an xdpctl before the binary image is
// parsed). Throws Error naming `source` when it does not decode.
Policy decode_stored(const std::string& stored, const std::string& source, IifIndexes* resolved = nullptr);

}  // namespace xdpctl::policy
