// A small fork-join pool: parallel_for(n, fn) runs fn(i) for i in [0, n) on the pool's
// threads and the caller's, and returns when all are done.
//
// Determinism contract (what makes resume bit-identical and results independent of the
// thread count): callers split work so that each output element is written by exactly one
// task, and any reduction inside a task runs in a fixed order. Which thread runs a task
// never matters.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace selftune::train {

class ThreadPool {
  public:
    // n_threads total, including the calling thread; 1 runs everything inline.
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool &) = delete;
    ThreadPool & operator=(const ThreadPool &) = delete;

    int n_threads() const { return (int) workers_.size() + 1; }

    void parallel_for(int64_t n, const std::function<void(int64_t)> & fn);

    // fn(begin, end) over [0, n) in chunks of at least `grain` items.
    void parallel_range(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)> & fn);

  private:
    void worker_loop();
    void run_tasks();

    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    const std::function<void(int64_t)> * fn_ = nullptr;
    int64_t n_tasks_ = 0;
    std::atomic<int64_t> next_{0};
    int busy_ = 0;             // workers still inside run_tasks for this generation
    uint64_t generation_ = 0;
    bool stop_ = false;
};

}  // namespace selftune::train
