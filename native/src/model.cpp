#include "model.h"

#include "addon.h"
#include "cancel.h"
#include "model_check.h"
#include "js_args.h"
#include "log.h"

#include "ggml-backend.h"
#include "ggml-cpu.h"

#include <climits>
#include <cmath>
#include <stdexcept>

namespace selftune {

// ---- ModelHandle -------------------------------------------------------------------

static std::string meta_string(const llama_model * model, const char * key) {
    char buf[256];
    const int32_t n = llama_model_meta_val_str(model, key, buf, sizeof(buf));
    if (n < 0) return "";
    if ((size_t) n < sizeof(buf)) return std::string(buf, (size_t) n);
    std::string big((size_t) n + 1, '\0');
    llama_model_meta_val_str(model, key, big.data(), big.size());
    big.resize((size_t) n);
    return big;
}

static const char * vocab_type_name(enum llama_vocab_type t) {
    switch (t) {
        case LLAMA_VOCAB_TYPE_NONE:   return "none";
        case LLAMA_VOCAB_TYPE_SPM:    return "spm";
        case LLAMA_VOCAB_TYPE_BPE:    return "bpe";
        case LLAMA_VOCAB_TYPE_WPM:    return "wpm";
        case LLAMA_VOCAB_TYPE_UGM:    return "ugm";
        case LLAMA_VOCAB_TYPE_RWKV:   return "rwkv";
        case LLAMA_VOCAB_TYPE_PLAMO2: return "plamo2";
        default:                      return "other";
    }
}

ModelHandle::ModelHandle(llama_model * model, std::string path, bool vocab_only)
    : model_(model), path_(std::move(path)) {
    ModelInfo & i = info_;
    const llama_vocab * v = vocab();
    i.vocab_only = vocab_only;
    i.architecture = meta_string(model, "general.architecture");
    i.tokenizer_model = meta_string(model, "tokenizer.ggml.model");
    i.tokenizer_pre = meta_string(model, "tokenizer.ggml.pre");
    i.vocab_type = vocab_type_name(llama_vocab_type(v));
    i.n_vocab = llama_vocab_n_tokens(v);
    // A vocabulary-only model has no layers, and some per-layer getters abort on it.
    if (!vocab_only) {
        char desc[256];
        if (llama_model_desc(model, desc, sizeof(desc)) > 0) i.description = desc;
        i.file_type = llama_ftype_name(llama_model_ftype(model));
        i.n_params = llama_model_n_params(model);
        i.size_bytes = llama_model_size(model);
        i.n_ctx_train = llama_model_n_ctx_train(model);
        i.n_embd = llama_model_n_embd(model);
        i.n_layer = llama_model_n_layer(model);
        if (i.n_layer > 0) {
            i.n_head = llama_model_n_head(model);
            i.n_head_kv = llama_model_n_head_kv(model);
        }
    }
    i.bos = llama_vocab_bos(v);
    i.eos = llama_vocab_eos(v);
    i.eot = llama_vocab_eot(v);
    i.sep = llama_vocab_sep(v);
    i.pad = llama_vocab_pad(v);
    i.nl = llama_vocab_nl(v);
    i.add_bos = llama_vocab_get_add_bos(v);
    i.add_eos = llama_vocab_get_add_eos(v);
    // Recorded, never applied (SPEC §2): we only ask whether one exists.
    i.chat_template_present = llama_model_chat_template(model, nullptr) != nullptr;

    const uint32_t special_attrs = LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_USER_DEFINED | LLAMA_TOKEN_ATTR_UNKNOWN;
    for (int32_t id = 0; id < i.n_vocab; id++) {
        const uint32_t attr = (uint32_t) llama_vocab_get_attr(v, id);
        const bool eog = llama_vocab_is_eog(v, id);
        const bool named = id == i.bos || id == i.eos || id == i.eot || id == i.sep || id == i.pad;
        if ((attr & special_attrs) || eog || named) {
            const char * text = llama_vocab_get_text(v, id);
            i.special.push_back({id, text ? text : "", attr, eog});
        }
    }
}

ModelHandle::~ModelHandle() {
    llama_model_free(model_);
}

static std::string load_failure(const std::string & path, const std::string & why) {
    // The validators' form (path first), so every load error reads alike.
    return path + ": llama.cpp could not load the model" + (why.empty() ? "" : ": " + why);
}

void ModelHandle::check_loads(const std::string & path) {
    validate_model_file(path, false);
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.no_alloc = true;
    mp.load_mode = LLAMA_LOAD_MODE_NONE;   // llama.cpp's no_alloc pass maps nothing
    LogCapture capture;
    llama_model * model = llama_model_load_from_file(path.c_str(), mp);
    if (!model) throw std::runtime_error(load_failure(path, capture.errors()));
    llama_model_free(model);
}

std::shared_ptr<ModelHandle> ModelHandle::load(const std::string & path, const ModelLoadParams & params,
                                               JobContext & job) {
    // llama.cpp asserts on settings it cannot use; checked here so they are errors.
    ModelSettings settings = validate_model_file(path, params.vocab_only);

    struct ProgressState {
        JobContext * job;
        int last_percent = -1;
    } state{&job};

    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = params.n_gpu_layers;
    mp.vocab_only = params.vocab_only;
    mp.load_mode = params.use_mmap ? LLAMA_LOAD_MODE_MMAP : LLAMA_LOAD_MODE_NONE;
    mp.progress_callback = [](float p, void * ud) -> bool {
        auto * s = static_cast<ProgressState *>(ud);
        const int percent = (int) std::floor(p * 100.0f);
        if (percent != s->last_percent) {
            s->last_percent = percent;
            s->job->progress([p](Napi::Env env) {
                Napi::Object o = Napi::Object::New(env);
                o.Set("stage", "load");
                o.Set("fraction", (double) p);
                return o;
            });
        }
        return !s->job->cancelled();  // false aborts the load
    };
    mp.progress_callback_user_data = &state;

    LogCapture capture;
    llama_model * model = llama_model_load_from_file(path.c_str(), mp);
    if (!model) {
        if (job.cancelled()) throw Cancelled();
        throw std::runtime_error(load_failure(path, capture.errors()));
    }
    auto handle = std::shared_ptr<ModelHandle>(new ModelHandle(model, path, params.vocab_only));
    handle->settings_ = std::move(settings);
    bool gpu = false;
    for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
        gpu = gpu || ggml_backend_dev_type(ggml_backend_dev_get(i)) == GGML_BACKEND_DEVICE_TYPE_GPU;
    }
    // llama.cpp offloads the output layer last: it is on the GPU once every block is.
    handle->output_on_gpu_ = gpu && !params.vocab_only &&
                             (params.n_gpu_layers < 0 || params.n_gpu_layers > llama_model_n_layer(model));
    return handle;
}

std::vector<llama_token> tokenize_text(const llama_vocab * vocab, const std::string & text, bool add_special,
                                       bool parse_special) {
    if (text.size() > (size_t) INT32_MAX / 2) throw std::runtime_error("text too long to tokenize");
    std::vector<llama_token> out(text.size() + 8);
    int32_t n = llama_tokenize(vocab, text.data(), (int32_t) text.size(), out.data(), (int32_t) out.size(),
                               add_special, parse_special);
    if (n < 0) {
        if (n == INT32_MIN) throw std::runtime_error("tokenization overflow");
        out.resize((size_t) -n);
        n = llama_tokenize(vocab, text.data(), (int32_t) text.size(), out.data(), (int32_t) out.size(), add_special,
                           parse_special);
        if (n < 0) throw std::runtime_error("tokenization failed");
    }
    out.resize((size_t) n);
    return out;
}

static std::string piece_of(const llama_vocab * vocab, llama_token id, bool special) {
    char buf[128];
    int32_t n = llama_token_to_piece(vocab, id, buf, sizeof(buf), 0, special);
    if (n >= 0) return std::string(buf, (size_t) n);
    std::string big((size_t) -n, '\0');
    n = llama_token_to_piece(vocab, id, big.data(), (int32_t) big.size(), 0, special);
    if (n < 0) throw std::runtime_error("token_to_piece failed");
    big.resize((size_t) n);
    return big;
}

// ---- Model (JS wrapper) ----------------------------------------------------------------

Napi::Function Model::define(Napi::Env env) {
    return DefineClass(env, "Model", {
        InstanceAccessor<&Model::info>("info"),
        InstanceAccessor<&Model::path>("path"),
        InstanceAccessor<&Model::disposed>("disposed"),
        InstanceMethod<&Model::tokenize>("tokenize"),
        InstanceMethod<&Model::detokenize>("detokenize"),
        InstanceMethod<&Model::token_piece>("tokenPiece"),
        InstanceMethod<&Model::token_bytes>("tokenBytes"),
        InstanceMethod<&Model::dispose>("dispose"),
    });
}

Model::Model(const Napi::CallbackInfo & info) : Napi::ObjectWrap<Model>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
        throw Napi::TypeError::New(info.Env(), "Model cannot be constructed directly: use loadModel()");
    }
    // Take the handle out of the External: it is only a carrier, and whatever it still
    // held would live until the GC got round to it, keeping the model alive after dispose().
    handle_ = std::move(*info[0].As<Napi::External<std::shared_ptr<ModelHandle>>>().Data());
}

const std::shared_ptr<ModelHandle> & Model::handle(Napi::Env env) const {
    if (!handle_) throw Napi::Error::New(env, "model is disposed");
    return handle_;
}

std::shared_ptr<ModelHandle> Model::handle_of(const Napi::Value & v) {
    Napi::Env env = v.Env();
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addon_data(env).model_ctor.Value())) {
        throw Napi::TypeError::New(env, "expected a Model");
    }
    return Model::Unwrap(v.As<Napi::Object>())->handle(env);
}

Napi::Value Model::load(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "loadModel: path must be a string");
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    Napi::Object opts = opt_object(info[1], "loadModel options");
    ModelLoadParams params;
    params.n_gpu_layers = (int32_t) opt_int(opts, "gpuLayers", -1, -1, INT32_MAX);
    params.vocab_only = opt_bool(opts, "vocabOnly", false);
    params.use_mmap = opt_bool(opts, "mmap", true);
    CancelFlag cancel = CancelSource::from_value(info[3]);

    return run_job(env, "selftune.loadModel", info[2], cancel, [path, params](JobContext & job) -> Finish {
        auto handle = ModelHandle::load(path, params, job);
        return [handle](Napi::Env env) -> Napi::Value {
            auto * box = new std::shared_ptr<ModelHandle>(handle);
            auto ext = Napi::External<std::shared_ptr<ModelHandle>>::New(
                env, box, [](Napi::Env, std::shared_ptr<ModelHandle> * p) { delete p; });
            return addon_data(env).model_ctor.New({ext});
        };
    });
}

static Napi::Array int_array(Napi::Env env, const std::vector<int32_t> & v) {
    Napi::Array a = Napi::Array::New(env, v.size());
    for (size_t i = 0; i < v.size(); i++) a.Set((uint32_t) i, Napi::Number::New(env, v[i]));
    return a;
}

static Napi::Value token_or_null(Napi::Env env, int32_t id) {
    return id < 0 ? env.Null() : Napi::Number::New(env, id);
}

static Napi::Array attr_names(Napi::Env env, uint32_t attr, bool eog) {
    Napi::Array a = Napi::Array::New(env);
    uint32_t n = 0;
    if (attr & LLAMA_TOKEN_ATTR_CONTROL) a.Set(n++, "control");
    if (attr & LLAMA_TOKEN_ATTR_USER_DEFINED) a.Set(n++, "user_defined");
    if (attr & LLAMA_TOKEN_ATTR_UNKNOWN) a.Set(n++, "unknown");
    if (attr & LLAMA_TOKEN_ATTR_UNUSED) a.Set(n++, "unused");
    if (attr & LLAMA_TOKEN_ATTR_BYTE) a.Set(n++, "byte");
    if (attr & LLAMA_TOKEN_ATTR_NORMAL) a.Set(n++, "normal");
    if (eog) a.Set(n++, "eog");
    return a;
}

Napi::Value Model::info(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const auto & h = handle(env);
    if (!info_cache_.IsEmpty()) return info_cache_.Value();
    const ModelInfo & m = h->info();
    Napi::Object o = Napi::Object::New(env);
    o.Set("architecture", m.architecture);
    o.Set("description", m.description);
    o.Set("fileType", m.file_type);
    o.Set("vocabType", m.vocab_type);
    o.Set("tokenizerModel", m.tokenizer_model);
    o.Set("tokenizerPre", m.tokenizer_pre);
    o.Set("parameterCount", (double) m.n_params);
    o.Set("sizeBytes", (double) m.size_bytes);
    o.Set("vocabSize", m.n_vocab);
    o.Set("contextTrain", m.n_ctx_train);
    o.Set("embeddingSize", m.n_embd);
    o.Set("layerCount", m.n_layer);
    o.Set("headCount", m.n_head);
    o.Set("headCountKv", m.n_head_kv);
    o.Set("bos", token_or_null(env, m.bos));
    o.Set("eos", token_or_null(env, m.eos));
    o.Set("eot", token_or_null(env, m.eot));
    o.Set("sep", token_or_null(env, m.sep));
    o.Set("pad", token_or_null(env, m.pad));
    o.Set("newline", token_or_null(env, m.nl));
    o.Set("addBos", m.add_bos);
    o.Set("addEos", m.add_eos);
    o.Set("chatTemplatePresent", m.chat_template_present);
    o.Set("vocabOnly", m.vocab_only);

    std::vector<int32_t> control, special, eog;
    Napi::Array tokens = Napi::Array::New(env, m.special.size());
    for (size_t k = 0; k < m.special.size(); k++) {
        const SpecialToken & t = m.special[k];
        Napi::Object e = Napi::Object::New(env);
        e.Set("id", t.id);
        e.Set("text", t.text);
        e.Set("attributes", attr_names(env, t.attr, t.eog));
        tokens.Set((uint32_t) k, e);
        special.push_back(t.id);
        if (t.attr & LLAMA_TOKEN_ATTR_CONTROL) control.push_back(t.id);
        if (t.eog) eog.push_back(t.id);
    }
    o.Set("specialTokens", tokens);
    o.Set("specialTokenIds", int_array(env, special));
    o.Set("controlTokenIds", int_array(env, control));
    o.Set("eogTokenIds", int_array(env, eog));
    info_cache_ = Napi::Persistent(o);
    return o;
}

Napi::Value Model::path(const Napi::CallbackInfo & info) {
    return Napi::String::New(info.Env(), handle(info.Env())->path());
}

Napi::Value Model::disposed(const Napi::CallbackInfo & info) {
    return Napi::Boolean::New(info.Env(), !handle_);
}

Napi::Value Model::tokenize(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const auto & h = handle(env);
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "tokenize: text must be a string");
    const std::string text = info[0].As<Napi::String>().Utf8Value();
    Napi::Object opts = opt_object(info[1], "tokenize options");
    // Defaults are the contamination guard (SPEC §2): no BOS/EOS, special-token text
    // stays text.
    const bool add_special = opt_bool(opts, "addSpecial", false);
    const bool parse_special = opt_bool(opts, "parseSpecial", false);
    std::vector<llama_token> ids;
    try {
        ids = tokenize_text(h->vocab(), text, add_special, parse_special);
    } catch (const std::exception & e) {
        throw Napi::Error::New(env, std::string("tokenize: ") + e.what());
    }
    Napi::Int32Array out = Napi::Int32Array::New(env, ids.size());
    std::copy(ids.begin(), ids.end(), out.Data());
    return out;
}

Napi::Value Model::detokenize(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const auto & h = handle(env);
    std::vector<int32_t> ids = token_ids(info[0], h->info().n_vocab, "detokenize: ids");
    Napi::Object opts = opt_object(info[1], "detokenize options");
    const bool remove_special = opt_bool(opts, "removeSpecial", false);
    const bool unparse_special = opt_bool(opts, "unparseSpecial", false);
    if (ids.empty()) return Napi::String::New(env, "");
    std::string text(ids.size() * 8 + 16, '\0');
    int32_t n = llama_detokenize(h->vocab(), ids.data(), (int32_t) ids.size(), text.data(), (int32_t) text.size(),
                                 remove_special, unparse_special);
    if (n < 0) {
        text.resize((size_t) -n);
        n = llama_detokenize(h->vocab(), ids.data(), (int32_t) ids.size(), text.data(), (int32_t) text.size(),
                             remove_special, unparse_special);
        if (n < 0) throw Napi::Error::New(env, "detokenize failed");
    }
    text.resize((size_t) n);
    return Napi::String::New(env, text);
}

static llama_token one_token(const Napi::CallbackInfo & info, const ModelHandle & h, const char * fn) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, std::string(fn) + ": id must be a number");
    const double d = info[0].As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || std::floor(d) != d || d < 0 || d >= h.info().n_vocab) {
        const std::string shown = std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 1e15
                                      ? std::to_string((int64_t) d)
                                      : Napi::Number::New(env, d).ToString().Utf8Value();
        throw Napi::RangeError::New(env, std::string(fn) + ": " + shown + " is not a token id (vocabulary has " +
                                             std::to_string(h.info().n_vocab) + " tokens)");
    }
    return (llama_token) d;
}

Napi::Value Model::token_piece(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const auto & h = handle(env);
    const llama_token id = one_token(info, *h, "tokenPiece");
    const bool special = opt_bool(opt_object(info[1], "tokenPiece options"), "special", true);
    return Napi::String::New(env, piece_of(h->vocab(), id, special));
}

Napi::Value Model::token_bytes(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const auto & h = handle(env);
    const llama_token id = one_token(info, *h, "tokenBytes");
    const bool special = opt_bool(opt_object(info[1], "tokenBytes options"), "special", true);
    const std::string piece = piece_of(h->vocab(), id, special);
    Napi::Uint8Array out = Napi::Uint8Array::New(env, piece.size());
    std::copy(piece.begin(), piece.end(), out.Data());
    return out;
}

Napi::Value Model::dispose(const Napi::CallbackInfo & info) {
    // Drops this wrapper's reference only: contexts, adapters and running jobs keep
    // the model alive until they are done with it.
    handle_.reset();
    info_cache_.Reset();
    return info.Env().Undefined();
}

}  // namespace selftune
