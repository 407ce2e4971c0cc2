#include "netns_lab.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "attach/iface_ref.h"
#include "util/unique_fd.h"

extern char** environ;

namespace fs = std::filesystem;

namespace xdpctl::test {

// ---- commands ---------------------------------------------------------------------------

namespace {

int track_child(pid_t pid);
void untrack_child(int slot);

std::string join(const std::vector<std::string>& argv)
{
    std::string s;
    for (const auto& a : argv)
        s += (s.empty() ? "" : " ") + a;
    return s;
}

// Reads both pipes until they close or the deadline passes; false on the deadline.
bool drain(int out_fd, int err_fd, std::string& out, std::string& err,
           std::chrono::steady_clock::time_point deadline)
{
    pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
    std::string* dst[2] = {&out, &err};
    int open_fds = 2;
    char buf[4096];
    while (open_fds > 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return false;
        int n = poll(fds, 2, int(left.count()));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw std::runtime_error(fmt::format("poll: {}", strerror(errno)));
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !fds[i].revents)
                continue;
            ssize_t r = read(fds[i].fd, buf, sizeof(buf));
            if (r > 0) {
                dst[i]->append(buf, size_t(r));
            } else if (r == 0 || errno != EINTR) {
                fds[i].fd = -1;
                open_fds--;
            }
        }
    }
    return true;
}

// PATH first, then the sbin directories: ip, tc and bpftool live there, and a PATH made
// for an unprivileged user may lack them.
std::string resolve_program(const std::string& name)
{
    if (name.find('/') != std::string::npos)
        return name;
    const char* env = std::getenv("PATH");
    std::string dirs = std::string(env ? env : "") +
                       ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    std::istringstream in(dirs);
    // A directory is "executable" too: /usr/lib/x86_64-linux-gnu/tc (iproute2's data), which
    // meson puts first in PATH for a test whose program is an argument, is not the tc to run.
    for (std::string dir; std::getline(in, dir, ':');) {
        std::string path = dir + "/" + name;
        struct stat st {};
        if (!dir.empty() && stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0)
            return path;
    }
    return name;  // posix_spawn reports it
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const CmdResult& r)
{
    os << "$ " << r.cmdline << "\nexit " << r.exit_code << (r.timed_out ? " (timed out)" : "")
       << "\n--- stdout:\n"
       << r.out << "--- stderr:\n"
       << r.err;
    return os;
}

CmdResult run_cmd(const std::vector<std::string>& argv, std::chrono::milliseconds limit)
{
    std::string exe = resolve_program(argv.at(0));
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);

    int out_pipe[2], err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0)
        throw std::runtime_error(fmt::format("pipe: {}", strerror(errno)));
    if (pipe2(err_pipe, O_CLOEXEC) != 0) {
        close(out_pipe[0]);
        close(out_pipe[1]);
        throw std::runtime_error(fmt::format("pipe: {}", strerror(errno)));
    }
    // posix_spawn rather than fork: the tests have threads, and only exec is safe after fork.
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
    // The cleanup signals wait until the child is tracked, so the handler sees every child;
    // the child itself starts with none blocked.
    sigset_t fatal, old_mask, none;
    sigemptyset(&fatal);
    for (int sig : {SIGTERM, SIGINT, SIGHUP})
        sigaddset(&fatal, sig);
    sigemptyset(&none);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    pthread_sigmask(SIG_BLOCK, &fatal, &old_mask);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, exe.c_str(), &fa, &attr, args.data(), environ);
    int tracked = rc == 0 ? track_child(pid) : -1;
    pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    close(out_pipe[1]);
    close(err_pipe[1]);
    if (rc != 0) {
        close(out_pipe[0]);
        close(err_pipe[0]);
        throw std::runtime_error(fmt::format("cannot run '{}': {}", join(argv), strerror(rc)));
    }

    CmdResult r;
    r.cmdline = join(argv);
    auto deadline = std::chrono::steady_clock::now() + limit;
    bool finished = drain(out_pipe[0], err_pipe[0], r.out, r.err, deadline);
    close(out_pipe[0]);
    close(err_pipe[0]);
    if (!finished) {
        r.timed_out = true;
        kill(pid, SIGKILL);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    untrack_child(tracked);
    r.exit_code = WIFEXITED(status) && !r.timed_out ? WEXITSTATUS(status) : -1;
    return r;
}

pid_t spawn_logged(const std::vector<std::string>& argv, const std::string& log_file,
                   const std::vector<std::string>& extra_env, bool append, const std::string& err_file)
{
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> env_s(extra_env);
    for (char** e = environ; *e; e++)
        env_s.emplace_back(*e);
    std::vector<char*> env;
    for (auto& e : env_s)
        env.push_back(e.data());
    env.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log_file.c_str(), O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC),
                                     0600);
    if (err_file.empty())
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
    else
        posix_spawn_file_actions_addopen(&fa, 2, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    // The child starts with no signal blocked, whatever the calling thread blocks.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    pid_t pid = -1;
    const int rc = posix_spawnp(&pid, args[0], &fa, &attr, args.data(), env.data());
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        throw std::runtime_error(fmt::format("cannot start {}: {}", argv[0], strerror(rc)));
    return pid;
}

std::string run_ok(const std::vector<std::string>& argv)
{
    CmdResult r = run_cmd(argv);
    if (r.exit_code != 0)
        throw std::runtime_error(fmt::format("'{}' failed: exit {}{}\n{}", join(argv),
                                             r.exit_code, r.timed_out ? " (timed out)" : "",
                                             r.err));
    return r.out;
}

std::string xdpctl_bin()
{
    const char* p = std::getenv("XDPCTL_BIN");
    if (!p || !*p)
        throw std::runtime_error("XDPCTL_BIN is not set (run the tests with 'meson test')");
    return p;
}

CmdResult xdpctl(const std::vector<std::string>& args)
{
    std::vector<std::string> argv{xdpctl_bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_cmd(argv);
}

namespace {

// The files write_temp_file made, removed when the test program exits normally (a failed
// assertion too); one killed by a signal leaves them, named by its pid.
std::vector<std::string>& temp_files()
{
    static std::vector<std::string> files;
    return files;
}

void remove_temp_files()
{
    for (const std::string& p : temp_files())
        ::unlink(p.c_str());
}

}  // namespace

std::string write_temp_file(const std::string& text, const std::string& tag)
{
    static int n = 0;
    if (n == 0) {
        temp_files();  // made before the handler is registered, so destroyed after it ran
        std::atexit(remove_temp_files);
    }
    std::string path = fmt::format("/tmp/xdpctl-test-{}-{}-{}.rules", tag, getpid(), n++);
    std::ofstream(path) << text;
    temp_files().push_back(path);
    return path;
}

std::string xdpctl_export()
{
    CmdResult r = xdpctl({"export"});
    if (r.exit_code != 0) {
        std::ostringstream os;
        os << r;
        throw std::runtime_error("xdpctl export failed: " + os.str());
    }
    return r.out;
}

void xdpctl_ok(const std::vector<std::string>& args)
{
    CmdResult r = xdpctl(args);
    ASSERT_EQ(r.exit_code, 0) << r;
}

nlohmann::json xdpctl_json(const std::vector<std::string>& args)
{
    CmdResult r = xdpctl(args);
    EXPECT_EQ(r.exit_code, 0) << r;
    return nlohmann::json::parse(r.out);
}

nlohmann::json xdpctl_lb_config()
{
    nlohmann::json lb = xdpctl_json({"lb", "list", "--json"});
    for (auto& v : lb["vips"]) {
        v.erase("packets");
        v.erase("bytes");
        for (auto& b : v["backends"]) {
            b.erase("packets");
            b.erase("bytes");
        }
    }
    lb.erase("counters");
    return lb;
}

void xdpctl_clear_policy()
{
    xdpctl_ok({"apply", write_temp_file("default pass\n", "empty-policy")});
}

// ---- counters ---------------------------------------------------------------------------

void PrintTo(const Ctr& c, std::ostream* os)
{
    *os << "{packets " << c.packets << ", bytes " << c.bytes << "}";
}

CounterMap StatsSnapshot::delta_to(const StatsSnapshot& after) const
{
    CounterMap d;
    for (const auto& [key, a] : after.counters) {
        Ctr b = get(key);
        if (a != b)
            d[key] = {a.packets - b.packets, a.bytes - b.bytes};
    }
    return d;
}

Ctr StatsSnapshot::get(const std::string& key) const
{
    auto it = counters.find(key);
    return it == counters.end() ? Ctr{} : it->second;
}

StatsSnapshot parse_stats_json(const std::string& json, const std::string& netns,
                               const std::string& ifname)
{
    auto j = nlohmann::json::parse(json);
    for (const auto& i : j.at("interfaces")) {
        if (i.at("netns") != netns || i.at("interface") != ifname)
            continue;
        StatsSnapshot s;
        for (const auto& [hook, groups] : i.at("hooks").items()) {
            s.hooks.push_back(hook);
            for (const auto& [group, names] : groups.items()) {
                if (group == "per_cpu")
                    continue;
                for (const auto& [name, v] : names.items())
                    s.counters[hook + "/" + group + "/" + name] = {v.at("packets").get<uint64_t>(),
                                                                   v.at("bytes").get<uint64_t>()};
            }
        }
        return s;
    }
    throw std::runtime_error(fmt::format("no entry for {} in netns '{}' in: {}", ifname, netns,
                                         json));
}

// ---- the lab ------------------------------------------------------------------------------

namespace {

// A test stopped at meson's time limit gets SIGTERM (and SIGKILL 0.5 s later): no
// destructor runs then, so a handler runs each live lab's cleanup as a shell command
// prepared in advance (fork and exec are all a signal handler may do).
struct EmergencyCleanup {
    std::atomic<bool> used{false};
    char cmd[2048] = {};
};
EmergencyCleanup g_cleanups[8];
// Commands running now: a load still going would pin after the cleanup removed the pins.
std::atomic<pid_t> g_children[8];

extern "C" void on_fatal_signal(int sig)
{
    for (auto& child : g_children) {
        pid_t pid = child.exchange(0);
        if (pid <= 0)
            continue;
        kill(pid, SIGKILL);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    for (auto& c : g_cleanups) {
        if (!c.used.load())
            continue;
        pid_t pid = fork();
        if (pid == 0) {
            const char* argv[] = {"/bin/sh", "-c", c.cmd, nullptr};
            execve("/bin/sh", const_cast<char**>(argv), environ);
            _exit(127);
        }
        int status;
        while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

}  // namespace

int register_emergency_cleanup(const std::string& cmd)
{
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa {};
        sa.sa_handler = on_fatal_signal;
        sigemptyset(&sa.sa_mask);
        for (int s : {SIGTERM, SIGINT, SIGHUP, SIGPIPE})  // SIGPIPE: output piped into `head`
            sigaction(s, &sa, nullptr);
    });
    static std::mutex m;
    std::lock_guard lock(m);
    for (int i = 0; i < int(std::size(g_cleanups)); i++) {
        auto& c = g_cleanups[i];
        if (c.used.load() || cmd.size() >= sizeof(c.cmd))
            continue;
        std::memcpy(c.cmd, cmd.c_str(), cmd.size() + 1);
        c.used.store(true);
        return i;
    }
    return -1;
}

void release_emergency_cleanup(int slot)
{
    if (slot >= 0)
        g_cleanups[slot].used.store(false);
}

namespace {

int track_child(pid_t pid)
{
    for (int i = 0; i < int(std::size(g_children)); i++) {
        pid_t none = 0;
        if (g_children[i].compare_exchange_strong(none, pid))
            return i;
    }
    return -1;
}

void untrack_child(int slot)
{
    if (slot >= 0)
        g_children[slot].store(0);
}

}  // namespace

namespace {

// The shared maps under /sys/fs/bpf/xdpctl/maps (the policy every interface runs) outlive
// each interface's unload by design. A test program whose loads created them removes them
// at its end, so that it leaves the host's bpffs as it found it: only when they were not
// there at its start and no interface is loaded any more (another user's would need them).
class RestoreBpffs : public ::testing::Environment {
public:
    void SetUp() override
    {
        had_root_ = fs::exists(kPinRoot);
        had_maps_ = fs::exists(shared_maps_dir());
    }

    void TearDown() override
    {
        std::error_code ec;
        auto empty_or_gone = [&](const std::string& d) {
            return !fs::exists(d, ec) || fs::is_empty(d, ec);
        };
        std::string root = kPinRoot;
        if (!had_maps_ && empty_or_gone(root + "/if") && empty_or_gone(root + "/netns"))
            fs::remove_all(shared_maps_dir(), ec);
        if (!had_root_) {
            rmdir((root + "/if").c_str());
            rmdir((root + "/netns").c_str());
            rmdir(root.c_str());
        }
    }

private:
    bool had_root_ = true;
    bool had_maps_ = true;
};

[[maybe_unused]] ::testing::Environment* const g_restore_bpffs =
    ::testing::AddGlobalTestEnvironment(new RestoreBpffs);

}  // namespace

std::string unique_ns_name(const std::string& suffix)
{
    static std::atomic<int> n{0};
    return fmt::format("xdpctl-t{}-{}{}", getpid(), n++, suffix);
}

NetnsLab::NetnsLab()
{
    std::string base = unique_ns_name("");
    peer_ = {base + "-p", "xl-peer", "02:00:00:00:00:0a", "198.18.0.1", "2001:2::1"};
    dut_ = {base + "-d", "xl-dut", "02:00:00:00:00:0b", "198.18.0.2", "2001:2::2"};
    std::string cmd = "exec >/dev/null 2>&1; PATH=$PATH:/usr/sbin:/sbin; ";
    if (const char* bin = std::getenv("XDPCTL_BIN"))
        cmd += fmt::format("'{}' -n {} unload {}; ", bin, dut_.ns, dut_.ifname);
    cmd += fmt::format("ip netns del {}; ip netns del {}", peer_.ns, dut_.ns);
    emergency_slot_ = register_emergency_cleanup(cmd);
    try {
        build();
    } catch (...) {
        teardown();
        throw;
    }
}

NetnsLab::~NetnsLab()
{
    teardown();
}

void NetnsLab::build()
{
    for (const LabEnd* e : {&peer_, &dut_}) {
        // Same pid as a killed earlier run: that run is dead, its namespace is stale.
        if (fs::exists("/run/netns/" + e->ns))
            run_cmd({"ip", "netns", "del", e->ns});
        run_ok({"ip", "netns", "add", e->ns});
        // "default" first: the veth made next takes its settings from it.
        run_ok({"ip", "netns", "exec", e->ns, "sysctl", "-q", "-w",
                "net.ipv6.conf.default.accept_ra=0", "net.ipv6.conf.all.accept_ra=0",
                "net.ipv6.conf.default.router_solicitations=0",
                "net.ipv6.conf.all.router_solicitations=0", "net.ipv6.conf.default.accept_dad=0",
                "net.ipv6.conf.all.accept_dad=0"});
    }
    // Made directly in the two namespaces: the host's namespace never sees the pair.
    run_ok({"ip", "-n", peer_.ns, "link", "add", peer_.ifname, "type", "veth", "peer", "name",
            dut_.ifname, "netns", dut_.ns});
    for (auto [self, other] : {std::pair{&peer_, &dut_}, std::pair{&dut_, &peer_}}) {
        const std::string& ns = self->ns;
        const std::string& dev = self->ifname;
        // NOARP: no ARP, no neighbour discovery and no solicited-node group (so no MLD
        // reports); addrgenmode none: no link-local address (so no router solicitation).
        run_ok({"ip", "-n", ns, "link", "set", "dev", dev, "address", self->mac, "addrgenmode",
                "none", "arp", "off"});
        run_ok({"ip", "-n", ns, "addr", "add", self->ipv4 + "/24", "dev", dev});
        run_ok({"ip", "-n", ns, "addr", "add", self->ipv6 + "/64", "dev", dev, "nodad"});
        // With NOARP the kernel would address frames to the device's own MAC; these win.
        for (const std::string* a : {&other->ipv4, &other->ipv6})
            run_ok({"ip", "-n", ns, "neigh", "replace", *a, "lladdr", other->mac, "dev", dev,
                    "nud", "permanent"});
        run_ok({"ip", "-n", ns, "link", "set", "dev", "lo", "up"});
    }
    run_ok({"ip", "-n", dut_.ns, "link", "set", "dev", dut_.ifname, "up"});
    run_ok({"ip", "-n", peer_.ns, "link", "set", "dev", peer_.ifname, "up"});
}

std::string NetnsLab::dut_pin_ns_dir() const
{
    auto id = named_netns_id(dut_.ns);
    if (!id)
        throw std::runtime_error("the lab's namespace " + dut_.ns + " is gone");
    return netns_pin_dir(*id);
}

std::string NetnsLab::dut_pin_dir() const
{
    return dut_pin_ns_dir() + "/if/" + dut_.ifname;
}

void NetnsLab::teardown() noexcept
{
    try {
        // While the namespace still exists, so that xdpctl detaches rather than only
        // unpinning defunct links.
        for (const LabEnd* e : {&dut_, &peer_}) {
            auto id = named_netns_id(e->ns);
            if (!id)
                continue;
            std::string pins = netns_pin_dir(*id);
            if (!fs::exists(pins))
                continue;
            std::error_code ec;
            for (const auto& d : fs::directory_iterator(pins + "/if", ec))
                try {
                    run_cmd({xdpctl_bin(), "-n", e->ns, "unload", d.path().filename().string()});
                } catch (...) {
                }
            if (fs::exists(pins)) {
                // What unload could not remove (a test that broke the pins on purpose).
                fs::remove_all(pins, ec);
                // Empty parents only: other users' pins keep theirs.
                remove_empty_pin_parents(pins);
            }
        }
    } catch (...) {
    }
    for (const LabEnd* e : {&peer_, &dut_}) {
        try {
            if (!e->ns.empty() && fs::exists("/run/netns/" + e->ns))
                run_cmd({"ip", "netns", "del", e->ns});
        } catch (...) {
        }
    }
    release_emergency_cleanup(emergency_slot_);
}

CmdResult NetnsLab::xdpctl_dut(const std::vector<std::string>& args) const
{
    std::vector<std::string> a{"-n", dut_.ns};
    a.insert(a.end(), args.begin(), args.end());
    return xdpctl(a);
}

CmdResult NetnsLab::load_result(const std::vector<std::string>& args) const
{
    std::vector<std::string> a{"load", dut_.ifname};
    a.insert(a.end(), args.begin(), args.end());
    return xdpctl_dut(a);
}

void NetnsLab::load(const std::vector<std::string>& args) const
{
    CmdResult r = load_result(args);
    if (r.exit_code != 0)
        throw std::runtime_error(fmt::format("xdpctl load failed: exit {}\n{}{}", r.exit_code,
                                             r.out, r.err));
}

StatsSnapshot NetnsLab::stats() const
{
    CmdResult r = xdpctl_dut({"stats", dut_.ifname, "--json"});
    if (r.exit_code != 0)
        throw std::runtime_error(fmt::format("xdpctl stats failed: exit {}\n{}", r.exit_code,
                                             r.err));
    return parse_stats_json(r.out, dut_.ns, dut_.ifname);
}

CounterMap NetnsLab::wait_delta(const StatsSnapshot& before,
                                const std::function<bool(const CounterMap&)>& done,
                                std::chrono::milliseconds limit) const
{
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        CounterMap d = before.delta_to(stats());
        if (done(d) || std::chrono::steady_clock::now() >= deadline)
            return d;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

void NetnsLab::ping_from_peer(const std::string& addr, int count) const
{
    // -W bounds the wait for the last reply; -i 0.01 keeps the run short (root only).
    run_ok({"ip", "netns", "exec", peer_.ns, "ping", "-q", "-n", "-c", std::to_string(count),
            "-i", "0.01", "-W", "2", addr});
}

void make_lab_state(const std::function<void(const std::vector<std::string>&)>& run)
{
    run({"rule", "add", "--id", "1", "--proto", "udp", "--dport", "9", "--action", "drop"});
    run({"rule", "add", "--id", "2", "--proto", "udp", "--dport", "10", "--action", "count"});
    run({"rule", "add", "--id", "4", "--proto", "udp", "--dport", "12", "--action", "count"});
    run({"set", "create", "big"});
    run({"set", "add", "big", "198.19.1.0/24"});
    run({"rule", "add", "--id", "3", "--src", "@big", "--proto", "tcp", "--dport", "80", "--action", "drop"});
    run({"lb", "vip", "add", kLabVip});
    run({"lb", "backend", "add", kLabVip, "198.19.10.1", "--mac", "02:00:00:00:0a:01"});
}

int udp_through(const NetnsLab& lab, uint16_t port, int n)
{
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    inet_pton(AF_INET, lab.dut().ipv4.c_str(), &to.sin_addr);
    auto sock = in_netns(lab.dut().ns, [&] {
        UniqueFd s{socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
        if (bind(s.get(), reinterpret_cast<const sockaddr*>(&to), sizeof(to)) != 0)
            throw std::runtime_error("bind failed");
        timeval tv{0, 200000};
        setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        return s;
    });
    in_netns(lab.peer().ns, [&] {
        UniqueFd s{socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
        for (int i = 0; i < n; i++)
            sendto(s.get(), "x", 1, 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to));
        return 0;
    });
    int got = 0;
    char buf[16];
    while (recv(sock.get(), buf, sizeof(buf), 0) > 0)
        got++;
    return got;
}

}  // namespace xdpctl::test
