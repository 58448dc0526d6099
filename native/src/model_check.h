// Checks a GGUF model's settings against its architecture and its tensor table before
// llama.cpp (or the training engine) sees the file.
//
// llama.cpp trusts the hyper-parameters it reads: a block_count above 512, a rope
// dimension count that is not the head size, a head_count_kv of 0 reach a GGML_ASSERT or a
// division by zero and take the whole process down; a NaN epsilon or rope frequency loads
// and then aborts or turns every logit into NaN at the first decode. Every such setting is
// checked here, and a failure is a std::runtime_error naming the file and the key or tensor:
//   "<path>: llama.rope.dimension_count is 48 but the head size is 16
//    (llama.embedding_length 64 / llama.attention.head_count 4)"
//
// What is checked (specs/inference.md, "Bad files"):
// - any architecture: the generic keys llama.cpp reads for every model (context and
//   embedding length, block_count 1..512, head counts and head sizes, expert counts, rope
//   dimension, frequency base and scaling, epsilons) have llama.cpp's types and sane
//   ranges, and every float under `<arch>.` is finite; the vocabulary (vocab_check.h);
// - llama and qwen2: every tensor's name, type and shape against what the architecture
//   builds from those settings (blk.N for N < block_count, head sizes, the vocabulary
//   size), no tensor missing or left over.
#pragma once

#include "gguf_check.h"

#include <array>
#include <cstdint>
#include <map>
#include <string>

namespace selftune {

struct TensorShape {
    std::array<int64_t, 4> ne{1, 1, 1, 1};
    int32_t type = 0;   // ggml_type
};

// What a checked model offers the adapter check (adapter_check.h).
struct ModelSettings {
    std::string path;
    std::string architecture;
    uint32_t n_vocab = 0;
    uint32_t n_embd = 0;
    uint32_t n_layer = 0;
    std::map<std::string, TensorShape> tensors;
};

// `vocab_only`: the caller reads only the tokenizer (llama.cpp's vocab_only load), so only
// the header and the tokenizer keys are checked.
ModelSettings check_model_settings(const CheckedGguf & file, bool vocab_only);

// read_checked_gguf, refuse an adapter or a file without tensors (unless `vocab_only`),
// then check_model_settings: what every model load runs first.
ModelSettings validate_model_file(const std::string & path, bool vocab_only);

}  // namespace selftune
