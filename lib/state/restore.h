// `xdpctl restore` (and xdpd at start): re-creates from the state directory what it
// records: the policy, the load balancer, xdpctl loaded on the recorded interfaces that
// exist and the decapsulators on theirs (docs/service.md, "Restore"). What is already in force is left as it is, so on a
// running system whose state equals the directory's it changes nothing.
#pragma once

#include <string>
#include <vector>

#include "state/state_dir.h"

namespace xdpctl::state {

struct RestoreReport {
    enum class Outcome { loaded, already_loaded, missing, failed };
    struct Iface {
        IfaceRecord rec;
        Outcome outcome = Outcome::missing;
        std::string detail;  // missing: what is missing; failed: the error
    };

    std::string dir;
    bool recorded = false;     // the directory has a manifest
    uint64_t generation = 0;
    bool policy_restored = false;
    size_t rules = 0, sets = 0;
    bool lb_restored = false;
    size_t vips = 0;
    std::vector<Iface> ifaces;
    struct Decap {
        DecapRecord rec;
        Outcome outcome = Outcome::missing;
        std::string detail;
    };
    std::vector<Decap> decaps;

    // Nothing was changed: the running system already had everything recorded (or nothing
    // was recorded).
    bool unchanged() const;
    // 0; 1 when a recorded interface was missing (skipped) or failed to load: the rest is
    // restored either way.
    int exit_code() const;
};

const char* outcome_name(RestoreReport::Outcome o);

// Holds the writer lock. Every file is read and checked before anything changes: a damaged
// one is an error naming it, with nothing done. Nothing is written to the directory.
RestoreReport restore_state(const StateDir& dir);

}  // namespace xdpctl::state
