#include "policy/grace_keeper.h"

#include <fcntl.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "util/after_exit.h"
#include "util/raw_syscall.h"
#include "util/unique_fd.h"
#include "util/writer_lock.h"

namespace xdpctl::policy {

namespace {

struct KeeperArgs {
    int rows_outer;
    int rows_inner;
    uint32_t gen;
    uint32_t mark;
    volatile uint32_t* settled;
};

// Runs in the keeper: raw system calls only (util/after_exit.h).
XDPCTL_NO_LIBC_STATE void keep(void* p)
{
    const KeeperArgs* a = static_cast<const KeeperArgs*>(p);
    const uint32_t key = a->gen;
    const uint32_t value = uint32_t(a->rows_inner);
    union bpf_attr attr;
    // Zeroed by hand: the compiler may make a call to libc's memset of a large initializer.
    for (size_t i = 0; i < sizeof(attr); i++)
        reinterpret_cast<volatile char*>(&attr)[i] = 0;
    attr.map_fd = uint32_t(a->rows_outer);
    attr.key = uint64_t(uintptr_t(&key));
    attr.value = uint64_t(uintptr_t(&value));
    attr.flags = BPF_ANY;
    // An update of an ARRAY_OF_MAPS element returns after synchronize_rcu(); putting the
    // active generation's rows map back into its slot changes nothing else.
    if (raw_syscall(SYS_bpf, BPF_MAP_UPDATE_ELEM, long(uintptr_t(&attr)), sizeof(attr)) != 0)
        return;
    uint32_t expect = 0;
    __atomic_compare_exchange_n(a->settled, &expect, a->mark, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

struct flock keeper_lock(short type)
{
    struct flock l{};
    l.l_type = type;
    l.l_whence = SEEK_SET;
    l.l_start = kGraceKeeperLockByte;
    l.l_len = 1;
    return l;
}

std::string first_line(const char* path)
{
    std::ifstream in(path);
    std::string s;
    std::getline(in, s);
    return s;
}

}  // namespace

bool grace_periods_expedited()
{
    return first_line("/sys/kernel/rcu_expedited") == "1" && first_line("/sys/kernel/rcu_normal") != "1";
}

bool grace_keeper_wanted()
{
    if (const char* e = std::getenv("XDPCTL_GRACE_KEEPER"))
        return std::string_view(e) == "1";
    return !grace_periods_expedited();
}

int start_grace_keeper(int rows_outer_fd, int rows_inner_fd, uint32_t gen, uint64_t commits,
                       volatile uint32_t* settled)
{
    // A description of its own: the writer's carries its flock, which must end with the
    // command, not with the keeper.
    UniqueFd lock(open(writer_lock_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    if (!lock)
        return -1;
    struct flock l = keeper_lock(F_RDLCK);
    if (fcntl(lock.get(), F_OFD_SETLK, &l) != 0)
        return -1;
    const KeeperArgs args{rows_outer_fd, rows_inner_fd, gen, settled_mark(commits), settled};
    // The keeper's copy of the descriptor holds the lock from here; this one is closed on
    // return, so the lock ends with the keeper.
    return run_after_exit(keep, &args, sizeof(args), {rows_outer_fd, rows_inner_fd, lock.get()});
}

void wait_for_grace_keepers()
{
    UniqueFd lock(open(writer_lock_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    if (!lock)
        return;  // no lock file: no keeper was started here
    struct flock l = keeper_lock(F_WRLCK);
    while (fcntl(lock.get(), F_OFD_SETLKW, &l) != 0)
        if (errno != EINTR)
            return;  // the caller waits on its own
    // Closing the description drops the lock.
}

}  // namespace xdpctl::policy
