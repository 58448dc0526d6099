// The training engine's contract: what a backend (cpu/ the reference, cuda/ the fast path)
// implements. Objectives over backends: a backend computes, for a micro-batch of token
// sequences,
//   forward:  logp[i] = log p(target i | its prefix) for every loss target i, in batch
//             order (sequence, then position);
//   backward: the LoRA gradient of  sum_i weight[i] * logp[i]  for the last forward, added
//             to the accumulated gradient;
// and knows no loss. The objective (objective.h: SFT's token-mean cross-entropy, DPO over
// per-sequence sums) turns log-probs into a loss and the weights d loss / d logp, once,
// above every backend. The optimizer step, schedule, data plan and checkpoints live in the
// trainer (trainer.h).
//
// A BaseModel is the frozen base, loaded from a GGUF by the backend that computes with it
// (the CPU one dequantizes to f32 in host memory, the CUDA one keeps bf16 or the stored
// quantized blocks in device memory). A Backend is one training session over it: LoRA
// parameters, their gradient and the AdamW moments, in the flat layout of LoraLayout, on
// the backend's device. Host copies move only for checkpoints and adapters (read_/write_).
//
// Determinism: results are a function of the input (no atomic-order sums), so a resumed
// run ends where an uninterrupted one does. The CPU backend is the oracle: a device backend
// is tested against it on the same micro-batches (log-probs, gradient, a step).
#pragma once

#include "train/batch.h"
#include "train/dropout.h"
#include "train/lora.h"
#include "train/model_config.h"
#include "train/optimizer.h"
#include "train/weights.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace selftune::train {

// How a backend holds the frozen base.
enum class BaseStorage {
    dense,    // dequantized to the backend's compute type (CPU: f32, CUDA: bf16)
    stored,   // as stored in the GGUF (q4_K, q8_0, ... kept quantized), dequantized per use;
              // the GGUF analogue of QLoRA. The CPU backend always holds f32.
};
const char * base_storage_name(BaseStorage s);   // "dense" | "stored"

struct BackendOptions {
    std::string kind = "auto";   // "cpu" | "cuda" | "auto": cuda when built with it and a GPU is present
    int device = 0;              // cuda: device ordinal
    BaseStorage storage = BaseStorage::dense;
};

struct SessionOptions {
    int n_threads = 0;                     // cpu: worker threads (0: physical cores)
    bool checkpoint_activations = false;   // keep only each layer's input; recompute the rest in backward
};

struct ForwardOptions {
    bool use_lora = true;       // false: the base model alone
    bool for_backward = false;  // keep what backward() needs, until the next forward
    DropoutSpec dropout;        // applied only with use_lora
};

struct ForwardResult {
    int64_t n_targets = 0;   // loss targets (= logp.size())
    int64_t n_tokens = 0;    // real (unpadded) tokens processed
};

struct MemoryStats {
    uint64_t base_bytes = 0;    // the frozen base as held
    uint64_t peak_bytes = 0;    // device high-water mark of this process (0 on the CPU backend)
};

class Backend {
  public:
    virtual ~Backend() = default;

    virtual std::string name() const = 0;     // "cpu" | "cuda"
    virtual std::string device() const = 0;   // e.g. "CPU, 2 threads" | "NVIDIA H200, bf16 base"
    virtual const ModelConfig & model_config() const = 0;
    virtual const LoraLayout & layout() const = 0;
    virtual MemoryStats memory() const = 0;

    virtual void read_params(float * dst) const = 0;
    virtual void write_params(const float * src) = 0;
    virtual void read_moments(float * m, float * v) const = 0;
    virtual void write_moments(const float * m, const float * v) = 0;
    virtual void read_grads(float * dst) const = 0;

    virtual void zero_grad() = 0;
    // logp receives log p of each loss target of `batch` (batch order). Validates the batch.
    virtual ForwardResult forward(const MicroBatch & batch, const ForwardOptions & options,
                                  std::vector<double> & logp) = 0;
    // weight[i] = d loss / d logp[i] for the targets of the last forward, which must have
    // been run with for_backward; adds the LoRA gradient to the accumulated one.
    virtual void backward(const std::vector<double> & weight) = 0;
    virtual double grad_norm_sq() const = 0;
    // One AdamW update of every parameter from the accumulated gradient.
    virtual void adamw_step(const AdamWStep & step) = 0;

    // Logits of every position of one sequence: [tokens.size() x n_vocab]; or only the
    // last position's when last_only. llama_parity: the CPU backend's parity-test mode
    // (CpuTransformer::set_llama_parity); other backends ignore it.
    virtual void logits(const std::vector<int32_t> & tokens, bool use_lora, bool last_only,
                        std::vector<float> & out, bool llama_parity = false) = 0;
};

// The frozen base as one backend holds it. Sessions keep their base alive.
class BaseModel : public std::enable_shared_from_this<BaseModel> {
  public:
    virtual ~BaseModel() = default;
    virtual std::string backend() const = 0;   // "cpu" | "cuda"
    virtual std::string device() const = 0;
    virtual BaseStorage storage() const = 0;
    virtual const ModelConfig & config() const = 0;
    virtual const WeightsSource & source() const = 0;
    virtual uint64_t bytes() const = 0;        // memory the base takes where it lives
    // A training session: LoRA parameters (zero until written), gradient and moments zero.
    virtual std::unique_ptr<Backend> new_session(const LoraLayout & layout, const SessionOptions & options) = 0;
};

// Loads `path` with the backend options.kind names ("auto": CUDA when cuda_backend_usable()).
// Throws std::runtime_error naming the file, or the reason CUDA cannot be used when asked for.
std::shared_ptr<BaseModel> load_base_model(const std::string & path, const BackendOptions & options);

// The CPU backend over f32 weights already in memory (tests, gradient checks).
std::shared_ptr<BaseModel> make_cpu_base_model(std::shared_ptr<const BaseWeights<float>> weights,
                                               const WeightsSource & source);

bool cuda_backend_built();    // the addon was compiled with the CUDA training backend
// A CUDA device can be used; when not, `why` says why (not built, no device, driver error).
bool cuda_backend_usable(std::string * why = nullptr);

}  // namespace selftune::train
