#include "context.h"

#include "addon.h"
#include "cancel.h"
#include "js_args.h"
#include "scorer.h"

#include <climits>

namespace selftune {

Napi::Function Context::define(Napi::Env env) {
    return DefineClass(env, "Context", {
        InstanceAccessor<&Context::info>("info"),
        InstanceAccessor<&Context::disposed>("disposed"),
        InstanceMethod<&Context::dispose>("dispose"),
        InstanceMethod<&Context::score>("score"),
        InstanceMethod<&Context::eval_logits>("evalLogits"),
        InstanceMethod<&Context::reset>("reset"),
    });
}

Context::Context(const Napi::CallbackInfo & info) : Napi::ObjectWrap<Context>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
        throw Napi::TypeError::New(info.Env(), "Context cannot be constructed directly: use createContext()");
    }
    session_ = std::move(*info[0].As<Napi::External<std::shared_ptr<Session>>>().Data());  // see Model::Model
}

const std::shared_ptr<Session> & Context::session(Napi::Env env) const {
    if (!session_) throw Napi::Error::New(env, "context is disposed");
    return session_;
}

std::shared_ptr<Session> Context::session_of(const Napi::Value & v) {
    Napi::Env env = v.Env();
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addon_data(env).context_ctor.Value())) {
        throw Napi::TypeError::New(env, "expected a Context");
    }
    return Context::Unwrap(v.As<Napi::Object>())->session(env);
}

Napi::Value Context::create(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    std::shared_ptr<ModelHandle> model = Model::handle_of(info[0]);
    if (model->info().vocab_only) throw Napi::Error::New(env, "createContext: the model was loaded vocabOnly");
    Napi::Object o = opt_object(info[1], "createContext options");
    SessionParams p;
    const int64_t train = model->info().n_ctx_train > 0 ? model->info().n_ctx_train : 4096;
    p.n_ctx = (uint32_t) opt_int(o, "contextSize", std::min<int64_t>(4096, train), 16, INT32_MAX);
    p.n_batch = (uint32_t) opt_int(o, "batchSize", 2048, 1, INT32_MAX);
    p.n_ubatch = (uint32_t) opt_int(o, "ubatchSize", 512, 1, INT32_MAX);
    p.n_parallel = (uint32_t) opt_int(o, "parallel", 8, 1, (int64_t) llama_max_parallel_sequences() - 1);
    p.n_outputs_max = (uint32_t) opt_int(o, "outputsMax", 512, 1, INT32_MAX);
    p.n_threads = (int32_t) opt_int(o, "threads", 0, 0, 1024);
    const std::string fa = opt_string(o, "flashAttention", "auto");
    if (fa == "auto") p.flash_attn = -1;
    else if (fa == "off") p.flash_attn = 0;
    else if (fa == "on") p.flash_attn = 1;
    else throw Napi::TypeError::New(env, "option flashAttention must be 'auto', 'on' or 'off'");
    p.kv_unified = opt_bool(o, "kvUnified", true);
    p.op_offload = opt_bool(o, "opOffload", true);
    const std::string kv = opt_string(o, "kvType", "f16");
    if (kv == "f16") p.kv_type = GGML_TYPE_F16;
    else if (kv == "f32") p.kv_type = GGML_TYPE_F32;
    else if (kv == "bf16") p.kv_type = GGML_TYPE_BF16;
    else if (kv == "q8_0") p.kv_type = GGML_TYPE_Q8_0;
    else throw Napi::TypeError::New(env, "option kvType must be 'f16', 'f32', 'bf16' or 'q8_0'");

    return run_job(env, "selftune.createContext", env.Undefined(), nullptr, [model, p](JobContext &) -> Finish {
        auto session = Session::create(model, p);
        return [session](Napi::Env env) -> Napi::Value {
            auto * box = new std::shared_ptr<Session>(session);
            auto ext = Napi::External<std::shared_ptr<Session>>::New(
                env, box, [](Napi::Env, std::shared_ptr<Session> * q) { delete q; });
            return addon_data(env).context_ctor.New({ext});
        };
    });
}

Napi::Value Context::info(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const SessionParams & p = session(env)->params();
    Napi::Object o = Napi::Object::New(env);
    o.Set("contextSize", p.n_ctx);
    o.Set("sequenceContextSize", p.n_ctx_seq);
    o.Set("batchSize", p.n_batch);
    o.Set("ubatchSize", p.n_ubatch);
    o.Set("parallel", p.n_parallel);
    o.Set("outputsMax", p.n_outputs_max);
    o.Set("threads", p.n_threads);
    o.Set("kvType", ggml_type_name(p.kv_type));
    return o;
}

Napi::Value Context::disposed(const Napi::CallbackInfo & info) {
    return Napi::Boolean::New(info.Env(), !session_);
}

Napi::Value Context::dispose(const Napi::CallbackInfo & info) {
    session_.reset();   // a running job keeps the session until it ends
    return info.Env().Undefined();
}

std::vector<AdapterUse> adapters_from_js(const Napi::Value & v, const std::shared_ptr<ModelHandle> & model) {
    Napi::Env env = v.Env();
    std::vector<AdapterUse> out;
    if (v.IsUndefined() || v.IsNull()) return out;
    if (!v.IsArray()) throw Napi::TypeError::New(env, "adapters must be an array of {adapter, scale}");
    Napi::Array arr = v.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
        Napi::Value e = arr.Get(i);
        if (!e.IsObject()) throw Napi::TypeError::New(env, "adapters[" + std::to_string(i) + "] must be {adapter, scale}");
        Napi::Object o = e.As<Napi::Object>();
        AdapterUse use;
        use.adapter = Adapter::handle_of(o.Get("adapter"));
        use.scale = (float) opt_number(o, "scale", 1.0);
        if (use.adapter->model() != model) {
            throw Napi::Error::New(env, "adapters[" + std::to_string(i) + "] was loaded for another model");
        }
        out.push_back(std::move(use));
    }
    return out;
}

static void read_side(Napi::Object item, const char * key, size_t index, int32_t n_vocab,
                      std::vector<llama_token> & ids, std::string & text, bool & is_text) {
    Napi::Value v = item.Get(key);
    const std::string what = "items[" + std::to_string(index) + "]." + key;
    if (v.IsString()) {
        text = v.As<Napi::String>().Utf8Value();
        is_text = true;
    } else {
        if (v.IsUndefined()) throw Napi::TypeError::New(item.Env(), what + " is missing");
        ids = token_ids(v, n_vocab, what);
    }
}

Napi::Value Context::score(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    std::shared_ptr<Session> session = this->session(env);
    const int32_t n_vocab = session->n_vocab();
    if (!info[0].IsArray()) throw Napi::TypeError::New(env, "score: items must be an array");
    Napi::Array arr = info[0].As<Napi::Array>();

    // Everything is read and checked here, on the JS thread; only text is tokenized on
    // the worker.
    std::vector<ScoreItem> items(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); i++) {
        Napi::Value v = arr.Get(i);
        if (!v.IsObject()) throw Napi::TypeError::New(env, "items[" + std::to_string(i) + "] must be an object");
        Napi::Object o = v.As<Napi::Object>();
        ScoreItem & it = items[i];
        read_side(o, "prompt", i, n_vocab, it.prompt, it.prompt_text, it.prompt_is_text);
        read_side(o, "continuation", i, n_vocab, it.continuation, it.continuation_text, it.continuation_is_text);
        Napi::Value c = o.Get("candidates");
        if (!c.IsUndefined() && !c.IsNull()) {
            it.candidates = token_ids(c, n_vocab, "items[" + std::to_string(i) + "].candidates");
        }
    }
    Napi::Object o = opt_object(info[1], "score options");
    ScoreOptions opts;
    opts.min_shared_prefix = (int32_t) opt_int(o, "minSharedPrefix", 16, 1, INT32_MAX);
    opts.reuse_prefix = opt_bool(o, "reusePrefix", true);
    opts.log_softmax = reduce_on_from_js(o.Get("logSoftmax"), "score options.logSoftmax");
    std::vector<AdapterUse> adapters = adapters_from_js(o.Get("adapters"), session->model());
    CancelFlag cancel = CancelSource::from_value(info[3]);

    return run_job(env, "selftune.score", info[2], cancel,
                   [session, items = std::move(items), opts, adapters](JobContext & job) mutable -> Finish {
        auto lease = session->acquire(job);
        session->set_adapters(adapters);
        auto results = std::make_shared<std::vector<ScoreResult>>();
        auto stats = std::make_shared<ScoreStats>();
        score_items(*session, job, items, opts, *results, *stats);
        return [results, stats](Napi::Env env) -> Napi::Value {
            Napi::Array out = Napi::Array::New(env, results->size());
            for (size_t i = 0; i < results->size(); i++) {
                const ScoreResult & r = (*results)[i];
                Napi::Object e = Napi::Object::New(env);
                Napi::Array lp = Napi::Array::New(env, r.logprobs.size());
                for (size_t k = 0; k < r.logprobs.size(); k++) lp.Set((uint32_t) k, r.logprobs[k]);
                Napi::Array ids = Napi::Array::New(env, r.continuation.size());
                for (size_t k = 0; k < r.continuation.size(); k++) ids.Set((uint32_t) k, r.continuation[k]);
                e.Set("logprobs", lp);
                e.Set("sum", r.sum);
                e.Set("continuationTokens", ids);
                e.Set("promptTokenCount", r.n_prompt);
                if (!r.candidate_logprobs.empty()) {
                    Napi::Array cl = Napi::Array::New(env, r.candidate_logprobs.size());
                    for (size_t k = 0; k < r.candidate_logprobs.size(); k++) cl.Set((uint32_t) k, r.candidate_logprobs[k]);
                    e.Set("candidates", cl);
                }
                out.Set((uint32_t) i, e);
            }
            Napi::Object st = Napi::Object::New(env);
            st.Set("items", (double) stats->items);
            st.Set("tokens", (double) stats->tokens);
            st.Set("tokensDecoded", (double) stats->tokens_decoded);
            st.Set("tokensReused", (double) stats->tokens_reused);
            st.Set("prefixTokens", (double) stats->prefix_tokens);
            st.Set("decodeCalls", (double) stats->decode_calls);
            st.Set("outputs", (double) stats->outputs);
            st.Set("seconds", stats->seconds);
            Napi::Object res = Napi::Object::New(env);
            res.Set("items", out);
            res.Set("stats", st);
            return res;
        };
    });
}

Napi::Value Context::reset(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    std::shared_ptr<Session> session = this->session(env);
    return run_job(env, "selftune.resetContext", env.Undefined(), nullptr, [session](JobContext & job) -> Finish {
        auto lease = session->acquire(job);   // after any call still running on it
        session->reset();
        return [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
    });
}

Napi::Value Context::eval_logits(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    std::shared_ptr<Session> session = this->session(env);
    std::vector<llama_token> tokens = token_ids(info[0], session->n_vocab(), "evalLogits: tokens");
    Napi::Object o = opt_object(info[1], "evalLogits options");
    std::vector<AdapterUse> adapters = adapters_from_js(o.Get("adapters"), session->model());
    CancelFlag cancel = CancelSource::from_value(info[2]);
    return run_job(env, "selftune.evalLogits", env.Undefined(), cancel,
                   [session, tokens = std::move(tokens), adapters](JobContext & job) -> Finish {
        auto lease = session->acquire(job);
        session->set_adapters(adapters);
        auto logits = std::make_shared<std::vector<float>>(eval_all_logits(*session, job, tokens));
        return [logits](Napi::Env env) -> Napi::Value {
            Napi::Float32Array out = Napi::Float32Array::New(env, logits->size());
            std::copy(logits->begin(), logits->end(), out.Data());
            return out;
        };
    });
}

}  // namespace selftune
