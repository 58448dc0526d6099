// CPU references for native/bench/train_cuda_kernels.cu: the training engine's own CPU ops
// (train/cpu/ops, train/optimizer, train/rng), compiled by g++ because the ops use GCC
// vector extensions that nvcc's front end need not accept. Plain signatures only.
#include "train_cuda_kernels_ref.h"

#include "train/cpu/ops/cross_entropy.h"
#include "train/cpu/ops/rmsnorm.h"
#include "train/cpu/ops/rope.h"
#include "train/cpu/ops/swiglu.h"
#include "train/optimizer.h"
#include "train/rng.h"
#include "train/thread_pool.h"

#include <algorithm>
#include <memory>
#include <thread>
#include <vector>

namespace ref {

using namespace selftune::train;

static ThreadPool * pool() {
    static std::unique_ptr<ThreadPool> p =
        std::make_unique<ThreadPool>((int) std::max(1u, std::thread::hardware_concurrency()));
    return p.get();
}

void parallel_rows(int64_t n, const std::function<void(int64_t, int64_t)> & fn) { pool()->parallel_range(n, 1, fn); }

void rmsnorm_forward(float * y, float * rstd, const float * x, const float * w, int64_t N, int64_t D, float eps) {
    ops::rmsnorm_forward<float>(pool(), y, rstd, x, w, N, D, eps);
}

void rmsnorm_backward(float * dx, const float * dy, const float * x, const float * rstd, const float * w, int64_t N,
                      int64_t D) {
    ops::rmsnorm_backward<float>(pool(), dx, nullptr, dy, x, rstd, w, N, D);
}

void rope(float * x, const int32_t * pos, int64_t N, int64_t n_head, int64_t head_dim, int mode, float base,
          bool inverse) {
    int32_t max_pos = 0;
    for (int64_t n = 0; n < N; n++) max_pos = std::max(max_pos, pos[n]);
    ops::RopeCache<float> cache;
    cache.build(max_pos + 1, head_dim, base);
    ops::rope_apply<float>(pool(), x, pos, N, n_head, head_dim, mode == 0 ? RopeMode::norm : RopeMode::neox, cache,
                           inverse ? -1 : +1);
}

void swiglu_forward(float * h, const float * g, const float * u, int64_t n) {
    ops::swiglu_forward<float>(pool(), h, g, u, n);
}

void swiglu_backward(float * dg, float * du, const float * dh, const float * g, const float * u, int64_t n) {
    std::fill(dg, dg + n, 0.0f);
    std::fill(du, du + n, 0.0f);
    ops::swiglu_backward<float>(pool(), dg, du, dh, g, u, n);
}

void cross_entropy(double * lse, double * logp, float * dlogits, const float * logits, const int32_t * targets,
                   const float * weight, int64_t M, int64_t V) {
    pool()->parallel_range(M, 1, [&](int64_t m0, int64_t m1) {
        std::vector<double> z((size_t) V), dz((size_t) V);
        for (int64_t m = m0; m < m1; m++) {
            const float * zr = logits + m * V;
            for (int64_t v = 0; v < V; v++) z[(size_t) v] = zr[v];
            // The op's gradient is scale * (softmax - onehot); ours is w * (onehot - softmax).
            const double loss = ops::cross_entropy<double>(dz.data(), z.data(), V, targets[m], -(double) weight[m]);
            logp[m] = -loss;
            lse[m] = loss + z[(size_t) targets[m]];
            for (int64_t v = 0; v < V; v++) dlogits[m * V + v] = (float) dz[(size_t) v];
        }
    });
}

void adamw(float * p, const float * g, float * m, float * v, int64_t n, float lr, float beta1, float beta2, float eps,
           float weight_decay, int64_t t, float grad_mult) {
    AdamWStep s;
    s.config.beta1 = beta1;
    s.config.beta2 = beta2;
    s.config.eps = eps;
    s.config.weight_decay = weight_decay;
    s.lr = lr;
    s.t = t;
    s.grad_mult = grad_mult;
    adamw_update(p, g, m, v, n, s);
}

uint64_t dropout_key(uint64_t seed, uint64_t step, uint64_t layer, uint64_t slot) {
    return RngKey(seed).with(kStreamDropout).with(step).with(layer).with(slot).h;
}

float dropout_uniform(uint64_t key_h, uint64_t i) {
    RngKey k(0);
    k.h = key_h;
    return k.uniform(i);
}

}  // namespace ref
