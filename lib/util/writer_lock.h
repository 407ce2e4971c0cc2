// One xdpctl writer at a time on a host: every command that changes pins or maps (load,
// unload, rule, set, policy default, apply, lb vip/backend/decap) holds an exclusive flock on
// /run/xdpctl.lock while it runs. Readers (status, stats, export, rule list, lb list,
// explain) never take it.
//
// The wait for it is bounded (--wait, set_writer_wait): a writer that cannot have it in
// time fails with ExitCode::busy naming the holder, whose pid and command line are in the
// lock file while it holds it. The lock goes with the process (a SIGKILLed holder frees it).
#pragma once

#include <string>

namespace xdpctl {

inline constexpr const char* writer_lock_path = "/run/xdpctl.lock";
inline constexpr double default_writer_wait_s = 5;

// How long a writer waits for the lock (seconds, 0: one try), and the command line the
// holder shows to those who wait: both set once by main().
void set_writer_wait(double seconds);
void set_writer_command(const std::string& cmdline);

// Who holds the lock, as the holder wrote it: "PID: COMMAND", or "" when nobody wrote one.
std::string writer_lock_holder();

// What a store (policy::PolicyStore, lb::LbStore) is opened for: a writer holds the lock.
enum class Access { write, read };

// Holds the lock from construction to destruction. The holds of one process nest: the
// first takes the lock, the last one gone releases it (a load commits the policy again
// through PolicyStore, which holds it too). One process's holds are on one thread.
class WriterLock {
public:
    WriterLock();
    ~WriterLock();
    WriterLock(const WriterLock&) = delete;
    WriterLock& operator=(const WriterLock&) = delete;
};

}  // namespace xdpctl
