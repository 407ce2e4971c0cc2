#include "policy/commit_trace.h"

#include <sys/resource.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

#include <fmt/core.h>

namespace xdpctl::policy {

namespace {

uint64_t now_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

double ms(uint64_t ns) { return double(ns) / 1e6; }

// This process's resident and peak resident MiB (/proc/self/status), -1 if unreadable.
std::pair<long, long> rss_mib()
{
    long rss = -1, hwm = -1;
    if (FILE* f = std::fopen("/proc/self/status", "r")) {
        char line[256];
        while (std::fgets(line, sizeof(line), f)) {
            long kib = 0;
            if (std::sscanf(line, "VmRSS: %ld", &kib) == 1)
                rss = kib >> 10;
            else if (std::sscanf(line, "VmHWM: %ld", &kib) == 1)
                hwm = kib >> 10;
        }
        std::fclose(f);
    }
    return {rss, hwm};
}

}  // namespace

CommitTrace::CommitTrace() : on_(std::getenv("XDPCTL_TRACE_COMMIT") != nullptr), last_ns_(now_ns()) {}

void CommitTrace::mark(const char* phase)
{
    if (!on_)
        return;
    const uint64_t t = now_ns();
    const auto [rss, hwm] = rss_mib();
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    fmt::print(stderr, "commit: {:<18} {:8.2f} ms   rss {} MiB, peak {} MiB, faults {}\n", phase, ms(t - last_ns_), rss, hwm,
               ru.ru_minflt);
    last_ns_ = t;
}

void CommitTrace::maps(const CommitTimes& t) const
{
    if (!on_)
        return;
    fmt::print(stderr,
               "commit: maps: tables {:.2f} ms, rows+addr {:.2f} ms, install {:.2f} ms, flip {:.2f} ms, "
               "free {:.2f} ms; rows {} KiB{}{} ({} KiB changed, {} rows compared), addr {} KiB ({} refilled, {} kept, "
               "{} KiB written)\n",
               ms(t.tables_ns), ms(t.inner_ns), ms(t.install_ns), ms(t.flip_ns), ms(t.free_ns), t.rows_bytes >> 10,
               t.rows_reused ? " refilled" : "", t.rows_small ? " (small)" : "", t.rows_written >> 10, t.rows_compared,
               t.addr_bytes >> 10, t.addr_reused, t.addr_kept, t.addr_lines_written * 64 >> 10);
}

}  // namespace xdpctl::policy
