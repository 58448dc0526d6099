// Matrix products of activations (rows = tokens) with weights stored as ggml stores them
// (row-major W[out][in]):
//
//   forward     y[n][o]  = beta*y[n][o] + alpha * sum_i x[n][i] W[o][i]  (+ b[o])
//   backward_x  dx[n][i] +=               alpha * sum_o dy[n][o] W[o][i]
//   backward_w  dW[o][i] +=               alpha * sum_n dy[n][o] x[n][i]
//
// Each has a plain triple-loop reference (the oracle in tests) and a blocked version used
// for training. The blocked kernels are register-tiled outer products (4 rows x 2 SIMD
// vectors of accumulators) and deterministic: every output element is produced by one
// task with a fixed summation order, whatever the thread count.
#pragma once

#include "train/thread_pool.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace selftune::train::ops {

// ---- references ------------------------------------------------------------------------

template <typename T>
void matmul_forward_ref(T * y, const T * x, const T * W, const T * b, int64_t N, int64_t I, int64_t O, T alpha = 1,
                        bool accumulate = false) {
    for (int64_t n = 0; n < N; n++) {
        for (int64_t o = 0; o < O; o++) {
            double s = 0;
            for (int64_t i = 0; i < I; i++) s += (double) x[n * I + i] * (double) W[o * I + i];
            T v = (T) (alpha * s) + (b ? b[o] : T(0));
            y[n * O + o] = accumulate ? y[n * O + o] + v : v;
        }
    }
}

template <typename T>
void matmul_backward_x_ref(T * dx, const T * dy, const T * W, int64_t N, int64_t I, int64_t O, T alpha = 1) {
    for (int64_t n = 0; n < N; n++) {
        for (int64_t i = 0; i < I; i++) {
            double s = 0;
            for (int64_t o = 0; o < O; o++) s += (double) dy[n * O + o] * (double) W[o * I + i];
            dx[n * I + i] += (T) (alpha * s);
        }
    }
}

template <typename T>
void matmul_backward_w_ref(T * dW, const T * dy, const T * x, int64_t N, int64_t I, int64_t O, T alpha = 1) {
    for (int64_t o = 0; o < O; o++) {
        for (int64_t i = 0; i < I; i++) {
            double s = 0;
            for (int64_t n = 0; n < N; n++) s += (double) dy[n * O + o] * (double) x[n * I + i];
            dW[o * I + i] += (T) (alpha * s);
        }
    }
}

// ---- blocked kernels ---------------------------------------------------------------------

// The kernels hold their accumulators in SIMD registers through GCC/Clang vector
// extensions (a plain float array would live in memory: a load and store per FMA). Width:
// the widest the target has; 8 rows x 2 vectors of accumulators fit every x86 register file.
#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif

template <typename T>
struct Simd {
    typedef T V __attribute__((vector_size(kVecBytes)));
    static constexpr int kWidth = kVecBytes / (int) sizeof(T);
    static V load(const T * p) {
        V v;
        __builtin_memcpy(&v, p, sizeof v);
        return v;
    }
    static void store(T * p, V v) { __builtin_memcpy(p, &v, sizeof v); }
};

template <typename T>
void matmul_forward(ThreadPool * pool, T * y, const T * x, const T * W, const T * b, int64_t N, int64_t I, int64_t O,
                    T alpha = 1, bool accumulate = false) {
    using S = Simd<T>;
    using V = typename S::V;
    constexpr int R = 4;                  // rows of x per register tile
    constexpr int C = 2 * S::kWidth;      // outputs per register tile (two vectors)
    // Outputs per task: up to 4 tiles, fewer when that would leave threads idle. Which task
    // computes an output never changes how it is summed, so this choice cannot change results.
    const int64_t tiles = (O + C - 1) / C;
    const int64_t threads = pool ? pool->n_threads() : 1;
    const int64_t OB = C * std::clamp<int64_t>(tiles / (4 * threads), 1, 4);
    // A task owns a block of OB outputs for every row. It first packs its rows of W
    // transposed, C outputs side by side ([I x C] panels), so that the inner loop is an
    // outer product: broadcast x[n][i], multiply a contiguous C-wide slice of W^T. Each
    // output is one accumulator lane summed over i in order: deterministic.
    const int64_t n_blocks = (O + OB - 1) / OB;
    auto task = [&](int64_t blk) {
        const int64_t o0 = blk * OB, ob = std::min(OB, O - o0);
        const int64_t n_panels = (ob + C - 1) / C;
        std::vector<T> panel((size_t) (n_panels * I * C), T(0));
        for (int64_t p = 0; p < n_panels; p++) {
            T * dst = panel.data() + p * I * C;
            for (int64_t c = 0; c < C && p * C + c < ob; c++) {
                const T * src = W + (o0 + p * C + c) * I;
                for (int64_t i = 0; i < I; i++) dst[i * C + c] = src[i];
            }
        }
        T out[R][C];
        for (int64_t n = 0; n < N; n += R) {
            const int nr = (int) std::min<int64_t>(R, N - n);
            // Rows past N repeat the last row (computed, never written).
            const T * xr[R];
            for (int r = 0; r < R; r++) xr[r] = x + (n + std::min(r, nr - 1)) * I;
            for (int64_t p = 0; p < n_panels; p++) {
                const T * wp = panel.data() + p * I * C;
                V a00 = {}, a01 = {}, a10 = {}, a11 = {}, a20 = {}, a21 = {}, a30 = {}, a31 = {};
                for (int64_t i = 0; i < I; i++) {
                    const V w0 = S::load(wp + i * C), w1 = S::load(wp + i * C + S::kWidth);
                    const T x0 = xr[0][i], x1 = xr[1][i], x2 = xr[2][i], x3 = xr[3][i];
                    a00 += x0 * w0; a01 += x0 * w1;
                    a10 += x1 * w0; a11 += x1 * w1;
                    a20 += x2 * w0; a21 += x2 * w1;
                    a30 += x3 * w0; a31 += x3 * w1;
                }
                S::store(out[0], a00); S::store(out[0] + S::kWidth, a01);
                S::store(out[1], a10); S::store(out[1] + S::kWidth, a11);
                S::store(out[2], a20); S::store(out[2] + S::kWidth, a21);
                S::store(out[3], a30); S::store(out[3] + S::kWidth, a31);
                const int64_t oc = o0 + p * C, nc = std::min<int64_t>(C, O - oc);
                for (int r = 0; r < nr; r++) {
                    for (int64_t l = 0; l < nc; l++) {
                        const T v = alpha * out[r][l] + (b ? b[oc + l] : T(0));
                        T & dst = y[(n + r) * O + oc + l];
                        dst = accumulate ? dst + v : v;
                    }
                }
            }
        }
    };
    if (pool) pool->parallel_for(n_blocks, task);
    else for (int64_t k = 0; k < n_blocks; k++) task(k);
}

// dx[n][c0:c1] += alpha * sum_{o in [o0, o1)} dy[n][o] W[o][c0:c1], o ascending.
template <typename T>
void matmul_backward_x_block(T * dx, const T * dy, const T * W, int64_t N, int64_t I, int64_t O, int64_t c0,
                             int64_t c1, int64_t o_begin, int64_t o_end, T alpha) {
    using S = Simd<T>;
    using V = typename S::V;
    constexpr int R = 4;                       // rows of dx per register tile
    constexpr int64_t IB = 2 * S::kWidth;      // columns of dx per register tile (two vectors)
    constexpr int64_t OB = 256;                // rows of W per pass: a [OB x (c1-c0)] slice stays in cache
    for (int64_t o0 = o_begin; o0 < o_end; o0 += OB) {
        const int64_t o1 = std::min(o_end, o0 + OB);
        for (int64_t n = 0; n < N; n += R) {
            const int nr = (int) std::min<int64_t>(R, N - n);
            const T * g[R];
            for (int r = 0; r < R; r++) g[r] = dy + (n + std::min(r, nr - 1)) * O;
            int64_t i0 = c0;
            for (; i0 + IB <= c1; i0 += IB) {
                V a00 = {}, a01 = {}, a10 = {}, a11 = {}, a20 = {}, a21 = {}, a30 = {}, a31 = {};
                for (int64_t o = o0; o < o1; o++) {
                    const V w0 = S::load(W + o * I + i0), w1 = S::load(W + o * I + i0 + S::kWidth);
                    const T g0 = g[0][o], g1 = g[1][o], g2 = g[2][o], g3 = g[3][o];
                    a00 += g0 * w0; a01 += g0 * w1;
                    a10 += g1 * w0; a11 += g1 * w1;
                    a20 += g2 * w0; a21 += g2 * w1;
                    a30 += g3 * w0; a31 += g3 * w1;
                }
                T acc[R][IB];
                S::store(acc[0], a00); S::store(acc[0] + S::kWidth, a01);
                S::store(acc[1], a10); S::store(acc[1] + S::kWidth, a11);
                S::store(acc[2], a20); S::store(acc[2] + S::kWidth, a21);
                S::store(acc[3], a30); S::store(acc[3] + S::kWidth, a31);
                for (int r = 0; r < nr; r++) {
                    T * d = dx + (n + r) * I + i0;
                    for (int64_t l = 0; l < IB; l++) d[l] += alpha * acc[r][l];
                }
            }
            // Remaining columns (fewer than a tile), plain loops in the same o order.
            for (int r = 0; r < nr; r++) {
                for (int64_t i = i0; i < c1; i++) {
                    T s = 0;
                    for (int64_t o = o0; o < o1; o++) s += g[r][o] * W[o * I + i];
                    dx[(n + r) * I + i] += alpha * s;
                }
            }
        }
    }
}

template <typename T>
void matmul_backward_x(ThreadPool * pool, T * dx, const T * dy, const T * W, int64_t N, int64_t I, int64_t O,
                       T alpha = 1) {
    // A task owns a block of dx's columns for every row and sums over o in a fixed order,
    // so W is read from memory once in total (it matters when O is a 150k vocabulary).
    const int64_t col_block = 128;
    const int64_t n_cb = (I + col_block - 1) / col_block;
    // With few column blocks (a narrow I, e.g. the tiny model's 64-wide output projection)
    // cores would idle: O is also split into a fixed number of chunks, each summed into its
    // own buffer, and the buffers are added in chunk order. The split depends on the shape
    // only, never on the thread count, so the result is still deterministic.
    const int64_t n_oc = n_cb >= 8 ? 1 : std::clamp<int64_t>(O / 2048, 1, 16);
    if (n_oc == 1) {
        auto task = [&](int64_t cb) {
            matmul_backward_x_block(dx, dy, W, N, I, O, cb * col_block, std::min(I, (cb + 1) * col_block), 0, O, alpha);
        };
        if (pool) pool->parallel_for(n_cb, task);
        else for (int64_t k = 0; k < n_cb; k++) task(k);
        return;
    }
    const int64_t oc = (O + n_oc - 1) / n_oc;
    std::vector<T> part((size_t) (n_oc * N * I), T(0));
    auto task = [&](int64_t t) {
        const int64_t c = t / n_cb, cb = t % n_cb;
        matmul_backward_x_block(part.data() + c * N * I, dy, W, N, I, O, cb * col_block,
                                std::min(I, (cb + 1) * col_block), c * oc, std::min(O, (c + 1) * oc), T(1));
    };
    if (pool) pool->parallel_for(n_oc * n_cb, task);
    else for (int64_t k = 0; k < n_oc * n_cb; k++) task(k);
    auto sum = [&](int64_t k0, int64_t k1) {
        for (int64_t k = k0; k < k1; k++) {
            T s = 0;
            for (int64_t c = 0; c < n_oc; c++) s += part[(size_t) (c * N * I + k)];
            dx[k] += alpha * s;
        }
    };
    if (pool) pool->parallel_range(N * I, 4096, sum);
    else sum(0, N * I);
}

template <typename T>
void matmul_backward_w(ThreadPool * pool, T * dW, const T * dy, const T * x, int64_t N, int64_t I, int64_t O,
                       T alpha = 1) {
    // Only LoRA matrices take this path (the base is frozen), so O or I is the rank:
    // small. One task per output row, summing over tokens in order.
    auto task = [&](int64_t o) {
        T * d = dW + o * I;
        for (int64_t n = 0; n < N; n++) {
            const T g = alpha * dy[n * O + o];
            if (g == T(0)) continue;
            const T * xr = x + n * I;
            for (int64_t i = 0; i < I; i++) d[i] += g * xr[i];
        }
    };
    if (pool) pool->parallel_for(O, task);
    else for (int64_t o = 0; o < O; o++) task(o);
}

}  // namespace selftune::train::ops
