// The task pool (lib/util/task_pool.h): results and exceptions come back through get(), a
// task nobody started runs in the thread that wants it (so nested waits cannot deadlock
// however few workers there are), a Task destroyed unread waits for its work, and detached
// work runs.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "util/task_pool.h"

namespace {

using namespace std::chrono_literals;
using xdpctl::run_beside;
using xdpctl::Task;

TEST(TaskPool, GivesBackValuesAndMoveOnlyResults)
{
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 20; i++)
        tasks.push_back(run_beside([i] { return i * i; }));
    for (int i = 0; i < 20; i++)
        EXPECT_EQ(tasks[i].get(), i * i);
    auto owned = std::make_unique<int>(7);
    Task<std::unique_ptr<int>> t = run_beside([p = std::move(owned)]() mutable { return std::move(p); });
    EXPECT_EQ(*t.get(), 7);
}

TEST(TaskPool, RethrowsTheTasksException)
{
    Task<int> t = run_beside([]() -> int { throw std::runtime_error("from the task"); });
    try {
        t.get();
        FAIL() << "get() returned";
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "from the task");
    }
}

TEST(TaskPool, NestedWaitsFinishWithEveryWorkerBusy)
{
    // More tasks than the pool has workers (at most 8), each waiting for two of its own.
    std::atomic<int> leaves{0};
    std::vector<Task<void>> outer;
    for (int i = 0; i < 32; i++)
        outer.push_back(run_beside([&] {
            Task<void> a = run_beside([&] { leaves++; });
            Task<void> b = run_beside([&] { leaves++; });
            a.get();
            b.get();
        }));
    for (auto& t : outer)
        t.get();
    EXPECT_EQ(leaves.load(), 64);
}

TEST(TaskPool, APendingTaskRunsInTheThreadThatWantsIt)
{
    // Every worker blocked: the task asked for next cannot have started, so get() runs it here.
    std::atomic<bool> release{false};
    std::vector<Task<void>> blockers;
    for (int i = 0; i < 16; i++)
        blockers.push_back(run_beside([&] {
            while (!release.load())
                std::this_thread::sleep_for(1ms);
        }));
    std::this_thread::sleep_for(20ms);  // the workers take their blockers
    Task<std::thread::id> t = run_beside([] { return std::this_thread::get_id(); });
    const std::thread::id ran_in = t.get();
    release = true;
    EXPECT_EQ(ran_in, std::this_thread::get_id());
    for (auto& b : blockers)
        b.get();
}

TEST(TaskPool, ATaskDestroyedUnreadHasRunWhenItsDestructorReturns)
{
    std::atomic<int> done{0};
    for (int i = 0; i < 20; i++) {
        Task<void> t = run_beside([&] {
            std::this_thread::sleep_for(1ms);
            done++;
        });
    }
    EXPECT_EQ(done.load(), 20);
}

TEST(TaskPool, DetachedWorkRuns)
{
    auto ran = std::make_shared<std::atomic<bool>>(false);
    xdpctl::run_detached([ran] { *ran = true; });
    for (int i = 0; i < 5000 && !*ran; i++)
        std::this_thread::sleep_for(1ms);
    EXPECT_TRUE(*ran);
}

}  // namespace
