// Standalone benchmark of the training engine's CPU matmul kernels (the bulk of a step):
// GFLOP/s of matmul_forward and matmul_backward_x at the shapes a 0.5B model and its
// vocabulary projection use, on 1 thread and on all of them.
//
//   g++ -std=c++17 -O3 -march=native -I native/src native/bench/train_kernels.cpp \
//       native/src/train/thread_pool.cpp -lpthread -o /tmp/train_kernels && /tmp/train_kernels [threads]
#include "train/cpu/ops/matmul.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

using namespace selftune::train;

static double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int main(int argc, char ** argv) {
    const int all = argc > 1 ? std::atoi(argv[1]) : (int) std::thread::hardware_concurrency();
    const long shapes[][3] = {{110, 64, 151936}, {110, 896, 151936}, {512, 896, 4864}, {512, 4864, 896}, {512, 896, 896}};
    for (int threads : {1, all}) {
        ThreadPool pool(threads);
        for (const auto & s : shapes) {
            const long N = s[0], I = s[1], O = s[2];
            std::vector<float> x(N * I), W(O * I), y(N * O), dx(N * I);
            std::mt19937 g(1);
            std::normal_distribution<float> nd;
            for (auto & v : x) v = nd(g);
            for (auto & v : W) v = nd(g) * 0.01f;
            for (auto & v : y) v = nd(g);
            const double flop = 2.0 * N * I * O;
            double best_f = 1e9, best_b = 1e9;
            for (int rep = 0; rep < 3; rep++) {
                auto t0 = std::chrono::steady_clock::now();
                ops::matmul_forward<float>(&pool, y.data(), x.data(), W.data(), nullptr, N, I, O);
                best_f = std::min(best_f, seconds_since(t0));
                t0 = std::chrono::steady_clock::now();
                ops::matmul_backward_x<float>(&pool, dx.data(), y.data(), W.data(), N, I, O);
                best_b = std::min(best_b, seconds_since(t0));
            }
            printf("threads %2d  N %4ld I %5ld O %6ld   forward %6.1f GFLOP/s   backward_x %6.1f GFLOP/s\n", threads, N, I,
                   O, flop / best_f / 1e9, flop / best_b / 1e9);
        }
    }
}
