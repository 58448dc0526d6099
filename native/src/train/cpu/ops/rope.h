// Rotary position embedding, in place on [N x n_head x head_dim] rows.
//
// Pair p of a head (p < head_dim/2) is rotated by theta_p = pos * base^(-2p/head_dim):
//   norm mode (llama): elements (2p, 2p+1)
//   neox mode (qwen2): elements (p, p + head_dim/2)
// The angles are computed exactly as ggml's CPU rope does (float theta, multiplied by
// theta_scale once per pair, then cosf/sinf), so the forward matches llama.cpp's.
// A rotation's backward is the inverse rotation: dx = R(-theta) dy.
#pragma once

#include "train/model_config.h"
#include "train/thread_pool.h"

#include <cmath>
#include <cstdint>
#include <vector>

namespace selftune::train::ops {

// cos/sin per (position, pair): [n_pos x head_dim/2] each.
template <typename T>
struct RopeCache {
    int64_t half = 0;
    std::vector<T> cos, sin;

    void build(int64_t n_pos, int64_t head_dim, float base) {
        half = head_dim / 2;
        cos.resize((size_t) (n_pos * half));
        sin.resize((size_t) (n_pos * half));
        const float theta_scale = std::pow(base, -2.0f / (float) head_dim);
        for (int64_t p = 0; p < n_pos; p++) {
            float theta = (float) p;
            for (int64_t i = 0; i < half; i++) {
                cos[p * half + i] = (T) std::cos(theta);
                sin[p * half + i] = (T) std::sin(theta);
                theta *= theta_scale;
            }
        }
    }
};

// sign = +1 rotates forward, -1 applies the inverse (the backward of the forward).
template <typename T>
void rope_apply(ThreadPool * pool, T * x, const int32_t * pos, int64_t N, int64_t n_head, int64_t head_dim,
                RopeMode mode, const RopeCache<T> & cache, int sign) {
    const int64_t half = head_dim / 2;
    auto rows = [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; n++) {
            const T * c = cache.cos.data() + (int64_t) pos[n] * half;
            const T * s = cache.sin.data() + (int64_t) pos[n] * half;
            for (int64_t h = 0; h < n_head; h++) {
                T * v = x + (n * n_head + h) * head_dim;
                for (int64_t p = 0; p < half; p++) {
                    const int64_t i0 = mode == RopeMode::norm ? 2 * p : p;
                    const int64_t i1 = mode == RopeMode::norm ? 2 * p + 1 : p + half;
                    const T cs = c[p], sn = sign > 0 ? s[p] : -s[p];
                    const T a = v[i0], b = v[i1];
                    v[i0] = a * cs - b * sn;
                    v[i1] = a * sn + b * cs;
                }
            }
        }
    };
    if (pool) pool->parallel_range(N, 8, rows);
    else rows(0, N);
}

template <typename T>
void rope_forward(ThreadPool * pool, T * x, const int32_t * pos, int64_t N, int64_t n_head, int64_t head_dim,
                  RopeMode mode, const RopeCache<T> & cache) {
    rope_apply(pool, x, pos, N, n_head, head_dim, mode, cache, +1);
}

// In place: turns dL/d(rotated) into dL/d(input).
template <typename T>
void rope_backward(ThreadPool * pool, T * dx, const int32_t * pos, int64_t N, int64_t n_head, int64_t head_dim,
                   RopeMode mode, const RopeCache<T> & cache) {
    rope_apply(pool, dx, pos, N, n_head, head_dim, mode, cache, -1);
}

}  // namespace selftune::train::ops
