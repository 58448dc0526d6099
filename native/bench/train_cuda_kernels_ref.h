// The checker's CPU references (train_cuda_kernels_ref.cpp), all f32/f64 on host memory.
#pragma once

#include <cstdint>
#include <functional>

namespace ref {

// fn(begin, end) over [0, n) on the reference thread pool.
void parallel_rows(int64_t n, const std::function<void(int64_t, int64_t)> & fn);

void rmsnorm_forward(float * y, float * rstd, const float * x, const float * w, int64_t N, int64_t D, float eps);
// dx += ...
void rmsnorm_backward(float * dx, const float * dy, const float * x, const float * rstd, const float * w, int64_t N,
                      int64_t D);
// In place; mode 0 norm, 1 neox.
void rope(float * x, const int32_t * pos, int64_t N, int64_t n_head, int64_t head_dim, int mode, float base,
          bool inverse);
void swiglu_forward(float * h, const float * g, const float * u, int64_t n);
// Overwrites dg, du.
void swiglu_backward(float * dg, float * du, const float * dh, const float * g, const float * u, int64_t n);
// In double (the op's double path): lse, logp per row; dlogits = w * (onehot - softmax).
void cross_entropy(double * lse, double * logp, float * dlogits, const float * logits, const int32_t * targets,
                   const float * weight, int64_t M, int64_t V);
// train/optimizer.cpp's adamw_update.
void adamw(float * p, const float * g, float * m, float * v, int64_t n, float lr, float beta1, float beta2, float eps,
           float weight_decay, int64_t t, float grad_mult);
// train/rng.h: a dropout key's h, and RngKey{h}.uniform(i).
uint64_t dropout_key(uint64_t seed, uint64_t step, uint64_t layer, uint64_t slot);
float dropout_uniform(uint64_t key_h, uint64_t i);

}  // namespace ref
