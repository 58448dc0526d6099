// Validates a GGUF file before llama.cpp sees it.
//
// llama.cpp turns most bad input into a NULL return, but some shapes of bad file reach a
// GGML_ASSERT (abort) instead — e.g. an adapter whose adapter.lora.alpha is not an f32.
// The addon must never take the process down, so everything we can cheaply check from
// the header is checked here first and reported as a readable error.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

struct gguf_context;
struct ggml_context;

namespace selftune {

struct GgufHeader {
    uint32_t    version = 0;
    int64_t     n_tensors = 0;
    int64_t     n_kv = 0;
    uint64_t    file_size = 0;
    std::string architecture;   // general.architecture
    std::string general_type;   // general.type ("model", "adapter", or empty)
};

struct GgufContextFree {
    void operator()(gguf_context * ctx) const;
};
struct GgmlContextFree {
    void operator()(ggml_context * ctx) const;
};

// A GGUF header that passed check_gguf, kept parsed so the model and adapter validators
// (model_check.h, adapter_check.h) read the same metadata and tensor table without
// parsing the file again. `tensors` holds the tensor descriptors (no data).
struct CheckedGguf {
    std::string path;
    GgufHeader header;
    std::unique_ptr<gguf_context, GgufContextFree> gguf;
    std::unique_ptr<ggml_context, GgmlContextFree> tensors;
};

// Throws std::runtime_error naming the file and the problem: missing, not a regular
// file, not a GGUF, unreadable/truncated header, tensor data past the end of the file,
// general.architecture missing or not a string.
GgufHeader check_gguf(const std::string & path);
CheckedGguf read_checked_gguf(const std::string & path);

// What llama_adapter_lora_init reads without type checks: general.type == "adapter",
// adapter.type == "lora", adapter.lora.alpha an f32 when set, and general.architecture
// equal to `model_arch` (unless empty). The rest of an adapter: adapter_check.h.
void check_lora_adapter_keys(const CheckedGguf & file, const std::string & model_arch);

}  // namespace selftune
