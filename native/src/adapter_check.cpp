#include "adapter_check.h"

#include "gguf_keys.h"

#include "ggml.h"
#include "gguf.h"

#include <map>
#include <string>

namespace selftune {

namespace {

// Beyond any alpha a trainer writes (PEFT's defaults are 8 .. 2 x rank); a scale of
// alpha / rank this large already swamps the base weights.
constexpr double kMaxAlpha = 65536.0;

bool ends_with(const std::string & s, const std::string & suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct Pair {
    int64_t a = -1, b = -1;   // tensor ids
};

void check_pair(const GgufKeys & k, const std::string & base, const Pair & p, const ModelSettings * model) {
    if (p.a < 0 || p.b < 0) k.fail("LoRA tensor " + base + (p.a < 0 ? ".lora_a" : ".lora_b") + " is missing (its pair is present)");
    const int64_t * a = gguf_get_tensor_ne(k.g, p.a);
    const int64_t * b = gguf_get_tensor_ne(k.g, p.b);
    for (const auto & [ne, which] : {std::pair{a, ".lora_a"}, std::pair{b, ".lora_b"}}) {
        if (ne[2] != 1 || ne[3] != 1) k.fail("LoRA tensor " + base + which + " has shape " + shape_text(ne) + "; it must be 2-D");
        if (ne[0] < 1 || ne[1] < 1) k.fail("LoRA tensor " + base + which + " has shape " + shape_text(ne) + ", which is empty");
    }
    for (int64_t id : {p.a, p.b}) {
        const ggml_type t = gguf_get_tensor_type(k.g, id);
        if (t != GGML_TYPE_F32 && t != GGML_TYPE_F16 && t != GGML_TYPE_BF16 && t != GGML_TYPE_Q8_0) {
            k.fail("LoRA tensor " + std::string(gguf_get_tensor_name(k.g, id)) + " has type " + ggml_type_name(t) +
                   ", expected f32, f16, bf16 or q8_0");
        }
    }
    // llama.cpp's rank is B's first dimension. A is [n_in, r] and B [r, n_out], except for
    // token_embd, whose A is looked up by token id: A [r, n_vocab], B [r, n_embd].
    const bool embedding = ends_with(base, "token_embd.weight");
    const int64_t rank_a = embedding ? a[0] : a[1];
    if (rank_a != b[0]) {
        k.fail("LoRA tensors " + base + ".lora_a " + shape_text(a) + " and .lora_b " + shape_text(b) +
               " have different ranks (" + std::to_string(rank_a) + " and " + std::to_string(b[0]) + ")");
    }
    if (!model) return;
    const auto it = model->tensors.find(base);
    if (it == model->tensors.end()) {
        k.fail("LoRA tensor " + base + " adapts a tensor the model " + model->path + " does not have");
    }
    if (embedding && !model->tensors.count("output.weight")) {
        // The model's output projection is token_embd itself, and llama.cpp applies a pair
        // to every use of its weight: as the output matmul the transposed A does not fit
        // (GGML_ASSERT in ggml_mul_mat).
        k.fail("LoRA tensor " + base + " adapts token_embd, which the model " + model->path +
               " also uses as its output (no output.weight); llama.cpp cannot apply such a pair");
    }
    const auto & w = it->second.ne;
    const int64_t n_in = embedding ? a[1] : a[0];
    const int64_t n_out = b[1];
    // For token_embd the lookup dimension is the vocabulary (the weight's second) and B
    // maps into the embedding (its first).
    const bool fits = embedding ? (n_in == w[1] && n_out == w[0]) : (n_in == w[0] && n_out == w[1]);
    if (!fits || w[2] != 1 || w[3] != 1) {
        k.fail("LoRA tensors " + base + ".lora_a " + shape_text(a) + " / .lora_b " + shape_text(b) +
               " do not fit the model's " + base + " " + shape_text(w.data()));
    }
}

}  // namespace

void check_adapter_settings(const CheckedGguf & file, const std::string & model_arch, const ModelSettings * model) {
    check_lora_adapter_keys(file, model_arch);
    const GgufKeys k{file.path, file.gguf.get()};
    k.f32_in("adapter.lora.alpha", 0, kMaxAlpha, "the LoRA scale numerator; 0 means a scale of 1");
    std::map<std::string, Pair> pairs;
    const int64_t n = gguf_get_n_tensors(k.g);
    for (int64_t id = 0; id < n; id++) {
        const std::string name = gguf_get_tensor_name(k.g, id);
        if (ends_with(name, ".lora_a")) {
            pairs[name.substr(0, name.size() - 7)].a = id;
        } else if (ends_with(name, ".lora_b")) {
            pairs[name.substr(0, name.size() - 7)].b = id;
        } else if (!ends_with(name, "_norm.weight")) {   // llama.cpp skips those
            k.fail("tensor " + name + " is not a LoRA tensor (.lora_a or .lora_b)");
        }
    }
    if (pairs.empty()) k.fail("adapter has no LoRA tensors");
    for (const auto & [base, p] : pairs) check_pair(k, base, p, model);
}

void validate_adapter_file(const std::string & path, const std::string & model_arch, const ModelSettings * model) {
    check_adapter_settings(read_checked_gguf(path), model_arch, model);
}

}  // namespace selftune
