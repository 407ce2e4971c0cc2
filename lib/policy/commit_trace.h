// Where a commit's time goes, for whoever asks (XDPCTL_TRACE_COMMIT=1 in the environment):
// one line on stderr per phase, in ms, then the map writer's own parts. Off, it costs a
// getenv per commit.
#pragma once

#include <cstdint>

#include "policy/policy_maps.h"

namespace xdpctl::policy {

class CommitTrace {
public:
    CommitTrace();
    // The time since the last mark (or since construction), under `phase`.
    void mark(const char* phase);
    void maps(const CommitTimes& t) const;

private:
    bool on_;
    uint64_t last_ns_;
};

}  // namespace xdpctl::policy
