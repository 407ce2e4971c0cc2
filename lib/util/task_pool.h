// Work beside the caller without a thread per piece of work. Starting a thread costs
// 0.2-0.5 ms where the hypervisor tracks page tables (a PVM guest: the new stack is mapped,
// faulted in page by page and given back at the thread's exit, each step a trap), against
// ~30 us where it does not; a `rule add` at 10,000 rules started 14 of them. The pool keeps
// a few threads, started when first needed, and hands them the work.
//
// A task nobody has started yet when its result is wanted runs in the thread that wants it:
// a task may wait for another (nested work) without deadlock however few workers there are,
// and with no worker at all everything still runs, in order. Workers start in whatever
// network namespace their first caller is in: tasks must not depend on it.
#pragma once

#include <atomic>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace xdpctl {

namespace detail {

class TaskBase {
public:
    virtual ~TaskBase() = default;
    // Runs the task here unless it has been started (or run) already; true if it ran here.
    bool run_if_pending();
    // Until the task has run (in whichever thread).
    void wait_done() const;

protected:
    virtual void execute() noexcept = 0;

private:
    enum : int { kPending, kRunning, kDone };
    std::atomic<int> state_{kPending};
};

void submit(std::shared_ptr<TaskBase> task);
// The same for a task nobody waits for: run here when the pool has no worker to take it.
void submit_detached(std::shared_ptr<TaskBase> task);

// What a task leaves: its value or its exception.
template <typename T>
class TaskResult : public TaskBase {
public:
    T take()
    {
        if (error_)
            std::rethrow_exception(error_);
        if constexpr (!std::is_void_v<T>)
            return std::move(*value_);
    }

protected:
    std::conditional_t<std::is_void_v<T>, bool, std::optional<T>> value_{};
    std::exception_ptr error_;
};

// A callable of any kind (move-only ones too: std::function would copy).
template <typename T, typename F>
class TaskOf final : public TaskResult<T> {
public:
    explicit TaskOf(F f) : f_(std::move(f)) {}

private:
    void execute() noexcept override
    {
        try {
            if constexpr (std::is_void_v<T>)
                (*f_)();
            else
                this->value_.emplace((*f_)());
        } catch (...) {
            this->error_ = std::current_exception();
        }
        f_.reset();  // what it captured goes with it, in the thread that ran it
    }

    std::optional<F> f_;
};

}  // namespace detail

// The result of work handed to the pool; like std::async's std::future: get() once, wait()
// any time, and one destroyed (also by an exception) waits for the task first, so that what
// the task refers to outlives it.
template <typename T>
class Task {
public:
    Task() = default;
    explicit Task(std::shared_ptr<detail::TaskResult<T>> t) : task_(std::move(t)) {}
    Task(Task&&) noexcept = default;
    Task& operator=(Task&& o) noexcept
    {
        if (this != &o) {
            if (task_)
                wait();
            task_ = std::move(o.task_);
        }
        return *this;
    }
    ~Task()
    {
        if (task_)
            wait();
    }
    bool valid() const { return task_ != nullptr; }
    void wait() const
    {
        if (!task_->run_if_pending())
            task_->wait_done();
    }
    T get()
    {
        wait();
        auto t = std::move(task_);
        return t->take();
    }

private:
    std::shared_ptr<detail::TaskResult<T>> task_;
};

// Hands `f` to the pool; its result (or exception) comes from the Task's get().
template <typename F>
auto run_beside(F&& f) -> Task<std::invoke_result_t<std::decay_t<F>&>>
{
    using T = std::invoke_result_t<std::decay_t<F>&>;
    auto t = std::make_shared<detail::TaskOf<T, std::decay_t<F>>>(std::forward<F>(f));
    detail::submit(t);
    return Task<T>(std::move(t));
}

// Hands `f` to the pool with nobody to wait for it (an exception it throws is dropped); runs
// it here when no worker can be started. In a process that exits first, it may never run.
template <typename F>
void run_detached(F&& f)
{
    detail::submit_detached(std::make_shared<detail::TaskOf<void, std::decay_t<F>>>(std::forward<F>(f)));
}

}  // namespace xdpctl
