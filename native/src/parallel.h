// A fork-join loop for per-row host work (log-softmax, sampling) beside llama_decode.
// Threads are spawned per call: tens of microseconds, against rows of ~0.1-2 ms each.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace selftune {

// fn(i, worker) for i in [0, n) on up to `threads` threads, each taking at least
// `min_per_thread` items. Exceptions are carried back to the caller: one escaping a
// std::thread would terminate the process.
template <typename F>
void parallel_for(size_t n, int threads, size_t min_per_thread, F fn) {
    const size_t t = std::min<size_t>((size_t) std::max(threads, 1), (n + min_per_thread - 1) / min_per_thread);
    if (t <= 1) {
        for (size_t i = 0; i < n; i++) fn(i, 0);
        return;
    }
    std::exception_ptr error;
    std::mutex error_mutex;
    auto run = [&](size_t w) {
        try {
            for (size_t i = w; i < n; i += t) fn(i, w);
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
        }
    };
    std::vector<std::thread> pool;
    pool.reserve(t - 1);
    for (size_t w = 1; w < t; w++) pool.emplace_back(run, w);
    run(0);
    for (auto & th : pool) th.join();
    if (error) std::rethrow_exception(error);
}

}  // namespace selftune
