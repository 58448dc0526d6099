#include "train/weights.h"

#include "model_check.h"

#include "ggml.h"
#include "gguf.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace selftune::train {

namespace {

struct GgufFree {
    void operator()(gguf_context * c) const { gguf_free(c); }
};
struct FileClose {
    void operator()(FILE * f) const { fclose(f); }
};
using GgufPtr = std::unique_ptr<gguf_context, GgufFree>;
using FilePtr = std::unique_ptr<FILE, FileClose>;

[[noreturn]] void fail(const std::string & path, const std::string & why) {
    throw std::runtime_error(path + ": " + why);
}

GgufPtr open_gguf(const std::string & path) {
    // The checks every model load runs (model_check.h): the engine divides and indexes by
    // these settings as llama.cpp does.
    validate_model_file(path, false);
    gguf_init_params p = {/*no_alloc*/ true, /*ctx*/ nullptr};
    GgufPtr g(gguf_init_from_file(path.c_str(), p));
    if (!g) fail(path, "not a readable GGUF file");
    return g;
}

// An integer key of any integer type (converters write u32, some write i32 or u64).
bool get_int(const gguf_context * g, const std::string & key, int64_t & out) {
    const int64_t id = gguf_find_key(g, key.c_str());
    if (id < 0) return false;
    switch (gguf_get_kv_type(g, id)) {
        case GGUF_TYPE_UINT8:  out = gguf_get_val_u8(g, id); return true;
        case GGUF_TYPE_INT8:   out = gguf_get_val_i8(g, id); return true;
        case GGUF_TYPE_UINT16: out = gguf_get_val_u16(g, id); return true;
        case GGUF_TYPE_INT16:  out = gguf_get_val_i16(g, id); return true;
        case GGUF_TYPE_UINT32: out = gguf_get_val_u32(g, id); return true;
        case GGUF_TYPE_INT32:  out = gguf_get_val_i32(g, id); return true;
        case GGUF_TYPE_UINT64: out = (int64_t) gguf_get_val_u64(g, id); return true;
        case GGUF_TYPE_INT64:  out = gguf_get_val_i64(g, id); return true;
        default: return false;
    }
}

bool get_float(const gguf_context * g, const std::string & key, double & out) {
    const int64_t id = gguf_find_key(g, key.c_str());
    if (id < 0) return false;
    switch (gguf_get_kv_type(g, id)) {
        case GGUF_TYPE_FLOAT32: out = gguf_get_val_f32(g, id); return true;
        case GGUF_TYPE_FLOAT64: out = gguf_get_val_f64(g, id); return true;
        default: {
            int64_t i;
            if (!get_int(g, key, i)) return false;
            out = (double) i;
            return true;
        }
    }
}

int32_t require_int(const std::string & path, const gguf_context * g, const std::string & key) {
    int64_t v;
    if (!get_int(g, key, v)) fail(path, "missing or non-integer metadata " + key);
    if (v <= 0 || v > INT32_MAX) fail(path, key + " = " + std::to_string(v) + " is out of range");
    return (int32_t) v;
}

ModelConfig config_from(const std::string & path, const gguf_context * g) {
    ModelConfig c;
    const int64_t arch_id = gguf_find_key(g, "general.architecture");
    if (arch_id < 0 || gguf_get_kv_type(g, arch_id) != GGUF_TYPE_STRING) fail(path, "no general.architecture");
    c.arch = gguf_get_val_str(g, arch_id);
    if (c.arch == "llama") {
        c.rope = RopeMode::norm;
        c.qkv_bias = false;
    } else if (c.arch == "qwen2") {
        c.rope = RopeMode::neox;
        c.qkv_bias = true;
    } else {
        fail(path, "general.architecture is '" + c.arch + "', which the training engine does not support (llama, qwen2)");
    }
    const std::string a = c.arch + ".";
    c.n_embd = require_int(path, g, a + "embedding_length");
    c.n_layer = require_int(path, g, a + "block_count");
    c.n_ff = require_int(path, g, a + "feed_forward_length");
    c.n_head = require_int(path, g, a + "attention.head_count");
    int64_t hkv;
    c.n_head_kv = get_int(g, a + "attention.head_count_kv", hkv) ? (int32_t) hkv : c.n_head;
    if (c.n_head_kv <= 0 || c.n_head % c.n_head_kv != 0) fail(path, "head_count is not a multiple of head_count_kv");
    if (c.n_embd % c.n_head != 0) fail(path, "embedding_length is not a multiple of head_count");
    c.head_dim = c.n_embd / c.n_head;
    int64_t key_len;
    if (get_int(g, a + "attention.key_length", key_len) && key_len != c.head_dim) {
        fail(path, "attention.key_length != embedding_length / head_count is not supported");
    }
    int64_t rot;
    if (get_int(g, a + "rope.dimension_count", rot) && rot != c.head_dim) {
        fail(path, "partial RoPE (rope.dimension_count != head dim) is not supported");
    }
    double d;
    c.rope_base = get_float(g, a + "rope.freq_base", d) ? (float) d : 10000.0f;
    if (!get_float(g, a + "attention.layer_norm_rms_epsilon", d)) fail(path, "missing attention.layer_norm_rms_epsilon");
    c.rms_eps = (float) d;
    // Features that change the function and that we do not implement: refuse rather than
    // train a model that differs from what llama.cpp serves.
    if (get_float(g, a + "rope.scaling.factor", d) && d != 0.0 && d != 1.0) fail(path, a + "rope.scaling.factor: RoPE scaling is not supported");
    if (get_float(g, a + "rope.freq_scale", d) && d != 1.0) fail(path, a + "rope.freq_scale: RoPE frequency scaling is not supported");
    if (get_float(g, a + "attention.scale", d) && d != 0.0) fail(path, a + "attention.scale: a custom attention scale is not supported");
    if (gguf_find_tensor(g, "rope_freqs.weight") >= 0) fail(path, "tensor rope_freqs.weight: RoPE frequency factors are not supported");

    const int64_t te = gguf_find_tensor(g, "token_embd.weight");
    if (te < 0) fail(path, "no token_embd.weight");
    const int64_t * ne = gguf_get_tensor_ne(g, te);
    if (ne[0] != c.n_embd) fail(path, "token_embd.weight has the wrong width");
    c.n_vocab = (int32_t) ne[1];
    c.tied_output = gguf_find_tensor(g, "output.weight") < 0;
    return c;
}

// Reads one tensor of the expected ggml shape and dequantizes it to f32.
struct TensorReader {
    const std::string & path;
    const gguf_context * g;
    FILE * f;
    size_t data_offset;
    uint64_t n_read = 0;
    std::vector<uint8_t> raw;

    int32_t type_of(const std::string & name) const {
        const int64_t id = gguf_find_tensor(g, name.c_str());
        return id < 0 ? 0 : (int32_t) gguf_get_tensor_type(g, id);
    }

    std::vector<float> read(const std::string & name, int64_t ne0, int64_t ne1 = 1, bool optional = false) {
        const int64_t id = gguf_find_tensor(g, name.c_str());
        if (id < 0) {
            if (optional) return {};
            fail(path, "missing tensor " + name);
        }
        const int64_t * ne = gguf_get_tensor_ne(g, id);
        if (ne[0] != ne0 || ne[1] != ne1 || ne[2] != 1 || ne[3] != 1) {
            fail(path, "tensor " + name + " has shape [" + std::to_string(ne[0]) + ", " + std::to_string(ne[1]) +
                           "], expected [" + std::to_string(ne0) + ", " + std::to_string(ne1) + "]");
        }
        const ggml_type type = gguf_get_tensor_type(g, id);
        const ggml_type_traits * tr = ggml_get_type_traits(type);
        // F32 has no to_float (nothing to convert); every other type goes through ggml's.
        if (type != GGML_TYPE_F32 && (!tr || !tr->to_float || ne0 % tr->blck_size != 0)) {
            fail(path, "tensor " + name + " has type " + ggml_type_name(type) + ", which cannot be dequantized");
        }
        const size_t bytes = gguf_get_tensor_size(g, id);
        raw.resize(bytes);
        if (fseeko(f, (off_t) (data_offset + gguf_get_tensor_offset(g, id)), SEEK_SET) != 0 ||
            fread(raw.data(), 1, bytes, f) != bytes) {
            fail(path, "cannot read tensor " + name);
        }
        std::vector<float> out((size_t) (ne0 * ne1));
        const size_t row_bytes = ggml_row_size(type, ne0);
        for (int64_t r = 0; r < ne1; r++) {
            if (type == GGML_TYPE_F32) std::memcpy(out.data() + r * ne0, raw.data() + r * row_bytes, row_bytes);
            else tr->to_float(raw.data() + r * row_bytes, out.data() + r * ne0, ne0);
        }
        n_read += (uint64_t) out.size();
        return out;
    }
};

}  // namespace

ModelConfig read_model_config(const std::string & path) {
    GgufPtr g = open_gguf(path);
    return config_from(path, g.get());
}

std::shared_ptr<const BaseWeights<float>> load_base_weights(const std::string & path, WeightsSource * source) {
    GgufPtr g = open_gguf(path);
    const ModelConfig c = config_from(path, g.get());
    FilePtr f(fopen(path.c_str(), "rb"));
    if (!f) fail(path, "cannot open");
    TensorReader rd{path, g.get(), f.get(), gguf_get_data_offset(g.get())};

    auto w = std::make_shared<BaseWeights<float>>();
    w->config = c;
    const int64_t D = c.n_embd, Q = c.q_dim(), KV = c.kv_dim(), F = c.n_ff;
    w->tok_embd = rd.read("token_embd.weight", D, c.n_vocab);
    w->layers.resize((size_t) c.n_layer);
    for (int32_t il = 0; il < c.n_layer; il++) {
        const std::string b = "blk." + std::to_string(il) + ".";
        LayerWeights<float> & L = w->layers[(size_t) il];
        L.attn_norm = rd.read(b + "attn_norm.weight", D);
        L.wq = rd.read(b + "attn_q.weight", D, Q);
        L.wk = rd.read(b + "attn_k.weight", D, KV);
        L.wv = rd.read(b + "attn_v.weight", D, KV);
        if (c.qkv_bias) {
            L.bq = rd.read(b + "attn_q.bias", Q);
            L.bk = rd.read(b + "attn_k.bias", KV);
            L.bv = rd.read(b + "attn_v.bias", KV);
        } else if (gguf_find_tensor(g.get(), (b + "attn_q.bias").c_str()) >= 0) {
            fail(path, "attention biases are not supported for " + c.arch);
        }
        L.wo = rd.read(b + "attn_output.weight", Q, D);
        L.ffn_norm = rd.read(b + "ffn_norm.weight", D);
        L.w_gate = rd.read(b + "ffn_gate.weight", D, F);
        L.w_up = rd.read(b + "ffn_up.weight", D, F);
        L.w_down = rd.read(b + "ffn_down.weight", F, D);
        w->types.layer.push_back({rd.type_of(b + "attn_q.weight"), rd.type_of(b + "attn_k.weight"),
                                  rd.type_of(b + "attn_v.weight"), rd.type_of(b + "attn_output.weight"),
                                  rd.type_of(b + "ffn_gate.weight"), rd.type_of(b + "ffn_up.weight"),
                                  rd.type_of(b + "ffn_down.weight")});
    }
    w->types.output = rd.type_of(c.tied_output ? "token_embd.weight" : "output.weight");
    w->output_norm = rd.read("output_norm.weight", D);
    if (!c.tied_output) w->output = rd.read("output.weight", D, c.n_vocab);
    if (gguf_find_tensor(g.get(), "output.bias") >= 0) fail(path, "an output bias is not supported");

    if (source) {
        source->path = path;
        source->n_params = rd.n_read;
        const int64_t q = gguf_find_tensor(g.get(), "blk.0.attn_q.weight");
        source->file_type = q >= 0 ? ggml_type_name(gguf_get_tensor_type(g.get(), q)) : "";
    }
    return w;
}

template <typename To, typename From>
static std::vector<To> conv(const std::vector<From> & v) {
    return std::vector<To>(v.begin(), v.end());
}

template <typename To, typename From>
BaseWeights<To> convert_weights(const BaseWeights<From> & w) {
    BaseWeights<To> o;
    o.config = w.config;
    o.types = w.types;
    o.tok_embd = conv<To>(w.tok_embd);
    o.output_norm = conv<To>(w.output_norm);
    o.output = conv<To>(w.output);
    for (const auto & L : w.layers) {
        LayerWeights<To> l;
        l.attn_norm = conv<To>(L.attn_norm);
        l.wq = conv<To>(L.wq);
        l.wk = conv<To>(L.wk);
        l.wv = conv<To>(L.wv);
        l.bq = conv<To>(L.bq);
        l.bk = conv<To>(L.bk);
        l.bv = conv<To>(L.bv);
        l.wo = conv<To>(L.wo);
        l.ffn_norm = conv<To>(L.ffn_norm);
        l.w_gate = conv<To>(L.w_gate);
        l.w_up = conv<To>(L.w_up);
        l.w_down = conv<To>(L.w_down);
        o.layers.push_back(std::move(l));
    }
    return o;
}

template BaseWeights<double> convert_weights<double, float>(const BaseWeights<float> &);
template BaseWeights<float> convert_weights<float, float>(const BaseWeights<float> &);
template BaseWeights<float> convert_weights<float, double>(const BaseWeights<double> &);

}  // namespace selftune::train
