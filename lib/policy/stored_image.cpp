#include "policy/stored_image.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <bpf/bpf.h>

#include "policy/policy_binary.h"
#include "policy/rule_parse.h"
#include "util/error.h"

namespace xdpctl::policy {

std::string read_stored_image(int src_fd, uint32_t gen, const std::function<void(uint64_t)>& sized)
{
    bpf_map_info info{};
    __u32 info_len = sizeof(info);
    if (bpf_map_get_info_by_fd(src_fd, &info, &info_len) != 0)
        fail("cannot read the layout of the stored policy's map: {}", errno_str(errno));
    if (info.value_size <= sizeof(uint64_t))
        fail("the stored policy's map has values of {} bytes: too small for an image", info.value_size);
    std::vector<uint8_t> chunk(info.value_size);
    uint32_t key = stored_image_key(gen, 0);
    if (bpf_map_lookup_elem(src_fd, &key, chunk.data()) != 0)
        return "";  // the empty policy is stored as no text (see PolicyStore::commit)
    uint64_t len = 0;
    std::memcpy(&len, chunk.data(), sizeof(len));
    if (len > uint64_t(info.max_entries) * info.value_size)
        fail("the stored policy of generation {} claims {} bytes, more than its map holds", gen, len);
    if (sized)
        sized(len);
    std::string text;
    text.reserve(len);
    size_t off = sizeof(len);
    for (uint32_t c = 0; text.size() < len; c++) {
        if (c > 0) {
            key = stored_image_key(gen, c);
            if (bpf_map_lookup_elem(src_fd, &key, chunk.data()) != 0)
                fail("the stored policy of generation {} is cut short (chunk {})", gen, c);
            off = 0;
        }
        size_t n = std::min<size_t>(len - text.size(), chunk.size() - off);
        text.append(reinterpret_cast<const char*>(chunk.data() + off), n);
    }
    return text;
}

Policy decode_stored(const std::string& stored, const std::string& source, IifIndexes* resolved)
{
    // Text: stored by an xdpctl from before the binary image (no resolved indexes).
    return is_policy_image(stored) ? decode_policy(stored, source, resolved) : parse_policy_text(stored, source);
}

}  // namespace xdpctl::policy
