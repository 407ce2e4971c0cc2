// One writer at a time (lib/util/writer_lock.h), end to end: writers of every kind run at once and
// all land; a held lock makes each writer give up after --wait with exit 75 naming the
// holder's pid and command, while every reader goes on at once; a stopped xdpctl is named;
// writers SIGKILLed at random moments leave the next command working; pins are root's only.
//
// /run/xdpctl.lock is the host's: other test programs may hold it a moment, so the writers
// that must succeed wait long (--wait 120) and this test holds it itself with a long wait.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "netns_lab.h"
#include "policy/policy_store.h"
#include "util/unique_fd.h"
#include "util/writer_lock.h"

namespace xdpctl::test {
namespace {

using namespace std::chrono_literals;

const std::string long_wait = "120";

// Starts and ends with no policy and no VIP (both are the host's).
class WriterLockTest : public NoPolicyTest {
protected:
    void SetUp() override
    {
        NoPolicyTest::SetUp();
        if (!IsSkipped())
            clear_lb();
    }
    void TearDown() override
    {
        if (::geteuid() == 0)
            clear_lb();
        NoPolicyTest::TearDown();
    }
    static void clear_lb()
    {
        const nlohmann::json all = xdpctl_json({"lb", "list", "--json"});
        for (const auto& v : all["vips"])
            xdpctl_ok({"--wait", long_wait, "lb", "vip", "del", v["vip"].get<std::string>()});
    }
    static nlohmann::json rules() { return xdpctl_json({"rule", "list", "--json"}); }
};

// The lock held by this process (as a test holder, through the library) for the scope's life.
class HeldByTest {
public:
    HeldByTest()
    {
        set_writer_command("test holder");
        set_writer_wait(120);  // behind another test program's writer, if any
        lock_.emplace();
    }
    static std::string holder_text() { return fmt::format("pid {}: test holder", getpid()); }

private:
    std::optional<WriterLock> lock_;
};

double seconds_since(std::chrono::steady_clock::time_point t)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

TEST_F(WriterLockTest, HeldLockStopsEveryWriterNamingTheHolderAndNoReader)
{
    NetnsLab lab;
    const std::string ns = lab.dut().ns, ifname = lab.dut().ifname;
    xdpctl_ok({"rule", "add", "--src", "198.18.0.0/24", "--action", "drop"});
    xdpctl_ok({"lb", "vip", "add", "198.19.0.1:80/tcp"});
    const std::string file = write_temp_file("rule --src 198.18.1.0/24 --action drop\n", "lock-apply");
    const std::string before = exported();

    HeldByTest held;
    const std::vector<std::vector<std::string>> writers = {
        {"rule", "add", "--src", "198.18.2.0/24", "--action", "drop"},
        {"rule", "del", "1"},
        {"set", "create", "s1"},
        {"set", "add", "s1", "198.18.3.0/24"},
        {"policy", "default", "drop"},
        {"apply", file},
        {"lb", "vip", "add", "198.19.0.2:80/tcp"},
        {"lb", "backend", "add", "198.19.0.1:80/tcp", "198.19.10.1", "--mac", "02:00:00:00:0a:01"},
        {"lb", "vip", "del", "198.19.0.1:80/tcp"},
        {"-n", ns, "load", ifname},
        {"-n", ns, "unload", ifname},
        {"-n", ns, "lb", "decap", "attach", ifname, "198.19.0.9"},
        {"unload", "--all", "--yes"},
    };
    // All at once (the lock is polled, so waiting writers hold nothing another could name):
    // each must still wait out its own second, whatever the others do.
    std::vector<CmdResult> results(writers.size());
    std::vector<double> took_s(writers.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < writers.size(); i++)
        threads.emplace_back([&, i] {
            std::vector<std::string> args{"--wait", "1"};
            args.insert(args.end(), writers[i].begin(), writers[i].end());
            const auto start = std::chrono::steady_clock::now();
            results[i] = xdpctl(args);
            took_s[i] = seconds_since(start);
        });
    for (auto& t : threads)
        t.join();
    for (size_t i = 0; i < writers.size(); i++) {
        const CmdResult& r = results[i];
        const double took = took_s[i];
        EXPECT_EQ(r.exit_code, 75) << r;
        EXPECT_NE(r.err.find("xdpctl: another xdpctl (" + HeldByTest::holder_text() +
                             ") holds /run/xdpctl.lock; gave up after 1 s (--wait)"),
                  std::string::npos)
            << r;
        EXPECT_GE(took, 0.95) << r;  // it waited its second
        EXPECT_LT(took, 5.0) << r;   // and no more than about that
    }
    // A writer named after the subcommand (CLI11's place) and one with no wait at all.
    CmdResult r = xdpctl({"set", "create", "s2", "--wait", "0"});
    EXPECT_EQ(r.exit_code, 75) << r;
    EXPECT_NE(r.err.find("gave up after 0 s (--wait)"), std::string::npos) << r;

    // Readers never wait for the lock: each would hang until the lock goes (and time out).
    const std::vector<std::vector<std::string>> readers = {
        {"status"},
        {"status", "--json"},
        {"stats", "--all"},
        {"export"},
        {"rule", "list"},
        {"rule", "list", "--json"},
        {"set", "list"},
        {"lb", "list", "--json"},
        {"lb", "trace", "tcp 198.18.0.5:1000 -> 198.19.0.1:80"},
        {"explain", "tcp 198.18.0.2:1234 -> 198.19.0.1:80"},
        {"version"},
    };
    for (const auto& rd : readers) {
        std::vector<std::string> argv{xdpctl_bin()};
        argv.insert(argv.end(), rd.begin(), rd.end());
        CmdResult rr = run_cmd(argv, 20s);
        EXPECT_FALSE(rr.timed_out) << rr;
        EXPECT_EQ(rr.exit_code, 0) << rr;
    }
    EXPECT_EQ(exported(), before) << "a writer that gave up changed something";
}

TEST_F(WriterLockTest, BadWaitIsAUsageError)
{
    for (const std::string v : {"-1", "abc", "nan", "inf", "3601", ""})
        for (const auto& args : std::vector<std::vector<std::string>>{
                 {"--wait", v, "rule", "add", "--action", "drop"},
                 {"--wait=" + v, "rule", "add", "--action", "drop"},
                 {"set", "create", "w", "--wait", v}}) {
            CmdResult r = xdpctl(args);
            EXPECT_EQ(r.exit_code, 2) << r;
            EXPECT_NE(r.err.find("--wait"), std::string::npos) << r;
            EXPECT_NE(r.err.find("'" + v + "': expected seconds from 0 to 3600"), std::string::npos) << r;
        }
    EXPECT_EQ(exported(), "default pass\n");
}

// A holder that wrote no text (an xdpctl from before it did, holding the lock during an
// upgrade) is found in /proc/locks, and named with its command line.
TEST_F(WriterLockTest, HolderWithoutTextIsFoundInProcLocks)
{
    UniqueFd fd{open(writer_lock_path, O_RDWR | O_CLOEXEC)};
    ASSERT_TRUE(fd);
    ASSERT_EQ(flock(fd.get(), LOCK_EX), 0);  // the old way: no text (a killed holder's goes)
    ASSERT_EQ(ftruncate(fd.get(), 0), 0);
    CmdResult r = xdpctl({"--wait", "0.2", "set", "create", "old"});
    EXPECT_EQ(r.exit_code, 75) << r;
    EXPECT_NE(r.err.find(fmt::format("another xdpctl (pid {}: ", getpid())), std::string::npos) << r;
    EXPECT_NE(r.err.find("test_writer_lock"), std::string::npos) << r;
}

TEST_F(WriterLockTest, HoldsOfOneProcessNest)
{
    const auto refused = [] {
        CmdResult r = xdpctl({"--wait", "0", "set", "create", "nest"});
        return r.exit_code == 75 && r.err.find(HeldByTest::holder_text()) != std::string::npos;
    };
    {
        HeldByTest held;
        {
            WriterLock inner;  // a second hold: no deadlock, no second flock
            EXPECT_TRUE(refused());
        }
        EXPECT_TRUE(refused()) << "the inner hold's end released the outer one";
    }
    xdpctl_ok({"--wait", long_wait, "set", "create", "nest"});  // released with the last hold
    EXPECT_EQ(writer_lock_holder().find(HeldByTest::holder_text()), std::string::npos);
}

// A real xdpctl stopped (SIGSTOP) while it holds the lock is named with its command line.
TEST_F(WriterLockTest, StoppedWriterIsNamed)
{
    std::string text;
    for (int i = 0; i < 3000; i++)
        text += fmt::format("rule --src 198.18.{}.{}/32 --proto tcp --dport {} --action drop\n", i / 250,
                            i % 250, 1 + i % 60000);
    const std::string file = write_temp_file(text, "lock-stop");
    bool named = false;
    for (int attempt = 0; attempt < 5 && !named; attempt++) {
        std::atomic<bool> done{false};
        std::thread apply([&] {
            CmdResult r = xdpctl({"--wait", long_wait, "apply", file});
            EXPECT_EQ(r.exit_code, 0) << r;
            done = true;
        });
        // Its pid, from what it wrote into the lock file once it had the lock.
        pid_t pid = 0;
        std::string holder;
        while (!done) {
            holder = writer_lock_holder();
            if (holder.find(" apply " + file) != std::string::npos) {
                pid = std::stoi(holder.substr(4));
                break;
            }
            std::this_thread::sleep_for(1ms);
        }
        if (pid > 0 && !done && kill(pid, SIGSTOP) == 0) {
            std::this_thread::sleep_for(20ms);
            // Still its text: it stopped holding the lock (it empties the file as it lets go).
            if (writer_lock_holder() == holder) {
                CmdResult r = xdpctl({"--wait", "1", "rule", "add", "--action", "drop"});
                EXPECT_EQ(r.exit_code, 75) << r;
                EXPECT_NE(r.err.find(fmt::format("another xdpctl (pid {}: xdpctl --wait {} apply {})",
                                                 pid, long_wait, file)),
                          std::string::npos)
                    << r;
                named = true;
            }
            kill(pid, SIGCONT);
        }
        apply.join();
    }
    EXPECT_TRUE(named) << "the apply never held the lock long enough to be stopped";
    EXPECT_EQ(rules()["rules"].size(), 3000u);
    std::filesystem::remove(file);
}

// Every kind of writer at once (and readers among them): each succeeds, and the state is
// all of their changes. Among them the first guarantee: 8 concurrent `rule add` leave 8 rules.
TEST_F(WriterLockTest, ConcurrentWritersOfEveryKindAllLand)
{
    NetnsLab lab;
    const std::string ns = lab.dut().ns, ifname = lab.dut().ifname;
    std::vector<std::thread> threads;
    std::vector<CmdResult> results(64);
    std::atomic<size_t> next{0};
    const auto run = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {"--wait", long_wait});
        results[next++] = xdpctl(args);
    };
    for (int i = 0; i < 8; i++)
        threads.emplace_back([&, i] {
            run({"rule", "add", "--src", fmt::format("198.18.{}.0/24", i), "--action", "drop"});
        });
    for (int i = 0; i < 4; i++)
        threads.emplace_back([&, i] {
            run({"set", "create", fmt::format("s{}", i)});
            run({"set", "add", fmt::format("s{}", i), fmt::format("198.19.{}.0/24", i)});
        });
    for (int i = 0; i < 3; i++)
        threads.emplace_back([&, i] {
            const std::string vip = fmt::format("198.19.100.{}:80/tcp", i + 1);
            run({"lb", "vip", "add", vip});
            for (int b = 1; b <= 2; b++)
                run({"lb", "backend", "add", vip, fmt::format("198.19.{}.{}", 110 + i, b), "--mac",
                     fmt::format("02:00:00:00:{:02x}:{:02x}", i, b)});
        });
    threads.emplace_back([&] {
        run({"-n", ns, "load", ifname});
        run({"-n", ns, "unload", ifname});
        run({"-n", ns, "load", ifname, "--hook", "both"});
    });
    threads.emplace_back([&] {
        run({"policy", "default", "drop"});
    });
    for (int i = 0; i < 3; i++)
        threads.emplace_back([&] {
            for (const char* reader : {"export", "status"})
                results[next++] = xdpctl({reader});
        });
    for (auto& t : threads)
        t.join();
    ASSERT_EQ(next, 8u + 4 * 2 + 3 * 3 + 3 + 1 + 3 * 2);
    for (size_t i = 0; i < next; i++)
        EXPECT_EQ(results[i].exit_code, 0) << results[i];

    const nlohmann::json rl = rules();
    EXPECT_EQ(rl["default"], "drop");
    ASSERT_EQ(rl["rules"].size(), 8u) << rl.dump();
    std::set<uint32_t> ids;
    std::set<std::string> srcs;
    for (const auto& r : rl["rules"]) {
        ids.insert(r["id"].get<uint32_t>());
        srcs.insert(r["match"]["src"].get<std::string>());
    }
    EXPECT_EQ(ids.size(), 8u);
    EXPECT_EQ(srcs.size(), 8u);
    const nlohmann::json sets = xdpctl_json({"set", "list", "--json"});
    ASSERT_EQ(sets["sets"].size(), 4u) << sets.dump();
    for (const auto& s : sets["sets"])
        EXPECT_EQ(s["ipv4"], 1) << s.dump();
    const nlohmann::json lb = xdpctl_json({"lb", "list", "--json"});
    ASSERT_EQ(lb["vips"].size(), 3u) << lb.dump();
    for (const auto& v : lb["vips"])
        EXPECT_EQ(v["backends"].size(), 2u) << v.dump();
    const nlohmann::json st = xdpctl_json({"status", "--json"});
    EXPECT_NE(st.dump().find(ifname), std::string::npos) << st.dump();
    xdpctl_ok({"--wait", long_wait, "-n", ns, "unload", ifname});
}

// Readers during a stream of commits (no lock between them): each sees one committed policy,
// whole (its export applies as it is), and never fewer rules than the one before it.
TEST_F(WriterLockTest, ReadersDuringCommitsSeeWholePolicies)
{
    std::string sets;
    for (int i = 0; i < 2000; i++)  // a stored image of some size: reads take a while
        sets += fmt::format("set big 198.18.{}.{}/32\n", i / 250, i % 250);
    xdpctl_ok({"--wait", long_wait, "apply", write_temp_file("set big\n" + sets, "lock-readers")});
    std::atomic<bool> done{false};
    std::thread writer([&] {
        for (int i = 0; i < 40; i++) {
            CmdResult r = xdpctl({"--wait", long_wait, "rule", "add", "--src",
                                  fmt::format("198.19.{}.0/24", i), "--action", "drop"});
            EXPECT_EQ(r.exit_code, 0) << r;
        }
        done = true;
    });
    const auto rules_in = [](const std::string& exported) {
        size_t n = 0;
        for (size_t at = exported.find("\nrule "); at != std::string::npos; at = exported.find("\nrule ", at + 1))
            n++;
        return n;
    };
    size_t last = 0;
    for (int reads = 0; !done || reads < 5; reads++) {
        CmdResult r = xdpctl({"export"});
        ASSERT_EQ(r.exit_code, 0) << r;
        EXPECT_GE(rules_in(r.out), last) << r.out;
        last = rules_in(r.out);
        const std::string file = write_temp_file(r.out, "lock-readers-export");
        CmdResult again = xdpctl({"apply", "--dry-run", file});
        EXPECT_EQ(again.exit_code, 0) << again;
        std::filesystem::remove(file);
    }
    writer.join();
    EXPECT_EQ(rules_in(exported()), 40u);
}

// What keeps a reader's view whole: a commit during its read makes it read again (torn reads
// need two commits within one read, which the CLI race above rarely provokes: here the read
// commits itself, once, and the first time also fails as a torn read would).
TEST_F(WriterLockTest, ReadConsistentReadsAgainAfterACommit)
{
    set_writer_wait(120);
    policy::PolicyStore reader(Access::read);
    int calls = 0;
    const policy::Policy seen = reader.read_consistent([&] {
        const policy::Policy cur = reader.current();
        if (++calls == 1) {
            policy::PolicyStore writer;
            policy::Policy next = writer.current();
            next.default_action = policy::ActionKind::drop;
            writer.commit(next);
            throw Error(ExitCode::runtime, "torn");
        }
        return cur;
    });
    EXPECT_EQ(calls, 2);
    EXPECT_EQ(seen.default_action, policy::ActionKind::drop);
    // Without a commit, a failing read is a real error, and not read again.
    calls = 0;
    EXPECT_THROW(reader.read_consistent([&]() -> int {
        calls++;
        throw Error(ExitCode::runtime, "real");
    }),
                 Error);
    EXPECT_EQ(calls, 1);
}

// On a host without the shared maps, the first commands, at once, race to create them:
// the one that creates them holds the lock (readers too, for that), the others find them.
TEST_F(WriterLockTest, FirstCommandsAtOnceCreateTheSharedMapsOnce)
{
    NetnsLab lab;
    const std::string ns = lab.dut().ns, ifname = lab.dut().ifname;
    for (int round = 0; round < 3; round++) {
        xdpctl_ok({"--wait", long_wait, "unload", "--all", "--yes"});
        ASSERT_FALSE(std::filesystem::exists("/sys/fs/bpf/xdpctl/maps"));
        const std::vector<std::vector<std::string>> cmds = {
            {"--wait", long_wait, "-n", ns, "load", ifname},
            {"--wait", long_wait, "rule", "add", "--src", "198.18.0.0/24", "--action", "drop"},
            {"--wait", long_wait, "lb", "vip", "add", "198.19.0.1:80/tcp"},
            {"--wait", long_wait, "set", "create", "s"},
            {"rule", "list"},
            {"lb", "list"},
            {"export"},
        };
        std::vector<CmdResult> results(cmds.size());
        std::vector<std::thread> threads;
        for (size_t i = 0; i < cmds.size(); i++)
            threads.emplace_back([&, i] { results[i] = xdpctl(cmds[i]); });
        for (auto& t : threads)
            t.join();
        for (const auto& r : results)
            EXPECT_EQ(r.exit_code, 0) << "round " << round << ": " << r;
        const nlohmann::json rl = rules();
        EXPECT_EQ(rl["rules"].size(), 1u) << rl.dump();
        EXPECT_EQ(xdpctl_json({"lb", "list", "--json"})["vips"].size(), 1u);
    }
    xdpctl_ok({"--wait", long_wait, "unload", "--all", "--yes"});
}

// The second guarantee: writers killed with SIGKILL at random moments (holding the lock or
// not) leave every next command working, and the policy whole (one of the two).
TEST_F(WriterLockTest, SigkilledWritersLeaveTheNextWorking)
{
    std::string big;
    for (int i = 0; i < 2000; i++)
        big += fmt::format("rule --src 198.18.{}.{}/32 --action drop\n", i / 250, i % 250);
    big += "set k\nset k 198.19.0.0/16\nrule --dst @k --action count\n"
           "lb vip 198.19.200.1:80/tcp\n"
           "lb backend 198.19.200.1:80/tcp 198.19.201.1 --mac 02:00:00:00:00:01\n";
    const std::string big_file = write_temp_file(big, "lock-kill-big");
    const std::string small_file = write_temp_file("rule --src 198.18.9.0/24 --action pass\n", "lock-kill-small");
    const auto command = [&](int i) {
        std::vector<std::string> argv{xdpctl_bin(), "--wait", long_wait};
        switch (i % 3) {
        case 0: argv.insert(argv.end(), {"apply", big_file}); break;
        case 1: argv.insert(argv.end(), {"apply", small_file}); break;
        default:
            argv.insert(argv.end(), {"rule", "add", "--src", fmt::format("198.18.100.{}/32", i),
                                     "--action", "drop"});
        }
        return argv;
    };
    // How long each kind runs here, so that the kills fall inside its run.
    std::vector<std::chrono::microseconds> runs;
    for (int kind = 0; kind < 3; kind++) {
        const auto start = std::chrono::steady_clock::now();
        CmdResult r = run_cmd(command(kind));
        ASSERT_EQ(r.exit_code, 0) << r;
        runs.push_back(std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - start));
    }
    std::mt19937 rng(13);
    int killed = 0;
    // Until 20 were killed while running (a kill late in a short run often comes after its
    // end), bounded.
    for (int i = 0; killed < 20 && i < 90; i++) {
        const auto after = std::chrono::duration_cast<std::chrono::milliseconds>(
            runs[i % 3] * std::uniform_real_distribution<double>(0, 0.9)(rng));
        CmdResult r = run_cmd(command(i), after);
        killed += r.timed_out;
        if (!r.timed_out) {
            EXPECT_EQ(r.exit_code, 0) << r;
        }
        // The next writer works (the lock went with the killed one) ...
        CmdResult next = xdpctl({"--wait", "10", "rule", "add", "--src",
                                 fmt::format("198.18.200.{}/32", i), "--action", "count"});
        ASSERT_EQ(next.exit_code, 0) << "after " << r << "\n" << next;
        // ... and the policy is whole: it reads back, and applies again as it is.
        const std::string now = exported();
        const std::string again = write_temp_file(now, "lock-kill-export");
        xdpctl_ok({"--wait", long_wait, "apply", again});
        EXPECT_EQ(exported(), now);
        std::filesystem::remove(again);
    }
    EXPECT_GE(killed, 20) << "too few commands were still running when killed";
    std::filesystem::remove(big_file);
    std::filesystem::remove(small_file);
}

// Everything xdpctl pins is root's only (0600), and so is the lock file.
TEST_F(WriterLockTest, PinsAndLockFileAreRootOnly)
{
    NetnsLab lab;
    lab.load({"--hook", "both"});
    xdpctl_ok({"--wait", long_wait, "rule", "add", "--src", "198.18.0.0/24", "--action", "drop"});
    xdpctl_ok({"--wait", long_wait, "lb", "vip", "add", "198.19.0.1:80/tcp"});
    int files = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator("/sys/fs/bpf/xdpctl")) {
        struct stat st {};
        ASSERT_EQ(lstat(e.path().c_str(), &st), 0) << e.path();
        EXPECT_EQ(st.st_uid, 0u) << e.path();
        if (S_ISDIR(st.st_mode)) {
            EXPECT_EQ(st.st_mode & 07777, 0700u) << e.path();
        } else {
            EXPECT_EQ(st.st_mode & 07777, 0600u) << e.path();
            files++;
        }
    }
    EXPECT_GT(files, 10);
    struct stat lk {};
    ASSERT_EQ(stat(writer_lock_path, &lk), 0);
    EXPECT_EQ(lk.st_mode & 07777, 0600u);
    EXPECT_EQ(lk.st_uid, 0u);
}

}  // namespace
}  // namespace xdpctl::test
