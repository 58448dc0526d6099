// One base projection fused with its LoRA adapter, as the CPU reference computes it
// (cpu/transformer.cpp linear_forward / linear_backward):
//
//   y = W x + scale * B (A dropout(x)) (+ bias)        u = A dropout(x) is kept for backward
//
// in that order (llama.cpp's: the adapter term, then the bias). The frozen W is either bf16
// already (dense storage) or still in its GGUF blocks (stored storage): then it is
// dequantized into the session's one bf16 weight scratch right before each product that
// reads it, so only one projection at a time is ever dense (QLoRA's trade: memory for a
// dequantization per use).
//
// Precision: operands bf16, accumulation f32. A bf16 output that takes an adapter or a bias
// is summed in an f32 scratch and rounded once; an f32 output (the residual stream)
// accumulates in place.
#pragma once

#include "train/cuda/gemm.cuh"

#include <cuda_runtime.h>

#include <cstdint>

namespace selftune::train::cuda {

// A frozen projection on the device: W[n_out x n_in] as ggml stores it.
struct BaseLinear {
    const void * w = nullptr;
    int32_t type = 0;              // ggml type of w; GGML_TYPE_BF16: used directly by the GEMMs
    const float * bias = nullptr;  // [n_out], or null
    int64_t n_in = 0, n_out = 0;
};

// The adapter of one projection in one step. Null when the projection has none (or the
// forward runs the base alone).
struct LoraLinear {
    const bf16 * A = nullptr;   // [rank x n_in]  bf16 copy of the f32 master
    const bf16 * B = nullptr;   // [n_out x rank]
    float * dA = nullptr;       // f32 gradients, accumulated
    float * dB = nullptr;
    int64_t rank = 0;
    float scale = 1.0f;             // alpha / rank
    float dropout_p = 0.0f;         // on the adapter's input only
    uint64_t dropout_key = 0;       // RngKey::h of the slot's key (dropout.key.with(slot))
};

// Session-owned scratch, sized for the most rows and the widest projection.
struct LinearScratch {
    bf16 * weight = nullptr;    // a stored W, dequantized: at least n_out * n_in
    bf16 * x_drop = nullptr;    // dropout(x): N * n_in
    float * y32 = nullptr;      // f32 sum before a bf16 output: N * n_out
    bf16 * gu = nullptr;        // gradient of u: N * rank
    float * dx_drop = nullptr;  // gradient of dropout(x): N * n_in
};

struct LinearContext {
    const Blas & blas;
    const LinearScratch & scratch;
    cudaStream_t stream;
};

// W as bf16: itself, or dequantized into scratch.weight.
const bf16 * base_weight_bf16(const LinearContext & c, const BaseLinear & W);

// y [N x n_out] bf16 = the projection of x [N x n_in]; u [N x rank] receives A dropout(x)
// when lora is given.
void lora_linear_forward(const LinearContext & c, bf16 * y, const bf16 * x, int64_t N, const BaseLinear & W,
                         const LoraLinear * lora, bf16 * u);
// y [N x n_out] f32 += the projection of x (no bias: the o and down projections, whose
// output is added to the residual stream). y null: only u is computed (the recompute of an
// activation checkpoint, which needs u but already has the layer's output).
void lora_linear_forward_add(const LinearContext & c, float * y, const bf16 * x, int64_t N, const BaseLinear & W,
                             const LoraLinear * lora, bf16 * u);
// From dy [N x n_out] (bf16), x and u of the forward: dx [N x n_in] f32 (= or += with
// accumulate; null: not needed) and the adapter's gradients (+=).
void lora_linear_backward(const LinearContext & c, float * dx, bool accumulate, const bf16 * dy, const bf16 * x,
                          int64_t N, const BaseLinear & W, const LoraLinear * lora, const bf16 * u);

}  // namespace selftune::train::cuda
