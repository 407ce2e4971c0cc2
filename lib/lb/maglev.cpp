#include "lb/maglev.h"

#include <algorithm>
#include <numeric>

#include "util/error.h"

namespace xdpctl::lb {

bool is_prime(uint32_t n)
{
    if (n < 2)
        return false;
    for (uint32_t d = 2; uint64_t(d) * d <= n; d++)
        if (n % d == 0)
            return false;
    return true;
}

uint64_t maglev_key(const uint32_t addr[4])
{
    // The flow hash's mixer over the address words; the two halves seed offset and skip.
    uint64_t z = ((uint64_t(addr[0]) << 32) | addr[1]) * 0x9e3779b97f4a7c15ULL;
    z ^= xdpctl_lb_mix(((uint64_t(addr[2]) << 32) | addr[3]) ^ 0x6a09e667f3bcc909ULL);
    return xdpctl_lb_mix(z);
}

std::vector<uint32_t> build_maglev(const std::vector<MaglevBackend>& backends, uint32_t size)
{
    if (!is_prime(size) || size > XDPCTL_LB_RING_MAX)
        fail_usage("the Maglev table size {} is not a prime of at most {}", size, XDPCTL_LB_RING_MAX);
    std::vector<uint32_t> table(size, XDPCTL_LB_NO_BACKEND);

    struct Walk {
        uint32_t slot, weight;
        uint64_t offset, skip, next = 0;
    };
    std::vector<Walk> walks;
    for (const auto& b : backends) {
        if (b.weight == 0)
            continue;
        // Both from one 64-bit key: offset from the low half, skip (1..size-1) from the high.
        uint64_t h = xdpctl_lb_mix(b.key);
        walks.push_back({b.slot, b.weight, (h & 0xffffffffu) % size, ((h >> 32) % (size - 1)) + 1});
    }
    if (walks.empty())
        return table;
    // Turn order decides ties: by key, so the table depends on the set, not the list order.
    std::sort(walks.begin(), walks.end(), [](const Walk& a, const Walk& b) {
        return a.offset != b.offset ? a.offset < b.offset : a.skip != b.skip ? a.skip < b.skip : a.slot < b.slot;
    });
    // Weights over their gcd: a round is as short as the ratios allow.
    uint32_t g = 0;
    for (const auto& w : walks)
        g = std::gcd(g, w.weight);
    uint32_t filled = 0;
    while (true) {
        for (auto& w : walks) {
            for (uint32_t turn = 0; turn < w.weight / g; turn++) {
                // The next position of this backend's permutation that is still free. A prime
                // size and skip in [1, size) visit every position within `size` steps.
                uint64_t pos = (w.offset + w.next * w.skip) % size;
                while (table[pos] != XDPCTL_LB_NO_BACKEND) {
                    w.next++;
                    pos = (w.offset + w.next * w.skip) % size;
                }
                table[pos] = w.slot;
                w.next++;
                if (++filled == size)
                    return table;
            }
        }
    }
}

}  // namespace xdpctl::lb
