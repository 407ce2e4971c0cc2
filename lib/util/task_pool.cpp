#include "util/task_pool.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>

namespace xdpctl::detail {

namespace {

// Threads blocked in the kernel (a grace period's wait) hold a worker without using a CPU:
// one more worker than CPUs keeps the others busy meanwhile.
unsigned max_workers()
{
    const unsigned cpus = std::thread::hardware_concurrency();
    return std::min(8u, std::max(2u, cpus) + 1);
}

class Pool {
public:
    // False when the pool has no worker to take the task (none could be started).
    bool submit(std::shared_ptr<TaskBase> t)
    {
        std::unique_lock lock(m_);
        queue_.push_back(std::move(t));
        if (idle_ > 0) {
            lock.unlock();
            cv_.notify_one();
            return true;
        }
        if (workers_ < max_) {
            workers_++;
            lock.unlock();
            start();
            lock.lock();
        }
        return workers_ > 0;
    }

private:
    // Starts a worker counted in workers_ already; uncounts it when no thread can be made (a
    // busy worker, or the task's waiter, then runs the task).
    void start()
    {
        try {
            std::thread([this] { work(); }).detach();
        } catch (const std::system_error&) {
            std::lock_guard lock(m_);
            workers_--;
        }
    }

    void work()
    {
        // Each worker starts the next, up to the most, before it takes work: the submitter
        // starts one thread, not one for each task it hands over while none is idle (each
        // 0.3-1.5 ms of a `rule add`'s main thread where the hypervisor tracks page tables).
        {
            std::unique_lock lock(m_);
            const bool more = workers_ < max_;
            if (more)
                workers_++;
            lock.unlock();
            if (more)
                start();
        }
        std::unique_lock lock(m_);
        for (;;) {
            while (queue_.empty()) {
                idle_++;
                cv_.wait(lock);
                idle_--;
            }
            std::shared_ptr<TaskBase> t = std::move(queue_.front());
            queue_.pop_front();
            lock.unlock();
            t->run_if_pending();
            t.reset();  // a detached task's captures are destroyed here, not under the lock
            lock.lock();
        }
    }

    std::mutex m_;
    std::condition_variable cv_;
    std::deque<std::shared_ptr<TaskBase>> queue_;
    unsigned idle_ = 0, workers_ = 0;
    const unsigned max_ = max_workers();
};

// Never destroyed: its workers are detached and may still wait on it while the process exits.
Pool& pool()
{
    static Pool* p = new Pool;
    return *p;
}

}  // namespace

bool TaskBase::run_if_pending()
{
    int pending = kPending;
    if (!state_.compare_exchange_strong(pending, kRunning, std::memory_order_acq_rel))
        return false;
    execute();
    state_.store(kDone, std::memory_order_release);
    state_.notify_all();
    return true;
}

void TaskBase::wait_done() const
{
    for (int s = state_.load(std::memory_order_acquire); s != kDone; s = state_.load(std::memory_order_acquire))
        state_.wait(s, std::memory_order_acquire);
}

void submit(std::shared_ptr<TaskBase> task)
{
    pool().submit(std::move(task));
}

void submit_detached(std::shared_ptr<TaskBase> task)
{
    if (!pool().submit(task))
        task->run_if_pending();  // nobody else would: run here, as a thread-less process would
}

}  // namespace xdpctl::detail
