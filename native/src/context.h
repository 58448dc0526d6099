// Context: the JS wrapper of a Session. Jobs on a context (score, evalLogits, and the
// generator's) run one at a time, each on its own thread, holding the session alive.
#pragma once

#include "session.h"

#include <napi.h>

#include <memory>

namespace selftune {

class Context : public Napi::ObjectWrap<Context> {
  public:
    static Napi::Function define(Napi::Env env);
    // createContext(model, {contextSize?, batchSize?, ubatchSize?, parallel?, threads?,
    //                       outputsMax?, flashAttention?}) -> Promise<Context>
    static Napi::Value create(const Napi::CallbackInfo & info);
    // The session of a Context passed from JS; throws a JS error if disposed.
    static std::shared_ptr<Session> session_of(const Napi::Value & v);

    explicit Context(const Napi::CallbackInfo & info);
    const std::shared_ptr<Session> & session(Napi::Env env) const;

  private:
    Napi::Value info(const Napi::CallbackInfo & info);
    Napi::Value disposed(const Napi::CallbackInfo & info);
    Napi::Value dispose(const Napi::CallbackInfo & info);
    // score(items, {adapters?, minSharedPrefix?, reusePrefix?}, onProgress?, cancel?)
    Napi::Value score(const Napi::CallbackInfo & info);
    // evalLogits(tokens, {adapters?}, cancel?) -> Promise<Float32Array> (n_tokens x n_vocab)
    Napi::Value eval_logits(const Napi::CallbackInfo & info);
    // reset() -> Promise<void>: an empty, zeroed KV cache and no held prefix, as when created
    Napi::Value reset(const Napi::CallbackInfo & info);

    std::shared_ptr<Session> session_;
};

// Reads [{adapter, scale}] from JS, checking each adapter belongs to `model`.
std::vector<AdapterUse> adapters_from_js(const Napi::Value & v, const std::shared_ptr<ModelHandle> & model);

}  // namespace selftune
