// SwiGLU's gate: h = silu(g) * u, silu(g) = g * sigmoid(g).
//   dg += dh * u * sigmoid(g) * (1 + g * (1 - sigmoid(g)))
//   du += dh * silu(g)
#pragma once

#include "train/thread_pool.h"

#include <cmath>
#include <cstdint>

namespace selftune::train::ops {

template <typename T>
inline T sigmoid(T x) {
    return T(1) / (T(1) + std::exp(-x));
}

template <typename T>
void swiglu_forward(ThreadPool * pool, T * h, const T * g, const T * u, int64_t n) {
    auto range = [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; i++) h[i] = g[i] * sigmoid(g[i]) * u[i];
    };
    if (pool) pool->parallel_range(n, 4096, range);
    else range(0, n);
}

template <typename T>
void swiglu_backward(ThreadPool * pool, T * dg, T * du, const T * dh, const T * g, const T * u, int64_t n) {
    auto range = [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; i++) {
            const T s = sigmoid(g[i]);
            dg[i] += dh[i] * u[i] * s * (T(1) + g[i] * (T(1) - s));
            du[i] += dh[i] * g[i] * s;
        }
    };
    if (pool) pool->parallel_range(n, 4096, range);
    else range(0, n);
}

}  // namespace selftune::train::ops
