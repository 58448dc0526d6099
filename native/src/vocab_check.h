// Checks a GGUF file's tokenizer.* metadata before llama.cpp builds its vocabulary.
//
// llama.cpp's vocabulary loader aborts (GGML_ASSERT) when two entries of
// tokenizer.ggml.tokens are the same string, and reads tokenizer.ggml.scores and
// tokenizer.ggml.token_type by index without looking at anything but their length.
// Everything llama.cpp would throw on is reported here too, with the key named, so that
// `model info` and the loader give one verdict.
#pragma once

#include <cstdint>

namespace selftune {

struct GgufKeys;

// Returns the vocabulary size (entries of tokenizer.ggml.tokens). A tokenizer of type
// "none"/"no_vocab" is refused (llama.cpp's token getters assert on it). Throws naming the
// file and the key.
uint32_t check_vocabulary(const GgufKeys & keys, const char * arch);

}  // namespace selftune
