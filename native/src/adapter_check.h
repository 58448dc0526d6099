// Checks a GGUF LoRA adapter before llama.cpp (or the training engine) reads it.
//
// llama.cpp takes adapter.lora.alpha as it is (a NaN or inf alpha loads and turns every
// logit into NaN), checks a pair's shapes only against the base weight (a token_embd pair
// whose ranks differ reaches a GGML_ASSERT in the matmul at the first decode), and reads a
// third dimension of either tensor as if it were not there. Checked here:
// - the keys gguf_check.h checks (general.type, adapter.type, architecture);
// - adapter.lora.alpha finite and in 0 .. 65536;
// - every tensor a `<base>.lora_a` / `<base>.lora_b` pair (or a `_norm.weight`, which
//   llama.cpp skips), 2-D, f32/f16/bf16/q8_0, rank at least 1 and the same in A and B;
// - with a model: every base tensor exists in it and A and B fit its shape; no pair on
//   token_embd when the model ties its output to it (llama.cpp would apply the transposed
//   pair to the output matmul and assert).
// Errors name the file and the key or tensor.
#pragma once

#include "gguf_check.h"
#include "model_check.h"

#include <string>

namespace selftune {

// `model` may be null (`model info` on an adapter alone): then only the adapter itself is checked.
void check_adapter_settings(const CheckedGguf & file, const std::string & model_arch, const ModelSettings * model);

// read_checked_gguf then check_adapter_settings: what every adapter load runs first.
void validate_adapter_file(const std::string & path, const std::string & model_arch, const ModelSettings * model);

}  // namespace selftune
