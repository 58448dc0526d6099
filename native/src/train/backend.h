// The training engine's contract: what a backend (the CPU reference here, CUDA kernels
// later) implements. The trainer (trainer.h) drives it and knows nothing of devices.
//
// A backend owns, on its device: the frozen base weights, the LoRA parameters, their
// gradient, and the AdamW moments, all in the flat layout of LoraLayout. Host copies move
// only for checkpoints and adapters (read_/write_ below). Everything a backend computes
// must be deterministic for a given input (no atomics-order sums), so that a resumed run
// ends where an uninterrupted one does; the CPU backend's results do not even depend on
// its thread count. The CPU backend is the oracle: a device backend is tested against it
// on the same micro-batches (loss, gradient, parameters after a step).
#pragma once

#include "train/batch.h"
#include "train/cpu/transformer.h"
#include "train/lora.h"
#include "train/model_config.h"
#include "train/optimizer.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace selftune::train {

struct MicroResult {
    double loss_sum = 0;    // sum of -log p over the loss targets
    int64_t n_loss = 0;     // loss targets
    int64_t n_tokens = 0;   // real (unpadded) tokens processed
};

class Backend {
  public:
    virtual ~Backend() = default;

    virtual std::string name() const = 0;     // "cpu"
    virtual std::string device() const = 0;   // e.g. "CPU, 2 threads"
    virtual const ModelConfig & model_config() const = 0;
    virtual const LoraLayout & layout() const = 0;

    virtual void read_params(float * dst) const = 0;
    virtual void write_params(const float * src) = 0;
    virtual void read_moments(float * m, float * v) const = 0;
    virtual void write_moments(const float * m, const float * v) = 0;
    virtual void read_grads(float * dst) const = 0;

    virtual void zero_grad() = 0;
    // Forward and backward of one micro-batch; adds the gradient of grad_scale * loss_sum.
    virtual MicroResult accumulate(const MicroBatch & batch, float grad_scale, const DropoutSpec & dropout) = 0;
    virtual double grad_norm_sq() const = 0;
    // One AdamW update of every parameter from the accumulated gradient.
    virtual void adamw_step(const AdamWStep & step) = 0;

    // No dropout, no gradient. With use_lora false the base model alone. `logprobs`, when
    // given, receives log p of each loss target in batch order (sequence, then position).
    virtual MicroResult evaluate(const MicroBatch & batch, bool use_lora, std::vector<double> * logprobs) = 0;
    // Logits of every position of one sequence: [tokens.size() x n_vocab]; or only the
    // last position's when last_only. llama_parity: the parity-test mode of
    // CpuTransformer::set_llama_parity (a device backend may ignore it).
    virtual void logits(const std::vector<int32_t> & tokens, bool use_lora, bool last_only,
                        std::vector<float> & out, bool llama_parity = false) = 0;
};

std::unique_ptr<Backend> make_cpu_backend(std::shared_ptr<const BaseWeights<float>> weights, const LoraLayout & layout,
                                          int n_threads);

}  // namespace selftune::train
