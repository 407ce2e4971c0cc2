// Files that survive a crash whole: written to a temporary name, fsynced, renamed over the
// old one, and the directory fsynced, so that after a kill or a power cut the name holds the
// old bytes or the new ones, never a mix (docs/service.md, "Crash cases").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/unique_fd.h"

namespace xdpctl::state {

// A directory held open for durable writes into it; made (mode 0700, parents too) if missing.
// An existing one open to group or others is refused: what it holds is the host's firewall.
class DurableDir {
public:
    explicit DurableDir(const std::string& path);
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

    // `name` (mode 0600) holds `bytes` once this returns; call sync() before relying on the
    // rename itself being on disk.
    void write(const std::string& name, std::string_view bytes) const;
    // Cuts `name` (mode 0600, made if missing) to `at` bytes, appends `bytes` there and
    // fdatasyncs it: what lay past `at` (an append whose commit never came) is gone. False,
    // with nothing written, when it holds fewer than `at` bytes (damaged: not appendable).
    bool append(const std::string& name, uint64_t at, std::string_view bytes) const;
    // fsync of the directory: every rename and unlink before it is on disk.
    void sync() const;
    // Whether a name was made or renamed since the last sync(): an append to a file that
    // existed needs no fsync of the directory (a `set add`'s journal record).
    bool names_changed() const { return names_changed_; }
    void remove(const std::string& name) const;

private:
    std::string path_;
    UniqueFd fd_;
    mutable bool names_changed_ = false;
};

// The whole file; none when it does not exist. Throws naming the file on any other error.
std::optional<std::string> read_file_if_exists(const std::string& path);

// A 64-bit checksum of bytes (not cryptographic: it catches a damaged or cut file).
uint64_t checksum64(std::string_view bytes);
// Folds more words into a running checksum (for keys built from fields, not bytes).
uint64_t mix64(uint64_t h, uint64_t v);
// A cheaper fold for keys of many words (a set's entries, the rules): one multiply-xorshift a
// word, where mix64 is a chain of dependent multiplies (~40 ms for 1,000,000 prefixes, ~3
// with this); finish such a key with mix64.
inline uint64_t fold64(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

}  // namespace xdpctl::state
