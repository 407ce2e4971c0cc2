// Per-CPU counter arrays carried into a map of another layout: each key both maps have,
// each CPU's value copied up to the shorter of the two value sizes (counter records only
// grow at their end; a new field starts at 0). Counting goes on in the old map until the
// programs are swapped, so the copy is made twice: once before the swap, then what the old
// map counted since, added once no program runs on it (exact counts).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/unique_fd.h"

namespace xdpctl::upgrade {

class CounterCarry {
public:
    // `latest_words`: bit i set when the record's u64 word i holds a time (the last hit), taken
    // as the later of both rather than added.
    CounterCarry(std::string name, UniqueFd from, UniqueFd to, uint64_t latest_words);

    // to = from, for every key and CPU; what was copied is remembered.
    void copy();
    // to += what `from` counted since copy(); after the swap and a grace period.
    void add_since_copy();
    const std::string& name() const { return name_; }

private:
    std::vector<uint64_t> read_all(int fd, uint32_t value_size) const;

    std::string name_;
    UniqueFd from_;
    UniqueFd to_;
    uint64_t latest_;
    uint32_t keys_ = 0, from_value_ = 0, to_value_ = 0;
    size_t ncpu_ = 0;
    std::vector<uint64_t> copied_;  // from's words at copy(): key, CPU, word
};

}  // namespace xdpctl::upgrade
