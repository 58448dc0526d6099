// Typed reads of GGUF metadata for the validators (model_check, vocab_check, adapter_check).
//
// llama.cpp reads each key as one exact GGUF type and throws on any other, but it reads
// some values with gguf_get_val_* directly, which abort on a type mismatch; and nothing
// there checks that a float is finite. These readers check the type first and throw a
// std::runtime_error that names the file and the key, so every validator reports a bad
// key the same way: "<path>: llama.block_count must be a u32, is i32".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct gguf_context;

namespace selftune {

struct GgufKeys {
    const std::string & path;
    const gguf_context * g;

    [[noreturn]] void fail(const std::string & why) const;

    bool has(const std::string & key) const;
    // The GGUF type name of a key ("u32", "array", ...), "" when absent.
    std::string type_of(const std::string & key) const;

    // Absent: nullopt, or an error naming the key when `required`. Wrong type: an error.
    std::optional<uint32_t>    u32(const std::string & key, bool required = false) const;
    std::optional<float>       f32(const std::string & key, bool required = false) const;
    std::optional<bool>        boolean(const std::string & key) const;
    std::optional<std::string> str(const std::string & key, bool required = false) const;

    // llama.cpp's get_key_or_arr: a u32, or an array of n_layer u32/i32 (one per layer).
    // Returns n_layer values; `fallback` fills them when the key is absent.
    std::vector<uint32_t> u32_per_layer(const std::string & key, uint32_t n_layer, bool required,
                                        uint32_t fallback) const;

    // An f32 that must be finite and inside [lo, hi]; `why` explains the range in the error.
    std::optional<float> f32_in(const std::string & key, double lo, double hi, const char * why,
                                bool required = false) const;
    // A u32 inside [lo, hi].
    std::optional<uint32_t> u32_in(const std::string & key, uint64_t lo, uint64_t hi, const char * why,
                                   bool required = false) const;
};

// "nan", "inf", "-inf" or the shortest decimal that reads back as the same float.
std::string float_text(double v);

// A tensor's ggml shape (ne[0..3]) for messages, trailing 1s dropped: "[64, 4]".
std::string shape_text(const int64_t * ne);

}  // namespace selftune
