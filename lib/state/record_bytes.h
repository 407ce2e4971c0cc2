// Fixed-width fields of the journals' records (set_journal.h, rules_journal.h), in the
// machine's byte order (little-endian where xdpctl runs): the state directory is read back
// only by the host that wrote it.
#pragma once

#include <cstring>
#include <string>
#include <string_view>

namespace xdpctl::state {

template <typename T>
void put_field(std::string& out, T v)
{
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out.append(b, sizeof(T));
}

// The field at byte `at` of `bytes`, which must hold it.
template <typename T>
T get_field(std::string_view bytes, size_t at)
{
    T v;
    std::memcpy(&v, bytes.data() + at, sizeof(T));
    return v;
}

}  // namespace xdpctl::state
