// The hyper-parameters of a llama/qwen2-family decoder, as the training engine needs them.
// Read from a GGUF file's metadata (weights.cpp) or built by hand for tests.
#pragma once

#include <cstdint>
#include <string>

namespace selftune::train {

// How RoPE pairs the dimensions of a head (ggml's rope modes, see ggml-cpu/ops.cpp):
//   norm: adjacent pairs (2i, 2i+1)        - llama (LLAMA_ROPE_TYPE_NORM)
//   neox: halves (i, i + head_dim/2)       - qwen2 (LLAMA_ROPE_TYPE_NEOX)
enum class RopeMode { norm, neox };

struct ModelConfig {
    std::string arch;        // "llama" or "qwen2": also general.architecture of the adapter
    int32_t n_vocab = 0;
    int32_t n_embd = 0;      // D
    int32_t n_layer = 0;
    int32_t n_head = 0;      // H
    int32_t n_head_kv = 0;   // Hkv; H % Hkv == 0 (grouped-query attention)
    int32_t head_dim = 0;    // D / H
    int32_t n_ff = 0;        // F
    RopeMode rope = RopeMode::norm;
    float rope_base = 10000.0f;
    float rms_eps = 1e-5f;
    bool qkv_bias = false;   // qwen2 adds biases to q, k, v
    bool tied_output = false;   // no output.weight: logits use token_embd

    int32_t q_dim() const { return n_head * head_dim; }
    int32_t kv_dim() const { return n_head_kv * head_dim; }
};

}  // namespace selftune::train
