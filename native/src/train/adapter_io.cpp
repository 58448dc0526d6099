#include "train/adapter_io.h"

#include "adapter_check.h"

#include "ggml.h"
#include "gguf.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace selftune::train {

namespace {

struct GgmlFree {
    void operator()(ggml_context * c) const { ggml_free(c); }
};
struct GgufFree {
    void operator()(gguf_context * c) const { gguf_free(c); }
};

}  // namespace

void write_lora_adapter(const std::string & path, const ModelConfig & model, const LoraLayout & layout,
                        const float * params, const MetaStrings & meta) {
    const int64_t r = layout.config.rank;
    // Tensor descriptors only: gguf copies each tensor's data pointer at add time and
    // reads it while writing, so they can point straight into `params`.
    ggml_init_params ip = {ggml_tensor_overhead() * (layout.slots.size() * 2 + 8), nullptr, /*no_alloc*/ true};
    std::unique_ptr<ggml_context, GgmlFree> ctx(ggml_init(ip));
    std::unique_ptr<gguf_context, GgufFree> g(gguf_init_empty());
    if (!ctx || !g) throw std::runtime_error("out of memory writing adapter");
    gguf_set_val_str(g.get(), "general.type", "adapter");
    gguf_set_val_str(g.get(), "general.architecture", model.arch.c_str());
    gguf_set_val_str(g.get(), "adapter.type", "lora");
    gguf_set_val_f32(g.get(), "adapter.lora.alpha", layout.config.alpha);
    for (const auto & kv : meta) gguf_set_val_str(g.get(), kv.first.c_str(), kv.second.c_str());
    for (const LoraSlot & s : layout.slots) {
        const std::string base = lora_base_tensor_name(s.layer, s.target);
        ggml_tensor * a = ggml_new_tensor_2d(ctx.get(), GGML_TYPE_F32, s.n_in, r);
        ggml_tensor * b = ggml_new_tensor_2d(ctx.get(), GGML_TYPE_F32, r, s.n_out);
        ggml_set_name(a, (base + ".lora_a").c_str());
        ggml_set_name(b, (base + ".lora_b").c_str());
        a->data = const_cast<float *>(params + s.a_offset);
        b->data = const_cast<float *>(params + s.b_offset);
        gguf_add_tensor(g.get(), a);
        gguf_add_tensor(g.get(), b);
    }
    const std::string tmp = path + ".tmp";
    if (!gguf_write_to_file(g.get(), tmp.c_str(), false) || std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw std::runtime_error("failed to write adapter " + path);
    }
}

LoadedAdapter read_lora_adapter(const std::string & path, const ModelConfig & model) {
    validate_adapter_file(path, model.arch, nullptr);   // the shapes are checked against the layout below
    ggml_context * raw_ctx = nullptr;
    gguf_init_params p = {/*no_alloc*/ false, &raw_ctx};
    std::unique_ptr<gguf_context, GgufFree> g(gguf_init_from_file(path.c_str(), p));
    std::unique_ptr<ggml_context, GgmlFree> ctx(raw_ctx);
    if (!g) throw std::runtime_error(path + ": not a readable GGUF adapter");

    LoadedAdapter out;
    const int64_t alpha_id = gguf_find_key(g.get(), "adapter.lora.alpha");
    out.config.alpha = alpha_id >= 0 ? gguf_get_val_f32(g.get(), alpha_id) : 0.0f;
    out.config.dropout = 0.0f;
    out.config.rank = 0;
    out.config.targets = 0;

    // Which projections have adapters, and the rank (from any A).
    std::vector<std::vector<ggml_tensor *>> a_of((size_t) model.n_layer, std::vector<ggml_tensor *>(kNumTargets)),
        b_of = a_of;
    int64_t n_pairs = 0;
    for (int32_t l = 0; l < model.n_layer; l++) {
        for (int t = 0; t < kNumTargets; t++) {
            const std::string base = lora_base_tensor_name(l, t);
            ggml_tensor * a = ggml_get_tensor(ctx.get(), (base + ".lora_a").c_str());
            ggml_tensor * b = ggml_get_tensor(ctx.get(), (base + ".lora_b").c_str());
            if (!a && !b) continue;
            if (!a || !b) throw std::runtime_error(path + ": " + base + " has only one of lora_a / lora_b");
            if (a->type != GGML_TYPE_F32 || b->type != GGML_TYPE_F32) {
                throw std::runtime_error(path + ": " + base + ": only F32 adapter tensors are supported");
            }
            a_of[(size_t) l][(size_t) t] = a;
            b_of[(size_t) l][(size_t) t] = b;
            out.config.targets |= 1u << t;
            if (out.config.rank == 0) out.config.rank = (int32_t) a->ne[1];
            n_pairs++;
        }
    }
    if (n_pairs == 0) throw std::runtime_error(path + ": no LoRA tensors for this model's layers");
    if (n_pairs != (int64_t) model.n_layer * __builtin_popcount(out.config.targets)) {
        throw std::runtime_error(path + ": its LoRA tensors adapt different projections in different layers, which "
                                        "the engine does not support");
    }
    if (!(out.config.alpha > 0.0f)) out.config.alpha = (float) out.config.rank;   // llama.cpp: alpha 0 means scale 1
    const LoraLayout layout = make_lora_layout(model, out.config);
    out.params.assign((size_t) layout.n_params, 0.0f);
    for (const LoraSlot & s : layout.slots) {
        const ggml_tensor * a = a_of[(size_t) s.layer][(size_t) s.target];
        const ggml_tensor * b = b_of[(size_t) s.layer][(size_t) s.target];
        if (a->ne[0] != s.n_in || a->ne[1] != out.config.rank || b->ne[0] != out.config.rank || b->ne[1] != s.n_out) {
            throw std::runtime_error(path + ": " + lora_base_tensor_name(s.layer, s.target) + ": wrong adapter shapes");
        }
        std::memcpy(out.params.data() + s.a_offset, a->data, sizeof(float) * (size_t) (s.n_in * out.config.rank));
        std::memcpy(out.params.data() + s.b_offset, b->data, sizeof(float) * (size_t) (s.n_out * out.config.rank));
    }
    return out;
}

}  // namespace selftune::train
