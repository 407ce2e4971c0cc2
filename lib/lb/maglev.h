// Weighted Maglev (Eisenbud et al., NSDI 2016): the lookup table a VIP's flows are spread
// with. Each backend walks its own permutation of the table's positions and claims the
// next free one; a backend of weight w takes w turns a round, so its share of the table is
// w / (sum of weights). Removing or adding a backend moves few other positions, since the
// others' permutations do not depend on it.
#pragma once

#include <cstdint>
#include <vector>

#include "abi/xdpctl_abi.h"

namespace xdpctl::lb {

struct MaglevBackend {
    uint32_t slot;    // what the table holds for it (the backend's slot in the BPF array)
    uint64_t key;     // what its permutation derives from: stable across slots and commits
    uint32_t weight;  // 0: not in the table (draining)
};

// True when n is a prime (table sizes must be: every skip then reaches every position).
bool is_prime(uint32_t n);

// The table of `size` entries (a prime): backend slots, or XDPCTL_LB_NO_BACKEND everywhere
// when no backend has a weight. Throws Error for a size that is not a prime.
std::vector<uint32_t> build_maglev(const std::vector<MaglevBackend>& backends, uint32_t size);

// The permutation key of a backend address (16 bytes, IPv4 in the first 4).
uint64_t maglev_key(const uint32_t addr[4]);

}  // namespace xdpctl::lb
