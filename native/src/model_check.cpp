#include "model_check.h"

#include "gguf_keys.h"
#include "vocab_check.h"

#include "ggml.h"
#include "gguf.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace selftune {

namespace {

// llama.cpp's limits (src/llama-hparams.h): beyond them it asserts instead of throwing.
constexpr uint32_t kMaxLayers = 512;    // LLAMA_MAX_LAYERS
constexpr uint32_t kMaxExperts = 1024;  // LLAMA_MAX_EXPERTS
// Ours: far beyond any released model, small enough that no size computed from them overflows.
constexpr uint64_t kMaxContext = 1ull << 27;
constexpr uint64_t kMaxEmbedding = 1ull << 20;
constexpr uint64_t kMaxHeadSize = 1ull << 16;

const char * const kRopeScalingTypes[] = {"none", "linear", "yarn", "longrope"};

struct Hparams {
    uint32_t n_embd = 0;
    uint32_t n_layer = 0;
    uint32_t n_expert = 0;
    std::vector<uint32_t> n_ff, n_head, n_head_kv;
    uint32_t head_k = 0;   // 0: no attention heads (n_head of layer 0 is 0)
    uint32_t head_v = 0;
    uint32_t n_rot = 0;
    std::string head_k_source;   // how head_k was found, for messages
};

std::string layer_suffix(const std::vector<uint32_t> & per_layer, size_t il) {
    // Only name the layer when the key is an array: a scalar is the same everywhere.
    for (uint32_t v : per_layer) if (v != per_layer[0]) return " (layer " + std::to_string(il) + ")";
    return "";
}

void check_experts(const GgufKeys & k, const std::string & A, Hparams & h) {
    h.n_expert = k.u32_in(A + "expert_count", 0, kMaxExperts, "llama.cpp supports up to 1024 experts").value_or(0);
    const std::vector<uint32_t> used = k.u32_per_layer(A + "expert_used_count", h.n_layer, false, 0);
    const uint32_t used_max = *std::max_element(used.begin(), used.end());
    const uint32_t groups = k.u32(A + "expert_group_count").value_or(0);
    const uint32_t groups_used = k.u32(A + "expert_group_used_count").value_or(0);
    const std::string experts = A + "expert_count " + std::to_string(h.n_expert);
    if (h.n_expert == 0) {
        if (used_max > 0) k.fail(A + "expert_used_count is " + std::to_string(used_max) + " but there are no experts (" + experts + ")");
        if (groups > 0) k.fail(A + "expert_group_count is " + std::to_string(groups) + " but there are no experts (" + experts + ")");
        return;
    }
    if (used_max == 0) k.fail(A + "expert_used_count must be at least 1 with " + experts);
    if (used_max > h.n_expert) k.fail(A + "expert_used_count " + std::to_string(used_max) + " exceeds " + experts);
    if (groups >= h.n_expert) k.fail(A + "expert_group_count " + std::to_string(groups) + " must be below " + experts);
    if (groups > 1) {
        if (h.n_expert % groups != 0) k.fail(A + "expert_group_count " + std::to_string(groups) + " does not divide " + experts);
        if (groups_used == 0 || groups_used >= groups) {
            k.fail(A + "expert_group_used_count is " + std::to_string(groups_used) + ", must be 1 .. " + std::to_string(groups - 1));
        }
    }
}

void check_rope_and_norms(const GgufKeys & k, const std::string & A) {
    if (const auto type = k.str(A + "rope.scaling.type")) {
        bool known = false;
        for (const char * t : kRopeScalingTypes) known = known || *type == t;
        if (!known) k.fail(A + "rope.scaling.type is '" + *type + "', not one of none, linear, yarn, longrope");
    }
    const char * base_why = "the RoPE frequency base: 10000 for llama 2, 500000 for llama 3, 1000000 for qwen2";
    k.f32_in(A + "rope.freq_base", 1, 1e12, base_why);
    k.f32_in(A + "rope.freq_base_swa", 1, 1e12, base_why);
    // llama.cpp uses 1/factor as the frequency scale; 0 means unset.
    for (const char * key : {"rope.scaling.factor", "rope.scale_linear"}) {
        const auto factor = k.f32_in(A + key, 0, 1e4, "the context extension factor; 0 means none");
        if (factor && *factor != 0.0f && *factor < 1e-3f) {
            k.fail(A + key + " is " + float_text(*factor) + "; a factor must be 0 (none) or at least 0.001");
        }
    }
    k.f32_in(A + "rope.scaling.attn_factor", 1e-6, 1e3, "a multiplier of the attention logits");
    const char * eps_why = "a small positive number added before a square root, e.g. 1e-5 or 1e-6";
    k.f32_in(A + "attention.layer_norm_rms_epsilon", 1e-30, 0.1, eps_why);
    k.f32_in(A + "attention.layer_norm_epsilon", 1e-30, 0.1, eps_why);
    k.f32_in(A + "attention.scale", 0, 1e3, "the attention logit scale; 0 means 1/sqrt(head size)");
}

void check_heads(const GgufKeys & k, const std::string & A, Hparams & h) {
    h.n_ff = k.u32_per_layer(A + "feed_forward_length", h.n_layer, false, 0);
    h.n_head = k.u32_per_layer(A + "attention.head_count", h.n_layer, false, 0);
    h.n_head_kv = k.has(A + "attention.head_count_kv") ? k.u32_per_layer(A + "attention.head_count_kv", h.n_layer, false, 0)
                                                       : h.n_head;
    for (size_t il = 0; il < h.n_layer; il++) {
        const uint32_t n_head = h.n_head[il], n_kv = h.n_head_kv[il];
        if (n_kv > 0 && (n_head == 0 || n_head % n_kv != 0)) {
            k.fail(A + "attention.head_count_kv " + std::to_string(n_kv) + " does not divide " + A +
                   "attention.head_count " + std::to_string(n_head) + layer_suffix(h.n_head_kv, il));
        }
    }
    if (h.n_head[0] == 0) return;   // no attention (recurrent architectures)

    const std::string E = A + "embedding_length " + std::to_string(h.n_embd);
    const std::string H = A + "attention.head_count " + std::to_string(h.n_head[0]);
    if (const auto key_length = k.u32_in(A + "attention.key_length", 1, kMaxHeadSize, "the size of one attention head")) {
        h.head_k = *key_length;
        h.head_k_source = A + "attention.key_length";
    } else {
        h.head_k = h.n_embd / h.n_head[0];
        h.head_k_source = E + " / " + H;
        if (h.head_k == 0) k.fail("the head size is 0 (" + h.head_k_source + ")");
    }
    h.head_v = k.u32_in(A + "attention.value_length", 1, kMaxHeadSize, "the size of one attention head")
                   .value_or(h.n_embd / h.n_head[0]);
    if (h.head_v == 0) k.fail("the value head size is 0 (" + E + " / " + H + ")");
    h.n_rot = k.u32(A + "rope.dimension_count").value_or(h.head_k);
    // ggml's rope rotates pairs within one head.
    if (h.n_rot > h.head_k || h.n_rot % 2 != 0) {
        k.fail(A + "rope.dimension_count is " + std::to_string(h.n_rot) + " but the head size is " +
               std::to_string(h.head_k) + " (" + h.head_k_source + "); it must be even and at most the head size");
    }
}

// Every float llama.cpp may read for this architecture is finite: beyond the keys with
// known ranges above, architectures read their own (logit scales, yarn parameters, ...).
void check_finite_floats(const GgufKeys & k, const std::string & A) {
    const int64_t n = gguf_get_n_kv(k.g);
    for (int64_t id = 0; id < n; id++) {
        const std::string key = gguf_get_key(k.g, id);
        if (key.compare(0, A.size(), A) != 0) continue;
        const gguf_type t = gguf_get_kv_type(k.g, id);
        if (t == GGUF_TYPE_FLOAT32 || t == GGUF_TYPE_FLOAT64) {
            const double v = t == GGUF_TYPE_FLOAT32 ? gguf_get_val_f32(k.g, id) : gguf_get_val_f64(k.g, id);
            if (!std::isfinite(v)) k.fail(key + " is " + float_text(v) + ", not a finite number");
        } else if (t == GGUF_TYPE_ARRAY) {
            const gguf_type item = gguf_get_arr_type(k.g, id);
            if (item != GGUF_TYPE_FLOAT32 && item != GGUF_TYPE_FLOAT64) continue;
            const size_t m = gguf_get_arr_n(k.g, id);
            const void * data = gguf_get_arr_data(k.g, id);
            for (size_t i = 0; i < m; i++) {
                const double v = item == GGUF_TYPE_FLOAT32 ? static_cast<const float *>(data)[i] : static_cast<const double *>(data)[i];
                if (!std::isfinite(v)) k.fail(key + "[" + std::to_string(i) + "] is " + float_text(v) + ", not a finite number");
            }
        }
    }
}

Hparams check_generic_hparams(const GgufKeys & k, const std::string & arch) {
    const std::string A = arch + ".";
    k.str("general.name");
    k.u32("general.file_type");
    Hparams h;
    k.u32_in(A + "context_length", 1, kMaxContext, "the context the model was trained for, in tokens", true);
    h.n_embd = *k.u32_in(A + "embedding_length", 1, kMaxEmbedding, "the hidden size", true);
    h.n_layer = *k.u32_in(A + "block_count", 1, kMaxLayers, "llama.cpp supports 1 to 512 layers", true);
    if (const auto nextn = k.u32(A + "nextn_predict_layers"); nextn && *nextn > h.n_layer) {
        k.fail(A + "nextn_predict_layers " + std::to_string(*nextn) + " exceeds " + A + "block_count " + std::to_string(h.n_layer));
    }
    check_experts(k, A, h);
    check_heads(k, A, h);
    check_rope_and_norms(k, A);
    check_finite_floats(k, A);
    return h;
}

// ---- llama and qwen2: the whole tensor table -------------------------------------------

struct Expected {
    std::array<int64_t, 4> ne{1, 1, 1, 1};
    bool required = true;
    std::string why;   // the settings the shape comes from
};
using TensorTable = std::map<std::string, Expected>;

// Requires the per-layer keys llama.cpp's llama and qwen2 builders divide by.
void check_llama_family_hparams(const GgufKeys & k, const std::string & arch, const Hparams & h) {
    const std::string A = arch + ".";
    k.f32(A + "attention.layer_norm_rms_epsilon", true);
    // Next-token-prediction layers change which blocks llama.cpp builds; these families have none.
    if (const auto nextn = k.u32(A + "nextn_predict_layers"); nextn && *nextn != 0) {
        k.fail(A + "nextn_predict_layers is " + std::to_string(*nextn) + "; " + arch + " models have no prediction layers");
    }
    if (!k.has(A + "feed_forward_length")) k.fail("missing metadata key " + A + "feed_forward_length");
    if (!k.has(A + "attention.head_count")) k.fail("missing metadata key " + A + "attention.head_count");
    for (size_t il = 0; il < h.n_layer; il++) {
        if (h.n_ff[il] == 0) k.fail(A + "feed_forward_length is 0" + layer_suffix(h.n_ff, il));
        if (h.n_head[il] == 0) k.fail(A + "attention.head_count is 0" + layer_suffix(h.n_head, il));
        if (h.n_head_kv[il] == 0) k.fail(A + "attention.head_count_kv is 0" + layer_suffix(h.n_head_kv, il));
    }
    if (!k.has(A + "attention.key_length") && h.n_embd % h.n_head[0] != 0) {
        k.fail(A + "embedding_length " + std::to_string(h.n_embd) + " is not a multiple of " + A + "attention.head_count " +
               std::to_string(h.n_head[0]));
    }
    // The graphs assert all three are one size (src/models/llama.cpp, qwen2.cpp).
    if (h.head_v != h.head_k) {
        k.fail(A + "attention.value_length is " + std::to_string(h.head_v) + " but the head size is " + std::to_string(h.head_k) +
               " (" + h.head_k_source + ")");
    }
    if (h.n_rot != h.head_k) {
        k.fail(A + "rope.dimension_count is " + std::to_string(h.n_rot) + " but the head size is " + std::to_string(h.head_k) +
               " (" + h.head_k_source + ")");
    }
    if (arch == "qwen2") {
        // qwen2's q and output projections are embedding_length square.
        for (size_t il = 0; il < h.n_layer; il++) {
            if ((uint64_t) h.head_k * h.n_head[il] != h.n_embd) {
                k.fail("the head size " + std::to_string(h.head_k) + " (" + h.head_k_source + ") times " + A +
                       "attention.head_count " + std::to_string(h.n_head[il]) + " is not " + A + "embedding_length " +
                       std::to_string(h.n_embd) + ", which qwen2 requires" + layer_suffix(h.n_head, il));
            }
        }
    }
}

TensorTable llama_family_tensors(const std::string & arch, const Hparams & h, uint32_t n_vocab, const gguf_context * g) {
    const bool qwen2 = arch == "qwen2";
    const int64_t E = h.n_embd, V = n_vocab;
    const std::string e = "embedding_length", v = "the vocabulary size";
    TensorTable t;
    auto add = [&](const std::string & name, std::array<int64_t, 4> ne, bool required, std::string why) {
        t[name] = Expected{ne, required, std::move(why)};
    };
    add("token_embd.weight", {E, V, 1, 1}, true, e + ", " + v);
    add("output_norm.weight", {E, 1, 1, 1}, true, e);
    add("output.weight", {E, V, 1, 1}, false, e + ", " + v);
    if (qwen2) add("output.bias", {V, 1, 1, 1}, false, v);
    if (!qwen2) add("rope_freqs.weight", {h.n_rot / 2, 1, 1, 1}, false, "rope.dimension_count / 2");
    for (uint32_t il = 0; il < h.n_layer; il++) {
        const std::string b = "blk." + std::to_string(il) + ".";
        const int64_t F = h.n_ff[il];
        const int64_t Q = qwen2 ? E : (int64_t) h.head_k * h.n_head[il];
        const int64_t K = (int64_t) h.head_k * h.n_head_kv[il];
        const int64_t Vv = (int64_t) h.head_v * h.n_head_kv[il];
        const std::string q = "head size x attention.head_count", kv = "head size x attention.head_count_kv";
        const std::string f = "feed_forward_length";
        add(b + "attn_norm.weight", {E, 1, 1, 1}, true, e);
        const bool fused = gguf_find_tensor(g, (b + "attn_qkv.weight").c_str()) >= 0;
        if (fused) {
            add(b + "attn_qkv.weight", {E, Q + K + Vv, 1, 1}, true, e + ", q + k + v widths");
            add(b + "attn_qkv.bias", {Q + K + Vv, 1, 1, 1}, false, "q + k + v widths");
        } else {
            add(b + "attn_q.weight", {E, Q, 1, 1}, true, e + ", " + (qwen2 ? e : q));
            add(b + "attn_k.weight", {E, K, 1, 1}, true, e + ", " + kv);
            add(b + "attn_v.weight", {E, Vv, 1, 1}, true, e + ", " + kv);
        }
        add(b + "attn_q.bias", {Q, 1, 1, 1}, false, qwen2 ? e : q);
        add(b + "attn_k.bias", {K, 1, 1, 1}, false, kv);
        add(b + "attn_v.bias", {Vv, 1, 1, 1}, false, kv);
        add(b + "attn_output.weight", {Q, E, 1, 1}, true, (qwen2 ? e : q) + ", " + e);
        if (!qwen2) add(b + "attn_output.bias", {E, 1, 1, 1}, false, e);
        add(b + "ffn_norm.weight", {E, 1, 1, 1}, true, e);
        add(b + "ffn_gate.weight", {E, F, 1, 1}, true, e + ", " + f);
        add(b + "ffn_up.weight", {E, F, 1, 1}, true, e + ", " + f);
        add(b + "ffn_down.weight", {F, E, 1, 1}, true, f + ", " + e);
        if (!qwen2) {
            add(b + "ffn_gate.bias", {F, 1, 1, 1}, false, f);
            add(b + "ffn_up.bias", {F, 1, 1, 1}, false, f);
            add(b + "ffn_down.bias", {E, 1, 1, 1}, false, e);
        }
    }
    return t;
}

// "blk.7.attn_q.weight" -> 7; -1 for a tensor outside the blocks.
int64_t block_of(const std::string & name) {
    if (name.compare(0, 4, "blk.") != 0) return -1;
    size_t i = 4;
    int64_t n = 0;
    if (i >= name.size() || !std::isdigit((unsigned char) name[i])) return -1;
    while (i < name.size() && std::isdigit((unsigned char) name[i]) && n < (1 << 20)) n = n * 10 + (name[i++] - '0');
    return i < name.size() && name[i] == '.' ? n : -1;
}

bool matrix_type_ok(ggml_type type) {
    return type == GGML_TYPE_F32 || type == GGML_TYPE_F16 || type == GGML_TYPE_BF16 || ggml_is_quantized(type);
}

void check_tensor_table(const GgufKeys & k, const std::string & arch, const Hparams & h, const TensorTable & table) {
    const std::string A = arch + ".";
    const std::string layers = A + "block_count is " + std::to_string(h.n_layer);
    const int64_t n = gguf_get_n_tensors(k.g);
    for (int64_t id = 0; id < n; id++) {
        const std::string name = gguf_get_tensor_name(k.g, id);
        const int64_t * ne = gguf_get_tensor_ne(k.g, id);
        const ggml_type type = gguf_get_tensor_type(k.g, id);
        const auto it = table.find(name);
        if (it == table.end()) {
            const int64_t blk = block_of(name);
            if (blk >= (int64_t) h.n_layer) k.fail("tensor " + name + " is for layer " + std::to_string(blk) + " but " + layers);
            k.fail("unexpected tensor " + name + ": " + arch + " models have no such tensor");
        }
        const Expected & x = it->second;
        if (!std::equal(x.ne.begin(), x.ne.end(), ne)) {
            k.fail("tensor " + name + " has shape " + shape_text(ne) + ", expected " + shape_text(x.ne.data()) + " (" + x.why + ")");
        }
        const bool vector = x.ne[1] == 1;
        // Norms and biases enter element-wise ops that take f32 only; matrices go through
        // matmuls and row lookups, which take the float and quantized types.
        if (vector ? type != GGML_TYPE_F32 : !matrix_type_ok(type)) {
            k.fail("tensor " + name + " has type " + ggml_type_name(type) + ", expected " + (vector ? "f32" : "a float or quantized type"));
        }
    }
    for (const auto & [name, x] : table) {
        if (!x.required || gguf_find_tensor(k.g, name.c_str()) >= 0) continue;
        k.fail("missing tensor " + name + (block_of(name) >= 0 ? " (" + layers + ")" : ""));
    }
}

}  // namespace

ModelSettings check_model_settings(const CheckedGguf & file, bool vocab_only) {
    const GgufKeys k{file.path, file.gguf.get()};
    const std::string & arch = file.header.architecture;
    ModelSettings s;
    s.path = file.path;
    s.architecture = arch;
    s.n_vocab = check_vocabulary(k, arch.c_str());
    if (vocab_only) return s;

    const Hparams h = check_generic_hparams(k, arch);
    s.n_embd = h.n_embd;
    s.n_layer = h.n_layer;
    if ((arch == "llama" && h.n_expert == 0) || arch == "qwen2") {
        check_llama_family_hparams(k, arch, h);
        check_tensor_table(k, arch, h, llama_family_tensors(arch, h, s.n_vocab, k.g));
    }
    const int64_t n = gguf_get_n_tensors(k.g);
    for (int64_t id = 0; id < n; id++) {
        TensorShape t;
        std::copy(gguf_get_tensor_ne(k.g, id), gguf_get_tensor_ne(k.g, id) + 4, t.ne.begin());
        t.type = gguf_get_tensor_type(k.g, id);
        s.tensors.emplace(gguf_get_tensor_name(k.g, id), t);
    }
    return s;
}

ModelSettings validate_model_file(const std::string & path, bool vocab_only) {
    const CheckedGguf file = read_checked_gguf(path);
    if (file.header.general_type == "adapter") {
        throw std::runtime_error(path + ": is a LoRA adapter, not a model (load it with loadAdapter)");
    }
    if (!vocab_only && file.header.n_tensors == 0) {
        throw std::runtime_error(path + ": has no tensors: a vocabulary-only file (load it with vocabOnly)");
    }
    return check_model_settings(file, vocab_only);
}

}  // namespace selftune
