// Validates a GGUF file before llama.cpp sees it.
//
// llama.cpp turns most bad input into a NULL return, but some shapes of bad file reach a
// GGML_ASSERT (abort) instead — e.g. an adapter whose adapter.lora.alpha is not an f32.
// The addon must never take the process down, so everything we can cheaply check from
// the header is checked here first and reported as a readable error.
#pragma once

#include <cstdint>
#include <string>

namespace selftune {

struct GgufHeader {
    uint32_t    version = 0;
    int64_t     n_tensors = 0;
    int64_t     n_kv = 0;
    uint64_t    file_size = 0;
    std::string architecture;   // general.architecture
    std::string general_type;   // general.type ("model", "adapter", or empty)
};

// Throws std::runtime_error naming the file and the problem: missing, not a regular
// file, not a GGUF, unreadable/truncated header, tensor data past the end of the file,
// general.architecture missing or not a string.
GgufHeader check_gguf(const std::string & path);

// check_gguf plus what llama_adapter_lora_init reads without type checks:
// general.type == "adapter", adapter.type == "lora", adapter.lora.alpha an f32 when set,
// and general.architecture equal to `model_arch`.
GgufHeader check_lora_adapter(const std::string & path, const std::string & model_arch);

}  // namespace selftune
