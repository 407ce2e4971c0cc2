// Prefix tables, the building block of prefix sets (`--src @SET`): a validating builder that
// lays out one table generation in the shape lib/bpf/prefix_table.h reads, the BPF map it
// lives in, and a plain reference lookup for the tests. Layout: the prefix-table section of
// lib/abi/xdpctl_abi.h; design, costs and figures: docs/prefix-sets.md.
#pragma once

#include <compare>
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>

#include "util/huge_page_allocator.h"
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "util/map_memory.h"
#include "abi/xdpctl_abi.h"
#include "util/unique_fd.h"

namespace xdpctl {

// An IPv6 address as two host-order halves, so that masks and order are integer operations.
struct Ip6 {
    uint64_t hi = 0;  // bits 0-63 (the first 8 bytes on the wire)
    uint64_t lo = 0;  // bits 64-127
    friend auto operator<=>(const Ip6&, const Ip6&) = default;
};

struct Prefix4 {
    uint32_t addr = 0;  // host order; bits past `len` are zero
    uint8_t len = 0;    // 0..32
    friend auto operator<=>(const Prefix4&, const Prefix4&) = default;
};

struct Prefix6 {
    Ip6 addr;          // bits past `len` are zero
    uint8_t len = 0;  // 0..128
    friend auto operator<=>(const Prefix6&, const Prefix6&) = default;
};

// What a lookup that ends on `prefix` returns: 1..XDPCTL_PFX_VALUE_MAX, or
// XDPCTL_PFX_EXCEPTED for a `!CIDR` (the range answers "excepted" unless a longer entry
// inside it says otherwise).
struct PrefixEntry4 {
    Prefix4 prefix;
    uint32_t value = 0;
};

struct PrefixEntry6 {
    Prefix6 prefix;
    uint32_t value = 0;
};

uint32_t mask4(unsigned len);
Ip6 mask6(unsigned len);
inline Ip6 operator&(Ip6 a, Ip6 b) { return {a.hi & b.hi, a.lo & b.lo}; }

// A prefix as a user writes it: "10.0.0.0/8", "2001:db8::/32", an address alone (/32 or
// /128), "!CIDR" for an exception. Host bits set ("10.1.2.3/8") are rejected, not
// normalised: in a block list that is more often a typo than a wish, and the error says
// which prefix was probably meant. Throws Error (usage) naming the token.
struct Cidr {
    bool v6 = false;
    bool except = false;
    Prefix4 p4;  // when !v6
    Prefix6 p6;  // when v6
};
Cidr parse_cidr(std::string_view text);
std::string to_string(const Prefix4& p);
std::string to_string(const Prefix6& p);

struct PrefixTableStats {
    size_t v4_prefixes = 0;
    size_t v6_prefixes = 0;
    size_t v4_l2_chunks = 0;  // 1 KiB each: one per /16 holding a prefix longer than /16
    size_t v4_l3_chunks = 0;  // 1 KiB each: one per /24 holding many prefixes longer than /24
    size_t v4_sparse_chunks = 0;  // 64 bytes each: one per /24 holding a few (XDPCTL_PFX_SPARSE)
    size_t v4_sparse16 = 0;  // 64 bytes each: one per /16 holding a few (XDPCTL_PFX_SPARSE16_STARTS)
    // Of the /16s and /24s above, those whose every address has one value, which the level
    // above then holds (its chunk or line counted but unreferenced): a member of a set
    // inside a member, a prefix inside one of the same value.
    size_t v4_settled = 0;
    size_t v6_hashed = 0;     // IPv6 prefixes longer than /16 (shorter ones live in level 1)
    size_t v6_markers = 0;    // hash entries that only steer the search on lengths
    size_t v6_buckets = 0;    // 64 bytes each, four 16-byte slots a bucket
    size_t v6_displaced = 0;  // entries in their second bucket: a probe for them reads two lines
    unsigned v6_lengths = 0;  // distinct IPv6 lengths longer than /16
    unsigned v6_tree_depth = 0;
    uint64_t bytes = 0;  // the array's values: lines * 64
};

struct PrefixTableLimits {
    // DIR tables grow with the number of distinct /16s and /24s that hold longer prefixes;
    // 1M random /32s would take over 1 GiB. Past the limit build() refuses, not the kernel.
    uint64_t max_bytes = uint64_t(1) << 30;
    // A /24 with few longer prefixes as a one-line sparse chunk (abi: XDPCTL_PFX_SPARSE).
    // Off for the programs of an older xdpctl, which do not know them.
    bool sparse = true;
    // A /16 with few longer prefixes as one sparse line at level 1 (abi:
    // XDPCTL_PFX_SPARSE16_STARTS): a policy's address tables, once every loaded program
    // reads them (ABI version 4). Not a set's table: `set add` patches its chunks in place.
    bool sparse16 = false;
};

// What a policy's address tables may hold, by what every loaded program reads (loaded_abi.h):
// 1 KiB chunks only (ABI version 1), sparse /24 lines too (2-3), sparse /16s too (4 on).
enum class TableLayout : uint8_t { chunks, sparse, sparse16 };
TableLayout table_layout(uint32_t abi);

// Where PrefixTable::build puts the lines, given how many there are: a new mmapable array
// of exactly that many zeroed lines (the caller's, which keeps it), or -1 for memory of the
// table's own. The build writes a map through at most 16 MiB of windows at a time: the
// kernel maps all of an array's pages at mmap time, so a 120 MiB table mapped whole would
// be 120 MiB more resident in this process.
using PrefixLineSink = std::function<int(uint64_t lines)>;

// One table generation, laid out line by line as the BPF array will hold it.
class PrefixTable {
public:
    // Longest prefix wins. Throws Error (usage) for a length out of range, host bits set,
    // a value out of range, one prefix given two different values, or a table over the
    // limit; the same prefix given twice with one value counts once. With a `sink`, the
    // lines go where it says (see PrefixLineSink).
    static PrefixTable build(std::span<const PrefixEntry4> v4, std::span<const PrefixEntry6> v6,
                             const PrefixTableLimits& limits = {}, const PrefixLineSink& sink = {});

    // Empty when the table was built in a sink's map.
    std::span<const xdpctl_pfx_line> lines() const { return lines_; }
    // The lines were built in the map a sink gave: the table holds none of them.
    bool sunk() const { return sunk_; }
    // Of a table built in a sink's map: its IPv4 level 1 (XDPCTL_PFX_L1_ENTRIES words, read
    // before the map was let go), which the datapath also reads from xdpctl_pl1.
    std::vector<uint32_t> take_sunk_l1() { return std::move(sunk_l1_); }
    // fill_prefix_table_map(map_fd, std::move(table)).
    void fill_map_and_release(int map_fd);
    const PrefixTableStats& stats() const { return stats_; }

private:
    std::vector<xdpctl_pfx_line, HugePageAllocator<xdpctl_pfx_line>> lines_;  // 77 MiB at 1M prefixes
    bool sunk_ = false;
    std::vector<uint32_t> sunk_l1_;
    PrefixTableStats stats_;
};

// The leaf all 256 words of an IPv4 level (a chunk, a /24's third level) are, if they are
// one: the level above then holds that leaf instead of a reference, and a lookup stops there,
// one dependent read (behind an inner map, one call) sooner. The build settles such levels;
// so do `set add`/`set del` in place (set_tables.cpp).
std::optional<uint32_t> one_leaf(std::span<const uint32_t, XDPCTL_PFX_CHUNK_WORDS> words);

// A BPF_F_MMAPABLE array map's values, mapped shared into this process while it lives.
class MappedMap {
public:
    explicit MappedMap(int map_fd);
    // Values [first, first + count) only, for values a whole number of pages apart; of
    // them, only the first `bytes` (rounded up to pages) when given.
    MappedMap(int map_fd, uint32_t first, uint32_t count, size_t bytes = 0);
    // The values in `parts` equal parts (a policy map's generations), none mapped until
    // part() asks for it. The kernel maps every page of a mapping at mmap time and unmaps
    // it again at munmap, so a map of which a command uses one generation, or none, costs
    // it only what it uses (~1 ms of a `rule add` at 10,000 rules where a page table
    // change goes through the hypervisor, a PVM guest; calls cheap, no microcode). The
    // range is reserved whole: values keep their indexes, and a page no part() mapped
    // faults. `map_fd` must outlive this.
    struct Parts {
        uint32_t n;
    };
    MappedMap(int map_fd, Parts parts);
    ~MappedMap();
    MappedMap(MappedMap&& o) noexcept
        : data_(std::exchange(o.data_, nullptr)), bytes_(std::exchange(o.bytes_, 0)),
          value_size_(o.value_size_), entries_(o.entries_), fd_(o.fd_), parts_(o.parts_),
          mapped_(o.mapped_), lock_(std::move(o.lock_))
    {
    }
    MappedMap(const MappedMap&) = delete;
    MappedMap& operator=(const MappedMap&) = delete;
    MappedMap& operator=(MappedMap&&) = delete;

    // Maps part `p` (of a map made with Parts) if no call did yet, and returns this map;
    // safe from several threads. A map made without Parts is mapped whole already.
    const MappedMap& part(uint32_t p) const;
    // All values as one span of T, for values exactly sizeof(T) apart.
    template <typename T>
    std::span<T> as() const
    {
        return {static_cast<T*>(data_), std::min(size_t(entries_) * value_size_, bytes_) / sizeof(T)};
    }
    // Value `i`, for any value type: values are value_size() apart.
    template <typename T>
    T& at(size_t i) const
    {
        return *reinterpret_cast<T*>(static_cast<char*>(data_) + i * value_size_);
    }
    // Bytes between values: the value size rounded up to 8, as the kernel lays arrays out.
    uint32_t value_size() const { return value_size_; }
    uint32_t entries() const { return entries_; }

private:
    void* data_ = nullptr;
    size_t bytes_ = 0;
    uint32_t value_size_ = 0;
    uint32_t entries_ = 0;
    int fd_ = -1;         // with Parts
    uint32_t parts_ = 0;  // 0: mapped whole
    mutable uint32_t mapped_ = 0;  // the parts mapped, a bit each
    mutable std::unique_ptr<std::mutex> lock_;
};

// The array map of one generation (BPF_F_MMAPABLE | BPF_F_INNER_MAP, exactly as many lines
// as the table), filled through mmap: ready to go into an ARRAY_OF_MAPS slot.
UniqueFd create_prefix_table_map(const PrefixTable& table);

// Copies the table into an existing mmapable array of lines at least as long (the
// benchmark's plain array). The lines past the table are zeroed.
void fill_prefix_table_map(int map_fd, const PrefixTable& table);
// The same for a table's lines as they are (refill_table_map's fallback, table_refill.h).
void fill_prefix_table_map(int map_fd, std::span<const xdpctl_pfx_line> lines);
// The same, giving the table's memory back as it goes (the table is empty after): a
// 1M-prefix table is ~60-120 MiB, and a commit need not hold it twice.
void fill_prefix_table_map(int map_fd, PrefixTable&& table);

// Points `slot` of the ARRAY_OF_MAPS `outer_fd` at `table_fd`: the switch to a generation,
// one map update. When it returns the kernel has waited (synchronize_rcu, done for every
// map-in-map update) for all programs that could still hold the old table, so the caller
// may close the old generation's fd and the kernel frees it.
void install_prefix_table(int outer_fd, uint32_t slot, int table_fd);

// Longest match the obvious way, independent of the tables: one exact-match hash per
// prefix length present, probed longest first. For tests and the benchmark's cross-check.
class PrefixReference {
public:
    PrefixReference(std::span<const PrefixEntry4> v4, std::span<const PrefixEntry6> v6);

    uint32_t lookup4(uint32_t addr) const;
    uint32_t lookup6(Ip6 addr) const;

private:
    struct Ip6Hash {
        size_t operator()(const Ip6& a) const noexcept
        {
            return size_t((a.hi * 0x9e3779b97f4a7c15ULL) ^ (a.lo * 0xc2b2ae3d27d4eb4fULL) ^
                          (a.hi >> 29));
        }
    };
    std::vector<std::pair<unsigned, std::unordered_map<uint32_t, uint32_t>>> v4_;  // longest first
    std::vector<std::pair<unsigned, std::unordered_map<Ip6, uint32_t, Ip6Hash>>> v6_;
};

}  // namespace xdpctl
