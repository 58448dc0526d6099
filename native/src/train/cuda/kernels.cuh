// The CUDA training backend's kernels: one file each in this folder (llm.c style), each
// checked against the CPU reference ops (train/cpu/ops) by native/bench/train_cuda_kernels.cu,
// which also times them and prints achieved GB/s or TFLOP/s beside the card's figure.
//
// Conventions, for every launcher here:
//   - asynchronous on `stream`; no allocation, no synchronization, no host reads;
//   - row-major; "rows" are the packed tokens of a micro-batch (sequences back to back,
//     seq_start[s] .. seq_start[s+1] are sequence s's rows, positions from 0);
//   - bf16 where a tensor is a matrix-multiply operand; f32 for the residual stream, its
//     gradient, norm weights, LoRA master parameters and everything the optimizer touches;
//   - "+=" in a comment means the kernel accumulates into its output;
//   - deterministic: no atomics whose order changes a result.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace selftune::train::cuda {

using bf16 = __nv_bfloat16;

// ---- dequant.cu: the frozen base, as stored in the GGUF, to bf16 ----------------------
// ggml types F32, F16, BF16, Q8_0, Q4_K, Q6_K (values of enum ggml_type).
bool dequant_supported(int ggml_type);
// n_rows rows of n_cols values (each row whole ggml blocks, rows contiguous) -> bf16.
void dequantize_bf16(bf16 * dst, const void * src, int ggml_type, int64_t n_rows, int64_t n_cols, cudaStream_t stream);

// ---- embedding.cu ------------------------------------------------------------------------
// x[n][:] = row tokens[n] of the table (stored as ggml_type, rows of D values), as f32.
void embedding_forward(float * x, const int32_t * tokens, const void * table, int ggml_type, int64_t N, int64_t D,
                       cudaStream_t stream);

// ---- rmsnorm.cu ---------------------------------------------------------------------------
// rstd[n] = 1/sqrt(mean_i x[n,i]^2 + eps);  y[n,i] = bf16(x[n,i] * rstd[n] * w[i])
void rmsnorm_forward(bf16 * y, float * rstd, const float * x, const float * w, int64_t N, int64_t D, float eps,
                     cudaStream_t stream);
// dx[n,i] += rstd (w_i dy_i - x_i rstd^2 mean_j(w_j dy_j x_j))      (dy: gradient of y)
void rmsnorm_backward(float * dx, const float * dy, const float * x, const float * rstd, const float * w, int64_t N,
                      int64_t D, cudaStream_t stream);

// ---- rope.cu ------------------------------------------------------------------------------
// In place on x[N x n_head x head_dim]; angle of pair i at position p: p * base^(-2i/head_dim).
// mode 0 "norm": pairs (2i, 2i+1) (llama); mode 1 "neox": pairs (i, i + head_dim/2) (qwen2).
// inverse: rotate by the negative angle (the backward of the forward rotation).
void rope(bf16 * x, const int32_t * pos, int64_t N, int n_head, int head_dim, int mode, float base, bool inverse,
          cudaStream_t stream);

// ---- elementwise.cu -----------------------------------------------------------------------
// h = silu(g) * u
void swiglu_forward(bf16 * h, const bf16 * g, const bf16 * u, int64_t n, cudaStream_t stream);
// dg = dh * u * silu'(g);  du = dh * silu(g)
void swiglu_backward(bf16 * dg, bf16 * du, const float * dh, const bf16 * g, const bf16 * u, int64_t n,
                     cudaStream_t stream);
// y[n,o] += b[o]   (the qwen2 q/k/v biases)
void add_bias(bf16 * y, const float * b, int64_t N, int64_t O, cudaStream_t stream);
void cast_f32_to_bf16(bf16 * dst, const float * src, int64_t n, cudaStream_t stream);
void cast_bf16_to_f32(float * dst, const bf16 * src, int64_t n, cudaStream_t stream);
// y = x * mask / (1 - p), mask[n,i] = RngKey{key_h}.uniform(n * I + i) >= p  (train/rng.h,
// the CPU backend's dropout mask bit for bit): x, y [N x I].
void dropout(bf16 * y, const bf16 * x, int64_t N, int64_t I, uint64_t key_h, float p, cudaStream_t stream);
// dx += dy * mask / (1 - p), same mask. dy, dx f32.
void dropout_backward_add(float * dx, const float * dy, int64_t N, int64_t I, uint64_t key_h, float p,
                          cudaStream_t stream);

// ---- cross_entropy.cu: over one chunk of M scored rows, never the whole logits tensor --------
// logits [M x V] f32. lse[m] = logsumexp(logits[m]); logp[m] = logits[m, targets[m]] - lse[m].
void cross_entropy_forward(float * logp, float * lse, const float * logits, const int32_t * targets, int64_t M,
                           int64_t V, cudaStream_t stream);
// dlogits[m,v] = bf16(weight[m] * (onehot(targets[m])[v] - exp(logits[m,v] - lse[m])))
//   (weight = d loss / d logp of the row; the gradient of weight * logp w.r.t. the logits)
void cross_entropy_backward(bf16 * dlogits, const float * logits, const float * lse, const int32_t * targets,
                            const float * weight, int64_t M, int64_t V, cudaStream_t stream);

// ---- adamw.cu -----------------------------------------------------------------------------
// train/optimizer.h's adamw_update, elementwise on f32 p, g, m, v [n].
void adamw(float * p, const float * g, float * m, float * v, int64_t n, float lr, float beta1, float beta2, float eps,
           float weight_decay, int64_t t, float grad_mult, cudaStream_t stream);
// *out = sum g[i]^2 in double, deterministic (fixed partition, fixed reduction order).
// scratch: at least sum_squares_scratch(n) doubles.
int64_t sum_squares_scratch(int64_t n);
void sum_squares(double * out, const float * g, int64_t n, double * scratch, cudaStream_t stream);

// ---- attention.cu: causal grouped-query attention, flash style (no score matrix in memory) ----
// q [N x H x hd], k, v [N x Hkv x hd], out [N x H x hd] (bf16); H % Hkv == 0; query head h
// reads kv head h / (H / Hkv). Row r of sequence s attends to rows seq_start[s] .. r.
// scale = 1/sqrt(hd). lse [N x H] f32: log sum_j exp(scale * q.k_j) of each row and head.
// hd: any value <= 256 (fast paths for 64 and 128). max_len: the longest sequence.
void attention_forward(bf16 * out, float * lse, const bf16 * q, const bf16 * k, const bf16 * v,
                       const int32_t * seq_start, int n_seq, int max_len, int64_t N, int H, int Hkv, int hd,
                       cudaStream_t stream);
// dq, dk, dv (bf16, overwritten) from dout (bf16) and the forward's out and lse.
// scratch: at least attention_backward_scratch(N, H, Hkv, hd) bytes.
size_t attention_backward_scratch(int64_t N, int H, int Hkv, int hd);
void attention_backward(bf16 * dq, bf16 * dk, bf16 * dv, const bf16 * dout, const bf16 * out, const float * lse,
                        const bf16 * q, const bf16 * k, const bf16 * v, const int32_t * seq_start, int n_seq,
                        int max_len, int64_t N, int H, int Hkv, int hd, void * scratch, cudaStream_t stream);

}  // namespace selftune::train::cuda
