// Adapter: a llama.cpp GGUF LoRA adapter loaded against one model, and its JS wrapper.
//
// AdapterHandle owns the llama_adapter_lora and keeps its model alive. A Session that has
// the adapter applied also holds the handle, so disposing an adapter in JS never frees
// it under a running job.
#pragma once

#include "job.h"
#include "model.h"

#include "llama.h"

#include <napi.h>

#include <memory>
#include <string>

namespace selftune {

class AdapterHandle {
  public:
    // Validates the file against the model (architecture, adapter keys) and loads it.
    static std::shared_ptr<AdapterHandle> load(std::shared_ptr<ModelHandle> model, const std::string & path);
    ~AdapterHandle();
    AdapterHandle(const AdapterHandle &) = delete;
    AdapterHandle & operator=(const AdapterHandle &) = delete;

    llama_adapter_lora * get() const { return adapter_; }
    const std::shared_ptr<ModelHandle> & model() const { return model_; }
    const std::string & path() const { return path_; }
    float alpha() const { return alpha_; }

  private:
    AdapterHandle(std::shared_ptr<ModelHandle> model, llama_adapter_lora * adapter, std::string path, float alpha);
    std::shared_ptr<ModelHandle> model_;   // declared first: destroyed after the adapter
    llama_adapter_lora * adapter_;
    std::string path_;
    float alpha_;
};

class Adapter : public Napi::ObjectWrap<Adapter> {
  public:
    static Napi::Function define(Napi::Env env);
    // loadAdapter(model, path) -> Promise<Adapter>
    static Napi::Value load(const Napi::CallbackInfo & info);
    static std::shared_ptr<AdapterHandle> handle_of(const Napi::Value & v);

    explicit Adapter(const Napi::CallbackInfo & info);

  private:
    Napi::Value path(const Napi::CallbackInfo & info);
    Napi::Value alpha(const Napi::CallbackInfo & info);
    Napi::Value disposed(const Napi::CallbackInfo & info);
    Napi::Value dispose(const Napi::CallbackInfo & info);
    const std::shared_ptr<AdapterHandle> & handle(Napi::Env env) const;

    std::shared_ptr<AdapterHandle> handle_;
};

}  // namespace selftune
