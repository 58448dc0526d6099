// Matrix products of activations (rows = tokens) with weights stored as ggml stores them
// (row-major W[out][in]):
//
//   forward     y[n][o]  = beta*y[n][o] + alpha * sum_i x[n][i] W[o][i]  (+ b[o])
//   backward_x  dx[n][i] +=               alpha * sum_o dy[n][o] W[o][i]
//   backward_w  dW[o][i] +=               alpha * sum_n dy[n][o] x[n][i]
//
// Each has a plain triple-loop reference (the oracle in tests) and a blocked version used
// for training. The blocked kernels keep 8 independent partial sums per dot product in a
// small array: the compiler turns the lane loop into one SIMD FMA without needing leave to
// reorder a reduction (-ffast-math), and the result is deterministic: every output element
// is produced by one task with a fixed summation order, whatever the thread count.
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

constexpr int kLanes = 8;

// R rows of x against C rows of W: R*C dot products of length I.
template <typename T, int R, int C>
inline void dot_tile(const T * const * xr, const T * const * wr, int64_t I, T out[R][C]) {
    T acc[R][C][kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= I; i += kLanes) {
        for (int r = 0; r < R; r++) {
            for (int c = 0; c < C; c++) {
                for (int l = 0; l < kLanes; l++) acc[r][c][l] += xr[r][i + l] * wr[c][i + l];
            }
        }
    }
    for (int r = 0; r < R; r++) {
        for (int c = 0; c < C; c++) {
            T s = 0;
            for (int l = 0; l < kLanes; l++) s += acc[r][c][l];
            for (int64_t j = i; j < I; j++) s += xr[r][j] * wr[c][j];
            out[r][c] = s;
        }
    }
}

template <typename T>
void matmul_forward(ThreadPool * pool, T * y, const T * x, const T * W, const T * b, int64_t N, int64_t I, int64_t O,
                    T alpha = 1, bool accumulate = false) {
    constexpr int R = 4, C = 2;
    // A task owns a block of output columns (rows of W) for all tokens: the W block stays
    // in cache while every token streams past it, so W is read from memory once.
    const int64_t ob = std::max<int64_t>(C, std::min<int64_t>(64, (O + 1) / 2 / C * C));
    const int64_t n_blocks = (O + ob - 1) / ob;
    auto task = [&](int64_t blk) {
        const int64_t o0 = blk * ob, o1 = std::min(O, o0 + ob);
        for (int64_t n = 0; n < N; n += R) {
            const int nr = (int) std::min<int64_t>(R, N - n);
            const T * xr[R];
            for (int r = 0; r < R; r++) xr[r] = x + (n + std::min(r, nr - 1)) * I;
            for (int64_t o = o0; o < o1; o += C) {
                const int nc = (int) std::min<int64_t>(C, o1 - o);
                const T * wr[C];
                for (int c = 0; c < C; c++) wr[c] = W + (o + std::min(c, nc - 1)) * I;
                T out[R][C];
                dot_tile<T, R, C>(xr, wr, I, out);
                for (int r = 0; r < nr; r++) {
                    for (int c = 0; c < nc; c++) {
                        T v = alpha * out[r][c] + (b ? b[o + c] : T(0));
                        T & dst = y[(n + r) * O + o + c];
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
    constexpr int R = 4;                 // rows of dx per register tile
    constexpr int64_t IB = 2 * kLanes;   // columns of dx per register tile
    constexpr int64_t OB = 256;          // rows of W per pass: a [OB x (c1-c0)] slice stays in cache
    for (int64_t o0 = o_begin; o0 < o_end; o0 += OB) {
        const int64_t o1 = std::min(o_end, o0 + OB);
        for (int64_t n = 0; n < N; n += R) {
            const int nr = (int) std::min<int64_t>(R, N - n);
            for (int64_t i0 = c0; i0 < c1; i0 += IB) {
                const int64_t w = std::min<int64_t>(IB, c1 - i0);
                T acc[R][IB] = {};
                if (w == IB && nr == R) {
                    for (int64_t o = o0; o < o1; o++) {
                        const T * wr = W + o * I + i0;
                        for (int r = 0; r < R; r++) {
                            const T g = dy[(n + r) * O + o];
                            for (int64_t l = 0; l < IB; l++) acc[r][l] += g * wr[l];
                        }
                    }
                } else {
                    for (int64_t o = o0; o < o1; o++) {
                        const T * wr = W + o * I + i0;
                        for (int r = 0; r < nr; r++) {
                            const T g = dy[(n + r) * O + o];
                            for (int64_t l = 0; l < w; l++) acc[r][l] += g * wr[l];
                        }
                    }
                }
                for (int r = 0; r < nr; r++) {
                    T * d = dx + (n + r) * I + i0;
                    for (int64_t l = 0; l < w; l++) d[l] += alpha * acc[r][l];
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
