// The frozen base weights, dequantized to a plain floating-point type.
//
// Every matrix is stored as ggml stores it: a weight of ggml shape [n_in, n_out] is n_out
// contiguous rows of n_in values, i.e. row-major W[out][in], and y = W x. Dequantizing
// keeps the quantized model's values exactly (what llama.cpp multiplies with), so a Q4_K
// base trains against the same function it serves with.
#pragma once

#include "train/model_config.h"

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace selftune::train {

template <typename T>
struct LayerWeights {
    std::vector<T> attn_norm;           // [D]
    std::vector<T> wq, wk, wv;          // [q_dim x D], [kv_dim x D], [kv_dim x D]
    std::vector<T> bq, bk, bv;          // empty unless config.qkv_bias
    std::vector<T> wo;                  // [D x q_dim]
    std::vector<T> ffn_norm;            // [D]
    std::vector<T> w_gate, w_up;        // [F x D]
    std::vector<T> w_down;              // [D x F]
};

// The ggml type each matrix was stored as (ggml_type values), for the parity-test mode
// that mimics how llama.cpp's CPU matmuls round their inputs. Empty for built weights.
struct StoredTypes {
    int32_t output = 0;                              // output.weight, or token_embd when tied
    std::vector<std::array<int32_t, 7>> layer;       // [layer][LoraTarget order: q k v o gate up down]
};

template <typename T>
struct BaseWeights {
    ModelConfig config;
    StoredTypes types;
    std::vector<T> tok_embd;            // [n_vocab x D]
    std::vector<LayerWeights<T>> layers;
    std::vector<T> output_norm;         // [D]
    std::vector<T> output;              // [n_vocab x D]; empty when config.tied_output

    const T * output_matrix() const { return config.tied_output ? tok_embd.data() : output.data(); }
};

// What was read, for provenance and the training manifest.
struct WeightsSource {
    std::string path;
    std::string file_type;      // ggml type name of the attention q weight, e.g. "q4_K"
    uint64_t    n_params = 0;   // elements of every tensor read
};

// Reads a llama/qwen2 GGUF model and dequantizes every tensor to f32 through ggml's type
// traits. Throws std::runtime_error naming the file and the problem (unsupported
// architecture or type, missing tensor, wrong shape).
std::shared_ptr<const BaseWeights<float>> load_base_weights(const std::string & path, WeightsSource * source = nullptr);

// Reads only the hyper-parameters.
ModelConfig read_model_config(const std::string & path);

// Converts (for the double-precision gradient checks).
template <typename To, typename From>
BaseWeights<To> convert_weights(const BaseWeights<From> & w);

}  // namespace selftune::train
