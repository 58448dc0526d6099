#include "train/thread_pool.h"

#include <algorithm>

namespace selftune::train {

ThreadPool::ThreadPool(int n_threads) {
    for (int i = 1; i < std::max(1, n_threads); i++) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lk(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    for (auto & t : workers_) t.join();
}

void ThreadPool::run_tasks() {
    for (;;) {
        const int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
        if (i >= n_tasks_) return;
        (*fn_)(i);
    }
}

void ThreadPool::worker_loop() {
    uint64_t seen = 0;
    for (;;) {
        {
            std::unique_lock<std::mutex> lk(mutex_);
            wake_.wait(lk, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
        }
        run_tasks();
        {
            std::lock_guard<std::mutex> lk(mutex_);
            if (--busy_ == 0) done_.notify_one();
        }
    }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t)> & fn) {
    if (n <= 0) return;
    if (workers_.empty() || n == 1) {
        for (int64_t i = 0; i < n; i++) fn(i);
        return;
    }
    {
        std::lock_guard<std::mutex> lk(mutex_);
        fn_ = &fn;
        n_tasks_ = n;
        next_.store(0, std::memory_order_relaxed);
        busy_ = (int) workers_.size();
        generation_++;
    }
    wake_.notify_all();
    run_tasks();
    std::unique_lock<std::mutex> lk(mutex_);
    done_.wait(lk, [&] { return busy_ == 0; });
    fn_ = nullptr;
}

void ThreadPool::parallel_range(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)> & fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(1, grain);
    // A few chunks per thread balances uneven work without much scheduling overhead.
    const int64_t want = (int64_t) n_threads() * 4;
    const int64_t chunk = std::max(grain, (n + want - 1) / want);
    const int64_t n_chunks = (n + chunk - 1) / chunk;
    parallel_for(n_chunks, [&](int64_t c) { fn(c * chunk, std::min(n, (c + 1) * chunk)); });
}

}  // namespace selftune::train
