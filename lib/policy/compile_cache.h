// The last commit's compile, kept for the next one to patch (compile_delta.h): each
// direction's tables and compact rows with the match print of the rule at each rank. It
// describes itself (the prints say which rules it compiled), so whichever commit wrote it, a
// commit patching it compiles its own rules exactly: one written by an earlier commit only
// makes the patch larger, or a whole compile. Kept in a file beside the writer lock (~0.7 MiB
// at 10,000 rules), naming the maps it is for.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/compiled_policy.h"
#include "policy/rank_gaps.h"

namespace xdpctl::policy {

inline constexpr const char* kCompileCachePath = "/run/xdpctl.compiled";

// Directions of fewer rules are compiled whole: ~1 ms at 1,000 rules, less than keeping them.
inline constexpr uint32_t kCachedRulesMin = 1000;

struct CachedDirection {
    std::vector<uint64_t> prints;  // per rank: match_print of its rule, 0 at a free rank
    CompiledDirection compiled;    // tables and rows; no base or anchored rows, no records
};

struct CompileCache {
    std::optional<CachedDirection> dir[2];
    // The ranks the commit gave both directions' rules (what PolicyMaps::active_ranks reads
    // back), and the commit count its flip gave: when the count is the one in force, these
    // are the ranks in force, taken from here rather than mapped from the rule records.
    RankHints ranks;
    uint64_t commits = 0;
    // The id of the map holding the policy it was compiled for (xdpctl_psrc): a cache of
    // other maps (another bpffs sharing /run, maps made again after an unload) is not read.
    uint32_t maps_id = 0;
};

// The address tables' part of what encode_compile_cache() keeps of `c`, encoded first: a
// commit's take_address_tables() empties them while the rest is encoded beside it.
struct CacheAddresses {
    std::string dir[2];
};
CacheAddresses cache_addresses(const CompiledPolicy& c, uint32_t min_rules = kCachedRulesMin);
// The directions of `c` worth keeping (at least kCachedRulesMin rules, none naming an
// interface, every address field whose rules name sets split by them: CompiledDirection::
// patchable) with their prints (CompiledDirection::match_prints), their
// address tables from `addresses` when given; "" when none is worth it. (`min_rules`: tests.)
// `commits`: the count the commit's flip gives (PolicyMaps::commits after it); `maps_id`:
// CompileCache::maps_id; `expect_bytes`: about how long it will be (the last one's length),
// reserved at once rather than grown by doubling (~2.7 MiB of fresh heap for a 0.7 MiB cache
// at 10,000 rules).
std::string encode_compile_cache(const CompiledPolicy& c, const CacheAddresses* addresses = nullptr,
                                 uint32_t min_rules = kCachedRulesMin, uint64_t commits = 0, uint32_t maps_id = 0,
                                 size_t expect_bytes = 0);
// The length of the kept compile's file, 0 if there is none.
size_t compile_cache_bytes(const std::string& path = kCompileCachePath);
// nullopt when `bytes` is not a whole cache of this build's layout.
std::optional<CompileCache> decode_compile_cache(std::string_view bytes);

// Reads kCompileCachePath (`path` for tests): nullopt when it is missing, not whole, or of
// maps other than `maps_id` (0: any).
std::optional<CompileCache> read_compile_cache(uint32_t maps_id = 0, const std::string& path = kCompileCachePath);
// Writes `bytes` there (removes it when empty); a failure is only not kept.
void write_compile_cache(const std::string& bytes, const std::string& path = kCompileCachePath);

}  // namespace xdpctl::policy
