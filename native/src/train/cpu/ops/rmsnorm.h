// RMSNorm: y[n] = x[n] * r[n] * w, with r[n] = 1 / sqrt(mean(x[n]^2) + eps).
//
// The mean is accumulated in double, as ggml's CPU rms_norm does, so our forward rounds
// like llama.cpp's. Backward (r saved by the forward):
//   dx[n] += r * (w*dy) - x * r^3 / D * sum_d(w*dy*x)
//   dw    += sum_n dy * x * r
#pragma once

#include "train/thread_pool.h"

#include <cmath>
#include <cstdint>

namespace selftune::train::ops {

template <typename T>
void rmsnorm_forward(ThreadPool * pool, T * y, T * rinv, const T * x, const T * w, int64_t N, int64_t D, float eps) {
    auto rows = [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; n++) {
            const T * xr = x + n * D;
            double ss = 0;
            for (int64_t d = 0; d < D; d++) ss += (double) xr[d] * (double) xr[d];
            // In T: for float this is ggml's `1.0f/sqrtf(mean + eps)` exactly.
            const T mean = (T) (ss / (double) D);
            const T r = T(1) / std::sqrt(mean + (T) eps);
            rinv[n] = r;
            T * yr = y + n * D;
            for (int64_t d = 0; d < D; d++) yr[d] = (xr[d] * r) * w[d];
        }
    };
    if (pool) pool->parallel_range(N, 4, rows);
    else rows(0, N);
}

// dw may be null (the base norm weights are frozen).
template <typename T>
void rmsnorm_backward(ThreadPool * pool, T * dx, T * dw, const T * dy, const T * x, const T * rinv, const T * w,
                      int64_t N, int64_t D) {
    auto rows = [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; n++) {
            const T * xr = x + n * D;
            const T * g = dy + n * D;
            const T r = rinv[n];
            double dot = 0;
            for (int64_t d = 0; d < D; d++) dot += (double) (w[d] * g[d]) * (double) xr[d];
            const T c = (T) (dot * (double) r * (double) r * (double) r / (double) D);
            T * dxr = dx + n * D;
            for (int64_t d = 0; d < D; d++) dxr[d] += r * w[d] * g[d] - xr[d] * c;
        }
    };
    if (pool) pool->parallel_range(N, 4, rows);
    else rows(0, N);
    if (dw) {
        // Per column, summing over rows in order: deterministic.
        for (int64_t n = 0; n < N; n++) {
            for (int64_t d = 0; d < D; d++) dw[d] += dy[n * D + d] * x[n * D + d] * rinv[n];
        }
    }
}

}  // namespace selftune::train::ops
