// LoRA adapters in llama.cpp's GGUF format (src/llama-adapter.cpp reads it):
//   general.type = "adapter", general.architecture = the base model's,
//   adapter.type = "lora", adapter.lora.alpha (f32)
//   tensors "<base tensor>.lora_a" ggml [n_in, r] and "<base tensor>.lora_b" ggml [r, n_out], F32
// llama.cpp applies W x + (alpha / r) * B (A x): exactly the engine's forward.
#pragma once

#include "train/lora.h"
#include "train/model_config.h"

#include <string>
#include <utility>
#include <vector>

namespace selftune::train {

using MetaStrings = std::vector<std::pair<std::string, std::string>>;

// Writes atomically (temporary file, then rename). `meta` adds string keys (provenance).
void write_lora_adapter(const std::string & path, const ModelConfig & model, const LoraLayout & layout,
                        const float * params, const MetaStrings & meta);

struct LoadedAdapter {
    LoraConfig config;           // rank, alpha and targets from the file; dropout 0
    std::vector<float> params;   // in make_lora_layout(model, config) order
};

// Reads an adapter written by us or by llama.cpp's converter, provided it adapts the same
// set of projections in every layer (what LoraLayout can express). Throws naming the file.
LoadedAdapter read_lora_adapter(const std::string & path, const ModelConfig & model);

}  // namespace selftune::train
