#include "train/napi_train.h"

#include "cancel.h"
#include "cpu_info.h"
#include "job.h"
#include "js_args.h"

#include "train/adapter_io.h"
#include "train/backend.h"
#include "train/gradcheck.h"
#include "train/reference.h"
#include "train/trainer.h"
#include "train/weights.h"

#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace selftune {

using namespace selftune::train;

namespace {

// ---- handles ------------------------------------------------------------------------------

struct TrainModelHandle {
    std::shared_ptr<BaseModel> base;   // the frozen base, held by the backend that loaded it
};

struct TrainSessionHandle {
    std::shared_ptr<TrainModelHandle> model;
    std::unique_ptr<Backend> backend;
    uint64_t seed = 0;
    int threads = 0;    // the CPU backend's worker threads (what the session was created with)
    std::mutex mutex;   // one job at a time
};

const napi_type_tag kModelTag = {0x73656c6674756e65ull, 0x747261696e6d6f64ull};     // "selftune" "trainmod"
const napi_type_tag kSessionTag = {0x73656c6674756e65ull, 0x747261696e736573ull};   // "selftune" "trainses"

template <typename H>
Napi::Value wrap(Napi::Env env, std::shared_ptr<H> h, const napi_type_tag & tag) {
    auto * box = new std::shared_ptr<H>(std::move(h));
    auto ext = Napi::External<std::shared_ptr<H>>::New(env, box, [](Napi::Env, std::shared_ptr<H> * p) { delete p; });
    ext.TypeTag(&tag);
    return ext;
}

template <typename H>
std::shared_ptr<H> unwrap(const Napi::Value & v, const napi_type_tag & tag, const char * what) {
    if (!v.IsExternal() || !v.As<Napi::External<std::shared_ptr<H>>>().CheckTypeTag(&tag)) {
        throw Napi::TypeError::New(v.Env(), std::string("expected a ") + what + " handle");
    }
    std::shared_ptr<H> h = *v.As<Napi::External<std::shared_ptr<H>>>().Data();
    if (!h) throw Napi::Error::New(v.Env(), std::string(what) + " is disposed");
    return h;
}

std::shared_ptr<TrainModelHandle> model_of(const Napi::Value & v) {
    return unwrap<TrainModelHandle>(v, kModelTag, "training model");
}
std::shared_ptr<TrainSessionHandle> session_of(const Napi::Value & v) {
    return unwrap<TrainSessionHandle>(v, kSessionTag, "training session");
}

// Drops the handle's reference now (JS dispose()); jobs holding it finish first.
template <typename H>
void release(const Napi::Value & v, const napi_type_tag & tag, const char * what) {
    if (!v.IsExternal() || !v.As<Napi::External<std::shared_ptr<H>>>().CheckTypeTag(&tag)) {
        throw Napi::TypeError::New(v.Env(), std::string("expected a ") + what + " handle");
    }
    v.As<Napi::External<std::shared_ptr<H>>>().Data()->reset();
}

// ---- argument helpers ----------------------------------------------------------------------

int threads_or_default(int64_t t) {
    return t > 0 ? (int) t : physical_cores();
}

uint32_t targets_from_js(const Napi::Object & o) {
    Napi::Value v = o.Get("targets");
    if (v.IsUndefined() || v.IsNull()) return kAllTargets;
    if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), "option targets must be an array of q,k,v,o,gate,up,down");
    Napi::Array a = v.As<Napi::Array>();
    uint32_t bits = 0;
    for (uint32_t i = 0; i < a.Length(); i++) {
        Napi::Value e = a.Get(i);
        const int t = e.IsString() ? lora_target_from_name(e.As<Napi::String>().Utf8Value()) : -1;
        if (t < 0) throw Napi::TypeError::New(o.Env(), "option targets: unknown target (use q,k,v,o,gate,up,down)");
        bits |= 1u << t;
    }
    if (!bits) throw Napi::RangeError::New(o.Env(), "option targets must not be empty");
    return bits;
}

Napi::Array target_names(Napi::Env env, uint32_t bits) {
    Napi::Array a = Napi::Array::New(env);
    uint32_t n = 0;
    for (int t = 0; t < kNumTargets; t++) {
        if (bits & (1u << t)) a.Set(n++, lora_target_name(t));
    }
    return a;
}

// {tokens: Int32Array, loss: Uint8Array, offsets: Int32Array | Float64Array | number[]}
Dataset dataset_from_js(const Napi::Value & v, int32_t n_vocab) {
    Napi::Env env = v.Env();
    if (!v.IsObject()) throw Napi::TypeError::New(env, "data must be {tokens, loss, offsets}");
    Napi::Object o = v.As<Napi::Object>();
    Napi::Value tv = o.Get("tokens"), lv = o.Get("loss"), ov = o.Get("offsets");
    if (!tv.IsTypedArray() || tv.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
        throw Napi::TypeError::New(env, "data.tokens must be an Int32Array");
    }
    if (!lv.IsTypedArray() || lv.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
        throw Napi::TypeError::New(env, "data.loss must be a Uint8Array");
    }
    Dataset d;
    Napi::Int32Array t = tv.As<Napi::Int32Array>();
    Napi::Uint8Array l = lv.As<Napi::Uint8Array>();
    d.tokens.assign(t.Data(), t.Data() + t.ElementLength());
    d.loss.assign(l.Data(), l.Data() + l.ElementLength());
    for (size_t i = 0; i < d.tokens.size(); i++) {
        if (d.tokens[i] < 0 || d.tokens[i] >= n_vocab) {
            throw Napi::RangeError::New(env, "data.tokens[" + std::to_string(i) + "] = " + std::to_string(d.tokens[i]) +
                                                 " is not a token id of this model");
        }
        d.loss[i] = d.loss[i] ? 1 : 0;
    }
    if (ov.IsTypedArray() && ov.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
        Napi::Int32Array a = ov.As<Napi::Int32Array>();
        d.offsets.assign(a.Data(), a.Data() + a.ElementLength());
    } else if (ov.IsTypedArray() && ov.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array) {
        Napi::Float64Array a = ov.As<Napi::Float64Array>();
        for (size_t i = 0; i < a.ElementLength(); i++) d.offsets.push_back((int64_t) a[i]);
    } else if (ov.IsArray()) {
        Napi::Array a = ov.As<Napi::Array>();
        for (uint32_t i = 0; i < a.Length(); i++) d.offsets.push_back((int64_t) a.Get(i).As<Napi::Number>().DoubleValue());
    } else {
        throw Napi::TypeError::New(env, "data.offsets must be an Int32Array, Float64Array or number[]");
    }
    if (d.loss.size() != d.tokens.size()) throw Napi::RangeError::New(env, "data.loss and data.tokens differ in length");
    if (d.offsets.size() < 2 || d.offsets.front() != 0 || d.offsets.back() != (int64_t) d.tokens.size()) {
        throw Napi::RangeError::New(env, "data.offsets must run from 0 to tokens.length, one more than the examples");
    }
    for (size_t i = 1; i < d.offsets.size(); i++) {
        if (d.offsets[i] <= d.offsets[i - 1]) throw Napi::RangeError::New(env, "data.offsets must increase (no empty example)");
    }
    return d;
}

Napi::Object record_to_js(Napi::Env env, const StepRecord & r) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("step", (double) r.step);
    o.Set("epoch", r.epoch);
    o.Set("loss", r.loss);
    o.Set("lossTokens", (double) r.loss_tokens);
    o.Set("tokens", (double) r.tokens);
    o.Set("lr", (double) r.lr);
    o.Set("gradNorm", r.grad_norm);
    o.Set("seconds", r.seconds);
    if (!r.metrics.empty()) {
        Napi::Object m = Napi::Object::New(env);
        for (const auto & [name, value] : r.metrics) m.Set(name, value);
        o.Set("metrics", m);
    }
    return o;
}

// ---- model -------------------------------------------------------------------------------

// trainLoadModel(path, {backend: "auto"|"cpu"|"cuda", storage: "dense"|"stored", device}) -> Promise<handle>
Napi::Value load_model(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "trainLoadModel(path, options?)");
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    Napi::Object o = opt_object(info[1], "training model options");
    BackendOptions bo;
    bo.kind = opt_string(o, "backend", "auto");
    if (bo.kind != "auto" && bo.kind != "cpu" && bo.kind != "cuda") {
        throw Napi::RangeError::New(env, "option backend must be auto, cpu or cuda");
    }
    const std::string storage = opt_string(o, "storage", "dense");
    if (storage != "dense" && storage != "stored") throw Napi::RangeError::New(env, "option storage must be dense or stored");
    bo.storage = storage == "stored" ? BaseStorage::stored : BaseStorage::dense;
    bo.device = (int) opt_int(o, "device", 0, 0, 1024);
    return run_job(env, "selftune.trainLoadModel", env.Undefined(), nullptr, [path, bo](JobContext &) -> Finish {
        auto h = std::make_shared<TrainModelHandle>();
        h->base = load_base_model(path, bo);
        return [h](Napi::Env env) { return wrap(env, h, kModelTag); };
    });
}

Napi::Value model_info(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    auto h = model_of(info[0]);
    const ModelConfig & c = h->base->config();
    const WeightsSource & src = h->base->source();
    Napi::Object o = Napi::Object::New(env);
    o.Set("path", src.path);
    o.Set("backend", h->base->backend());
    o.Set("device", h->base->device());
    o.Set("storage", base_storage_name(h->base->storage()));
    o.Set("baseBytes", (double) h->base->bytes());
    o.Set("architecture", c.arch);
    o.Set("weightType", src.file_type);
    o.Set("parameterCount", (double) src.n_params);
    o.Set("vocabSize", c.n_vocab);
    o.Set("embeddingSize", c.n_embd);
    o.Set("layerCount", c.n_layer);
    o.Set("headCount", c.n_head);
    o.Set("headCountKv", c.n_head_kv);
    o.Set("headDim", c.head_dim);
    o.Set("feedForwardSize", c.n_ff);
    o.Set("rope", c.rope == RopeMode::norm ? "norm" : "neox");
    o.Set("ropeBase", (double) c.rope_base);
    o.Set("rmsEpsilon", (double) c.rms_eps);
    o.Set("qkvBias", c.qkv_bias);
    o.Set("tiedOutput", c.tied_output);
    return o;
}

// trainBackends() -> {cudaBuilt, cudaUsable, cudaReason?}
Napi::Value backends(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    std::string why;
    const bool usable = cuda_backend_usable(&why);
    o.Set("cudaBuilt", cuda_backend_built());
    o.Set("cudaUsable", usable);
    if (!usable) o.Set("cudaReason", why);
    return o;
}

Napi::Value model_dispose(const Napi::CallbackInfo & info) {
    release<TrainModelHandle>(info[0], kModelTag, "training model");
    return info.Env().Undefined();
}

// ---- session -------------------------------------------------------------------------------

// trainCreateSession(model, {rank, alpha, dropout, targets, seed, threads, adapter}) -> handle
Napi::Value create_session(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    auto model = model_of(info[0]);
    Napi::Object o = opt_object(info[1], "session options");
    const ModelConfig & mc = model->base->config();
    LoraConfig lc;
    lc.rank = (int32_t) opt_int(o, "rank", 16, 1, 4096);
    lc.alpha = (float) opt_number(o, "alpha", 32.0);
    lc.dropout = (float) opt_number(o, "dropout", 0.05);
    lc.targets = targets_from_js(o);
    const double seed = opt_number(o, "seed", 0);
    if (seed < 0 || seed != std::floor(seed) || seed > 9007199254740991.0) {
        throw Napi::RangeError::New(env, "option seed must be a non-negative integer");
    }
    const int threads = threads_or_default(opt_int(o, "threads", 0, 0, 1024));
    const std::string adapter = opt_string(o, "adapter", "");
    const bool checkpoint_activations = opt_bool(o, "checkpointActivations", false);

    auto s = std::make_shared<TrainSessionHandle>();
    s->model = model;
    s->seed = (uint64_t) seed;
    s->threads = threads;
    std::vector<float> params;
    try {
        if (!adapter.empty()) {
            // Continue from an adapter: its rank, alpha and targets; dropout from options.
            LoadedAdapter la = read_lora_adapter(adapter, mc);
            la.config.dropout = lc.dropout;
            lc = la.config;
            params = std::move(la.params);
        }
        const LoraLayout layout = make_lora_layout(mc, lc);
        if (params.empty()) {
            params.resize((size_t) layout.n_params);
            lora_init(layout, params.data(), s->seed);
        }
        SessionOptions so;
        so.n_threads = threads;
        so.checkpoint_activations = checkpoint_activations;
        s->backend = model->base->new_session(layout, so);
        s->backend->write_params(params.data());
    } catch (const std::exception & e) {
        throw Napi::Error::New(env, e.what());
    }
    return wrap(env, s, kSessionTag);
}

Napi::Value session_info(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    auto s = session_of(info[0]);
    const LoraConfig & c = s->backend->layout().config;
    Napi::Object o = Napi::Object::New(env);
    o.Set("parameterCount", (double) s->backend->layout().n_params);
    o.Set("rank", c.rank);
    o.Set("alpha", (double) c.alpha);
    o.Set("dropout", (double) c.dropout);
    o.Set("scale", (double) c.scale());
    o.Set("targets", target_names(env, c.targets));
    o.Set("seed", (double) s->seed);
    o.Set("threads", s->threads);
    o.Set("backend", s->backend->name());
    o.Set("device", s->backend->device());
    const MemoryStats mem = s->backend->memory();
    o.Set("baseBytes", (double) mem.base_bytes);
    o.Set("peakMemoryBytes", (double) mem.peak_bytes);
    return o;
}

Napi::Value session_dispose(const Napi::CallbackInfo & info) {
    release<TrainSessionHandle>(info[0], kSessionTag, "training session");
    return info.Env().Undefined();
}

Napi::Value get_params(const Napi::CallbackInfo & info) {
    auto s = session_of(info[0]);
    // Never block the JS thread behind a running job.
    std::unique_lock<std::mutex> lk(s->mutex, std::try_to_lock);
    if (!lk.owns_lock()) throw Napi::Error::New(info.Env(), "training session is busy");
    Napi::Float32Array out = Napi::Float32Array::New(info.Env(), (size_t) s->backend->layout().n_params);
    s->backend->read_params(out.Data());
    return out;
}

Napi::Value set_params(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    auto s = session_of(info[0]);
    if (info.Length() < 2 || !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
        throw Napi::TypeError::New(env, "trainSetParams(session, Float32Array)");
    }
    Napi::Float32Array a = info[1].As<Napi::Float32Array>();
    if ((int64_t) a.ElementLength() != s->backend->layout().n_params) throw Napi::RangeError::New(env, "wrong parameter count");
    std::unique_lock<std::mutex> lk(s->mutex, std::try_to_lock);
    if (!lk.owns_lock()) throw Napi::Error::New(env, "training session is busy");
    s->backend->write_params(a.Data());
    return env.Undefined();
}

// trainSaveAdapter(session, path, meta: Record<string, string>) -> Promise<void>
Napi::Value save_adapter(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    auto s = session_of(info[0]);
    if (info.Length() < 2 || !info[1].IsString()) throw Napi::TypeError::New(env, "trainSaveAdapter(session, path, meta?)");
    const std::string path = info[1].As<Napi::String>().Utf8Value();
    MetaStrings meta;
    Napi::Object m = opt_object(info[2], "adapter metadata");
    Napi::Array keys = m.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); i++) {
        const std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
        Napi::Value v = m.Get(k);
        if (!v.IsString()) throw Napi::TypeError::New(env, "adapter metadata values must be strings (" + k + ")");
        if (k.rfind("general.", 0) == 0 || k.rfind("adapter.", 0) == 0) {
            throw Napi::RangeError::New(env, "adapter metadata key " + k + " is reserved");
        }
        meta.push_back({k, v.As<Napi::String>().Utf8Value()});
    }
    return run_job(env, "selftune.trainSaveAdapter", env.Undefined(), nullptr, [s, path, meta](JobContext &) -> Finish {
        std::lock_guard<std::mutex> lk(s->mutex);
        std::vector<float> p((size_t) s->backend->layout().n_params);
        s->backend->read_params(p.data());
        write_lora_adapter(path, s->backend->model_config(), s->backend->layout(), p.data(), meta);
        return Finish();
    });
}

// ---- training --------------------------------------------------------------------------

TrainConfig train_config_from_js(const Napi::Object & o) {
    Napi::Env env = o.Env();
    TrainConfig c;
    c.plan.epochs = (int32_t) opt_int(o, "epochs", 3, 1, 100000);
    c.plan.micro_batch = (int32_t) opt_int(o, "microBatch", 4, 1, 65536);
    c.plan.grad_accum = (int32_t) opt_int(o, "gradAccum", 2, 1, 65536);
    c.plan.bucket_window = (int32_t) opt_int(o, "bucketWindow", 8, 1, 1 << 20);
    c.plan.max_length = (int32_t) opt_int(o, "maxLength", 1024, 2, 1 << 20);
    c.plan.pad_id = (int32_t) opt_int(o, "padId", 0, 0, INT32_MAX);
    c.plan.seed = (uint64_t) opt_int(o, "dataSeed", 0, 0, INT64_MAX);
    c.plan.pairs = opt_bool(o, "pairs", opt_string(o, "objective", "sft") == "dpo");
    c.seed = (uint64_t) opt_int(o, "seed", 0, 0, INT64_MAX);
    c.schedule.lr = (float) opt_number(o, "lr", 2e-4);
    c.schedule.min_lr_ratio = (float) opt_number(o, "minLrRatio", 0.0);
    c.schedule.warmup_steps = opt_int(o, "warmupSteps", -1, -1, INT64_MAX);
    c.warmup_ratio = (float) opt_number(o, "warmupRatio", 0.03);
    const std::string sched = opt_string(o, "schedule", "cosine");
    if (!decay_kind_from_name(sched, c.schedule.decay)) {
        throw Napi::RangeError::New(env, "option schedule must be cosine, linear or constant");
    }
    c.adamw.beta1 = (float) opt_number(o, "beta1", 0.9);
    c.adamw.beta2 = (float) opt_number(o, "beta2", 0.999);
    c.adamw.eps = (float) opt_number(o, "eps", 1e-8);
    c.adamw.weight_decay = (float) opt_number(o, "weightDecay", 0.0);
    c.max_grad_norm = (float) opt_number(o, "maxGradNorm", 1.0);
    c.checkpoint_path = opt_string(o, "checkpointPath", "");
    c.checkpoint_every = opt_int(o, "checkpointEvery", 0, 0, INT64_MAX);
    c.stop_after_steps = opt_int(o, "stopAfterSteps", -1, -1, INT64_MAX);
    c.max_steps = opt_int(o, "maxSteps", -1, -1, INT64_MAX);
    if (c.max_steps == 0) throw Napi::RangeError::New(env, "option maxSteps must be >= 1");
    if (c.warmup_ratio < 0 || c.warmup_ratio > 1) throw Napi::RangeError::New(env, "option warmupRatio must be in [0, 1]");
    if (c.schedule.min_lr_ratio < 0 || c.schedule.min_lr_ratio > 1) throw Napi::RangeError::New(env, "option minLrRatio must be in [0, 1]");
    return c;
}

// {objective: "sft" | "dpo", beta, loss: "sigmoid" | "ipo", reference: Float64Array} -> the
// objective, made on the job's thread; null for SFT.
std::shared_ptr<DpoObjective> dpo_from_js(const Napi::Object & o, const TrainConfig & cfg, const Dataset & data) {
    Napi::Env env = o.Env();
    const std::string objective = opt_string(o, "objective", "sft");
    if (objective == "sft") {
        for (const char * k : {"beta", "loss", "reference"}) {
            if (o.Has(k) && !o.Get(k).IsUndefined()) {
                throw Napi::TypeError::New(env, std::string("option ") + k + " applies only to objective dpo");
            }
        }
        return nullptr;
    }
    if (objective != "dpo") throw Napi::RangeError::New(env, "option objective must be sft or dpo");
    if (!cfg.plan.pairs) throw Napi::RangeError::New(env, "objective dpo needs pairs (do not pass pairs: false)");
    DpoConfig dc;
    dc.beta = opt_number(o, "beta", 0.1);
    if (!(dc.beta > 0) || !std::isfinite(dc.beta)) throw Napi::RangeError::New(env, "option beta must be > 0");
    const std::string loss = opt_string(o, "loss", "sigmoid");
    if (loss != "sigmoid" && loss != "ipo") throw Napi::RangeError::New(env, "option loss must be sigmoid or ipo");
    dc.loss = loss == "ipo" ? DpoLoss::ipo : DpoLoss::sigmoid;
    Napi::Value rv = o.Get("reference");
    if (!rv.IsTypedArray() || rv.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
        throw Napi::TypeError::New(env, "objective dpo needs option reference: a Float64Array (session.referenceLogprobs)");
    }
    Napi::Float64Array r = rv.As<Napi::Float64Array>();
    if ((int64_t) r.ElementLength() != data.size()) {
        throw Napi::RangeError::New(env, "option reference has " + std::to_string(r.ElementLength()) +
                                             " values for " + std::to_string(data.size()) + " examples");
    }
    try {
        return std::make_shared<DpoObjective>(std::vector<double>(r.Data(), r.Data() + r.ElementLength()), dc);
    } catch (const std::exception & e) {
        throw Napi::RangeError::New(env, e.what());
    }
}

// trainRun(session, data, config, onProgress?, cancel?) -> Promise<result>
Napi::Value run_training(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    auto s = session_of(info[0]);
    auto data = std::make_shared<Dataset>(dataset_from_js(info[1], s->backend->model_config().n_vocab));
    Napi::Object o = opt_object(info[2], "training options");
    const TrainConfig cfg = train_config_from_js(o);
    const std::string resume = opt_string(o, "resumeFrom", "");
    std::shared_ptr<DpoObjective> dpo = dpo_from_js(o, cfg, *data);
    CancelFlag cancel = CancelSource::from_value(info[4]);

    return run_job(env, "selftune.trainRun", info[3], cancel, [s, data, cfg, resume, dpo](JobContext & job) -> Finish {
        std::lock_guard<std::mutex> lk(s->mutex);
        TokenMeanCrossEntropy sft;
        Objective & objective = dpo ? (Objective &) *dpo : (Objective &) sft;
        Trainer trainer(*s->backend, objective, *data, cfg);
        if (!resume.empty()) trainer.resume(resume);
        const int64_t truncated = trainer.plan().n_truncated();
        const int64_t warmup = trainer.schedule().warmup_steps;
        TrainResult res = trainer.run(
            [&job](const TrainProgress & p) {
                const StepRecord r = *p.record;
                const int64_t total = p.total_steps;
                const double elapsed = p.elapsed, tps = p.tokens_per_second, eta = p.eta;
                const bool ck = p.checkpointed;
                job.progress([r, total, elapsed, tps, eta, ck](Napi::Env env) {
                    Napi::Object o = record_to_js(env, r);
                    o.Set("totalSteps", (double) total);
                    o.Set("elapsed", elapsed);
                    o.Set("tokensPerSecond", tps);
                    o.Set("eta", eta);
                    o.Set("checkpointed", ck);
                    return o;
                });
            },
            [&job] { return job.cancelled(); });
        if (res.cancelled) throw Cancelled();
        const uint64_t fp = trainer.fingerprint();
        auto history = std::make_shared<std::vector<StepRecord>>(trainer.history());
        return [res, truncated, warmup, fp, history](Napi::Env env) -> Napi::Value {
            Napi::Object o = Napi::Object::New(env);
            Napi::Array recs = Napi::Array::New(env, res.records.size());
            for (size_t i = 0; i < res.records.size(); i++) recs.Set((uint32_t) i, record_to_js(env, res.records[i]));
            o.Set("records", recs);
            Napi::Array hist = Napi::Array::New(env, history->size());
            for (size_t i = 0; i < history->size(); i++) hist.Set((uint32_t) i, record_to_js(env, (*history)[i]));
            o.Set("history", hist);
            o.Set("startStep", (double) res.start_step);
            o.Set("endStep", (double) res.end_step);
            o.Set("totalSteps", (double) res.total_steps);
            o.Set("warmupSteps", (double) warmup);
            o.Set("completed", res.completed);
            o.Set("tokensSeen", (double) res.tokens_seen);
            o.Set("lossTokensSeen", (double) res.loss_tokens_seen);
            o.Set("seconds", res.seconds);
            o.Set("truncatedExamples", (double) truncated);
            o.Set("checkpoint", res.checkpoint.empty() ? env.Null() : Napi::String::New(env, res.checkpoint));
            char buf[17];
            snprintf(buf, sizeof buf, "%016llx", (unsigned long long) fp);
            o.Set("fingerprint", buf);
            return o;
        };
    });
}

// trainEvaluate(session, data, {useLora, microBatch, maxLength, logprobs}, cancel?) -> Promise<...>
Napi::Value evaluate(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    auto s = session_of(info[0]);
    auto data = std::make_shared<Dataset>(dataset_from_js(info[1], s->backend->model_config().n_vocab));
    Napi::Object o = opt_object(info[2], "evaluate options");
    const bool use_lora = opt_bool(o, "useLora", true);
    const int32_t micro = (int32_t) opt_int(o, "microBatch", 8, 1, 65536);
    const int32_t max_len = (int32_t) opt_int(o, "maxLength", 1 << 20, 2, 1 << 20);
    const bool want_logprobs = opt_bool(o, "logprobs", false);
    CancelFlag cancel = CancelSource::from_value(info[3]);
    return run_job(env, "selftune.trainEvaluate", env.Undefined(), cancel,
                   [s, data, use_lora, micro, max_len, want_logprobs](JobContext & job) -> Finish {
        std::lock_guard<std::mutex> lk(s->mutex);
        PlanConfig pc;
        pc.epochs = 1;
        pc.micro_batch = micro;
        pc.grad_accum = 1;
        pc.max_length = max_len;
        DataPlan plan(*data, pc);
        const int64_t n = data->size();
        auto loss_sum = std::make_shared<std::vector<double>>((size_t) n, 0.0);
        auto loss_n = std::make_shared<std::vector<int32_t>>((size_t) n, 0);
        auto lp = std::make_shared<std::vector<double>>();
        auto lp_off = std::make_shared<std::vector<double>>(1, 0.0);
        // In example order (not the training order), micro-batches of consecutive examples.
        for (int64_t e0 = 0; e0 < n; e0 += micro) {
            job.check_cancelled();
            std::vector<int64_t> idx;
            for (int64_t e = e0; e < std::min(n, e0 + micro); e++) idx.push_back(e);
            const MicroBatch mb = plan.make_micro_batch(idx);
            std::vector<double> rows;
            ForwardOptions fo;
            fo.use_lora = use_lora;
            s->backend->forward(mb, fo, rows);
            size_t k = 0;
            for (int32_t q = 0; q < mb.n_seq; q++) {
                const int64_t e = idx[(size_t) q];
                for (int32_t j = 1; j < mb.length[(size_t) q]; j++) {
                    if (!mb.loss[(size_t) q * mb.seq_len + j]) continue;
                    (*loss_sum)[(size_t) e] -= rows[k];
                    (*loss_n)[(size_t) e]++;
                    if (want_logprobs) lp->push_back(rows[k]);
                    k++;
                }
                if (want_logprobs) lp_off->push_back((double) lp->size());
            }
        }
        return [loss_sum, loss_n, lp, lp_off, want_logprobs](Napi::Env env) -> Napi::Value {
            Napi::Object o = Napi::Object::New(env);
            double total = 0;
            double count = 0;
            Napi::Float64Array ls = Napi::Float64Array::New(env, loss_sum->size());
            Napi::Int32Array ln = Napi::Int32Array::New(env, loss_n->size());
            for (size_t i = 0; i < loss_sum->size(); i++) {
                ls[i] = (*loss_sum)[i];
                ln[i] = (*loss_n)[i];
                total += (*loss_sum)[i];
                count += (*loss_n)[i];
            }
            o.Set("lossSum", total);
            o.Set("lossTokens", count);
            o.Set("exampleLossSum", ls);
            o.Set("exampleLossTokens", ln);
            if (want_logprobs) {
                Napi::Float64Array a = Napi::Float64Array::New(env, lp->size());
                std::copy(lp->begin(), lp->end(), a.Data());
                Napi::Float64Array off = Napi::Float64Array::New(env, lp_off->size());
                std::copy(lp_off->begin(), lp_off->end(), off.Data());
                o.Set("logprobs", a);
                o.Set("logprobOffsets", off);
            }
            return o;
        };
    });
}

// trainReferenceLogprobs(session, data, {useLora, microBatch, maxLength}, cancel?) -> Promise<Float64Array>
// DPO's reference: per-example summed target log-probs under the session as it is now.
Napi::Value reference_logprobs(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    auto s = session_of(info[0]);
    auto data = std::make_shared<Dataset>(dataset_from_js(info[1], s->backend->model_config().n_vocab));
    Napi::Object o = opt_object(info[2], "reference options");
    ReferenceOptions ro;
    ro.use_lora = opt_bool(o, "useLora", true);
    ro.micro_batch = (int32_t) opt_int(o, "microBatch", 8, 1, 65536);
    ro.max_length = (int32_t) opt_int(o, "maxLength", 1024, 2, 1 << 20);
    CancelFlag cancel = CancelSource::from_value(info[3]);
    return run_job(env, "selftune.trainReferenceLogprobs", env.Undefined(), cancel, [s, data, ro](JobContext & job) -> Finish {
        std::lock_guard<std::mutex> lk(s->mutex);
        auto sums = std::make_shared<std::vector<double>>(
            reference_logp_sums(*s->backend, *data, ro, [&job] { job.check_cancelled(); }));
        return [sums](Napi::Env env) -> Napi::Value {
            Napi::Float64Array a = Napi::Float64Array::New(env, sums->size());
            std::copy(sums->begin(), sums->end(), a.Data());
            return a;
        };
    });
}

// trainLogits(session, tokens, {useLora, lastOnly}) -> Promise<Float32Array>
Napi::Value logits(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    auto s = session_of(info[0]);
    std::vector<int32_t> tokens = token_ids(info[1], s->backend->model_config().n_vocab, "tokens");
    if (tokens.empty()) throw Napi::RangeError::New(env, "trainLogits: no tokens");
    Napi::Object o = opt_object(info[2], "logits options");
    const bool use_lora = opt_bool(o, "useLora", true);
    const bool last_only = opt_bool(o, "lastOnly", false);
    const bool parity = opt_bool(o, "llamaParity", false);
    return run_job(env, "selftune.trainLogits", env.Undefined(), nullptr,
                   [s, tokens, use_lora, last_only, parity](JobContext &) -> Finish {
        std::lock_guard<std::mutex> lk(s->mutex);
        auto out = std::make_shared<std::vector<float>>();
        s->backend->logits(tokens, use_lora, last_only, *out, parity);
        return [out](Napi::Env env) -> Napi::Value {
            Napi::Float32Array a = Napi::Float32Array::New(env, out->size());
            std::copy(out->begin(), out->end(), a.Data());
            return a;
        };
    });
}

// trainGreedy(session, prompt, {maxTokens, stop, useLora}, cancel?) -> Promise<Int32Array>
// Plain greedy decoding by full recomputation: a test and debugging aid for small models,
// not a generator (the inference addon is).
Napi::Value greedy(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    auto s = session_of(info[0]);
    const int32_t n_vocab = s->backend->model_config().n_vocab;
    std::vector<int32_t> prompt = token_ids(info[1], n_vocab, "prompt");
    if (prompt.empty()) throw Napi::RangeError::New(env, "trainGreedy: empty prompt");
    Napi::Object o = opt_object(info[2], "greedy options");
    const int32_t max_tokens = (int32_t) opt_int(o, "maxTokens", 32, 1, 4096);
    const bool use_lora = opt_bool(o, "useLora", true);
    std::vector<int32_t> stop;
    if (o.Has("stop")) stop = token_ids(o.Get("stop"), n_vocab, "stop");
    CancelFlag cancel = CancelSource::from_value(info[3]);
    return run_job(env, "selftune.trainGreedy", env.Undefined(), cancel,
                   [s, prompt, max_tokens, use_lora, stop](JobContext & job) -> Finish {
        std::lock_guard<std::mutex> lk(s->mutex);
        std::vector<int32_t> seq = prompt;
        auto gen = std::make_shared<std::vector<int32_t>>();
        std::vector<float> z;
        for (int32_t i = 0; i < max_tokens; i++) {
            job.check_cancelled();
            s->backend->logits(seq, use_lora, true, z);
            const int32_t next = (int32_t) (std::max_element(z.begin(), z.end()) - z.begin());
            gen->push_back(next);
            seq.push_back(next);
            if (std::find(stop.begin(), stop.end(), next) != stop.end()) break;
        }
        return [gen](Napi::Env env) -> Napi::Value {
            Napi::Int32Array a = Napi::Int32Array::New(env, gen->size());
            std::copy(gen->begin(), gen->end(), a.Data());
            return a;
        };
    });
}

// trainPlan(data, {epochs, microBatch, gradAccum, bucketWindow, maxLength, dataSeed, maxSteps, pairs})
//   -> {stepsPerEpoch, totalSteps, truncated, steps: number[][][]}: the example indices of every
// micro-batch of every step, as training would visit them (inspection and tests).
Napi::Value plan_preview(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    Dataset data = dataset_from_js(info[0], INT32_MAX);
    const TrainConfig cfg = train_config_from_js(opt_object(info[1], "plan options"));
    DataPlan plan(data, cfg.plan);
    const int64_t total = cfg.max_steps >= 0 ? std::min(cfg.max_steps, plan.total_steps()) : plan.total_steps();
    Napi::Object o = Napi::Object::New(env);
    o.Set("stepsPerEpoch", (double) plan.steps_per_epoch());
    o.Set("totalSteps", (double) total);
    o.Set("truncated", (double) plan.n_truncated());
    Napi::Array steps = Napi::Array::New(env, (size_t) total);
    for (int64_t k = 0; k < total; k++) {
        const auto mbs = plan.step_batches(k);
        Napi::Array a = Napi::Array::New(env, mbs.size());
        for (size_t i = 0; i < mbs.size(); i++) {
            Napi::Array b = Napi::Array::New(env, mbs[i].size());
            for (size_t j = 0; j < mbs[i].size(); j++) b.Set((uint32_t) j, (double) mbs[i][j]);
            a.Set((uint32_t) i, b);
        }
        steps.Set((uint32_t) k, a);
    }
    o.Set("steps", steps);
    return o;
}

// trainSelfCheck(seed, threads) -> Promise<[{group, name, maxAbsErr, maxRelErr, n, tolerance, passed}]>
Napi::Value self_check(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    Napi::Object o = opt_object(info[0], "self-check options");
    const uint64_t seed = (uint64_t) opt_int(o, "seed", 1, 0, INT32_MAX);
    const int threads = threads_or_default(opt_int(o, "threads", 0, 0, 1024));
    return run_job(env, "selftune.trainSelfCheck", env.Undefined(), nullptr, [seed, threads](JobContext &) -> Finish {
        auto all = std::make_shared<std::vector<std::pair<std::string, CheckResult>>>();
        for (auto & r : check_ops(seed)) all->push_back({"op", r});
        for (auto & r : check_kernels(seed + 1, threads)) all->push_back({"kernel", r});
        for (auto & r : check_model(seed + 2)) all->push_back({"model", r});
        return [all](Napi::Env env) -> Napi::Value {
            Napi::Array a = Napi::Array::New(env, all->size());
            for (size_t i = 0; i < all->size(); i++) {
                const CheckResult & r = (*all)[i].second;
                Napi::Object e = Napi::Object::New(env);
                e.Set("group", (*all)[i].first);
                e.Set("name", r.name);
                e.Set("maxAbsErr", r.max_abs_err);
                e.Set("maxRelErr", r.max_rel_err);
                e.Set("checked", (double) r.n_checked);
                e.Set("tolerance", r.tolerance);
                e.Set("passed", r.passed);
                a.Set((uint32_t) i, e);
            }
            return a;
        };
    });
}

// Wraps a binding so std::exceptions thrown on the JS thread become JS errors.
template <Napi::Value (*F)(const Napi::CallbackInfo &)>
Napi::Value guarded(const Napi::CallbackInfo & info) {
    try {
        return F(info);
    } catch (const Napi::Error &) {
        throw;
    } catch (const std::exception & e) {
        throw Napi::Error::New(info.Env(), e.what());
    }
}

}  // namespace

void register_train(Napi::Env env, Napi::Object exports) {
    auto fn = [&](const char * name, Napi::Value (*f)(const Napi::CallbackInfo &)) {
        exports.Set(name, Napi::Function::New(env, f, name));
    };
    fn("trainLoadModel", guarded<load_model>);
    fn("trainModelInfo", guarded<model_info>);
    fn("trainModelDispose", guarded<model_dispose>);
    fn("trainCreateSession", guarded<create_session>);
    fn("trainSessionInfo", guarded<session_info>);
    fn("trainBackends", guarded<backends>);
    fn("trainSessionDispose", guarded<session_dispose>);
    fn("trainGetParams", guarded<get_params>);
    fn("trainSetParams", guarded<set_params>);
    fn("trainSaveAdapter", guarded<save_adapter>);
    fn("trainRun", guarded<run_training>);
    fn("trainEvaluate", guarded<evaluate>);
    fn("trainReferenceLogprobs", guarded<reference_logprobs>);
    fn("trainLogits", guarded<logits>);
    fn("trainGreedy", guarded<greedy>);
    fn("trainSelfCheck", guarded<self_check>);
    fn("trainPlan", guarded<plan_preview>);
}

}  // namespace selftune
