// The CPU reference transformer: forward and backward of a llama/qwen2 decoder with LoRA
// over a packed batch, written as a sequence of the ops in cpu/ops/.
//
// Templated on the scalar type: float for training, double for the gradient checks.
// Only LoRA parameters receive gradients; the base is frozen, so the backward computes
// activation gradients and LoRA gradients, never base weight gradients.
#pragma once

#include "train/batch.h"
#include "train/packed_batch.h"
#include "train/cpu/ops/rope.h"
#include "train/dropout.h"
#include "train/lora.h"
#include "train/rng.h"
#include "train/thread_pool.h"
#include "train/weights.h"

#include <cstdint>
#include <vector>

namespace selftune::train {

template <typename T>
class CpuTransformer {
  public:
    CpuTransformer(const BaseWeights<T> & weights, const LoraLayout & layout, ThreadPool * pool);

    // Forward over `batch`: logp[i] = log p(target) of loss row i (batch.loss_rows order);
    // returns their negated sum. `lora` may be null (the base model). With for_backward,
    // keeps the activations, the batch, `lora` and the dropout for backward().
    double forward_logp(const PackedBatch & batch, const T * lora, const DropoutSpec & dropout,
                        std::vector<double> * logp, bool for_backward);
    // Adds to grads (same layout as lora) the gradient of sum_i weight[i] * logp[i] of the
    // last forward_logp(for_backward). The logits of the scored rows are recomputed a
    // chunk at a time rather than kept: [rows x vocabulary] would not fit.
    void backward(const double * weight, T * grads);

    // forward_logp + backward with every weight -grad_scale: adds the gradient of
    // grad_scale * (returned sum of -log p) when grads is non-null. For the gradient checks.
    double run(const PackedBatch & batch, const T * lora, T * grads, T grad_scale, const DropoutSpec & dropout,
               std::vector<double> * row_logprobs = nullptr);

    // Logits of every row: out = [n_rows x n_vocab]; or of the last row only.
    void logits(const PackedBatch & batch, const T * lora, std::vector<T> & out, bool last_only = false);

    const ModelConfig & config() const { return w_.config; }

    // Parity tests only: round where llama.cpp's CPU path rounds (flash attention off):
    // q, k, v and the attention probabilities to f16 (its default f16 KV cache), and each
    // matmul's input to the type its weight type multiplies with (f16, bf16, q8_0, q8_K).
    // A tight tolerance then separates "our forward is right" from "llama.cpp rounds".
    void set_llama_parity(bool on) { llama_parity_ = on; }

  private:
    struct LayerActs {
        std::vector<T> x_in;          // residual stream entering the layer [N x D]
        std::vector<T> xn1, r1;       // attn norm out, its 1/rms
        std::vector<T> q, k, v;       // after bias and RoPE (q, k)
        std::vector<T> att, lse;      // attention output [N x Qd], row log-sum-exp
        std::vector<T> x_mid;         // after the attention residual
        std::vector<T> xn2, r2;
        std::vector<T> g, u, h;       // gate, up, silu(gate) * up
        std::vector<std::vector<T>> lora_u;   // per target: A (dropout(x)) [N x r]
    };

    void forward(const PackedBatch & b, const T * lora, const DropoutSpec & dropout);
    void linear_forward(T * y, const T * x, int64_t N, const std::vector<T> & W, const std::vector<T> & bias,
                        int64_t I, int64_t O, int layer, int target, const T * lora, const DropoutSpec & dropout,
                        std::vector<T> & u_store);
    void linear_backward(T * dx, const T * dy, const T * x, int64_t N, const std::vector<T> & W, int64_t I, int64_t O,
                         int layer, int target, const T * lora, T * grads, const DropoutSpec & dropout,
                         const std::vector<T> & u_store);
    // The parity mode's rounding of a matmul input for a weight stored as `ggml_type`.
    const T * parity_input(const T * x, int64_t N, int64_t I, int32_t ggml_type, std::vector<T> & buf) const;
    // x * dropout mask of (slot, rows) into out.
    void apply_dropout(T * out, const T * x, int64_t N, int64_t I, int slot, const DropoutSpec & dropout);
    // Chunks of scored rows through the output matrix: -log p per row (and lse_rows_), or,
    // with weights, the gradient into dxnf.
    double head_forward(const PackedBatch & b, std::vector<double> * row_logprobs);
    // Final-norm rows of scored rows c0 .. c0+m into out [m x D].
    void gather_scored(const PackedBatch & b, int64_t c0, int64_t m, T * out) const;
    void head_backward(const PackedBatch & b, const double * weight, T * dxnf);

    const BaseWeights<T> & w_;
    const LoraLayout & layout_;
    ThreadPool * pool_;
    ops::RopeCache<T> rope_;
    std::vector<LayerActs> acts_;
    std::vector<T> x_out_, xnf_, rf_;   // final residual, final norm, its 1/rms
    std::vector<T> scratch_;
    // What backward() needs from the forward it follows.
    bool have_backward_state_ = false;
    PackedBatch last_batch_;
    const T * last_lora_ = nullptr;
    DropoutSpec last_dropout_;
    bool llama_parity_ = false;
};

}  // namespace selftune::train
