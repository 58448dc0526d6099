#include "adapter.h"

#include "addon.h"
#include "adapter_check.h"
#include "log.h"

#include <cstdlib>
#include <stdexcept>

namespace selftune {

AdapterHandle::AdapterHandle(std::shared_ptr<ModelHandle> model, llama_adapter_lora * adapter, std::string path,
                             float alpha)
    : model_(std::move(model)), adapter_(adapter), path_(std::move(path)), alpha_(alpha) {}

AdapterHandle::~AdapterHandle() {
    llama_adapter_lora_free(adapter_);
}

std::shared_ptr<AdapterHandle> AdapterHandle::load(std::shared_ptr<ModelHandle> model, const std::string & path) {
    if (model->info().vocab_only) throw std::runtime_error("cannot apply an adapter to a vocabulary-only model");
    validate_adapter_file(path, model->info().architecture, &model->settings());
    LogCapture capture;
    llama_adapter_lora * adapter = llama_adapter_lora_init(model->get(), path.c_str());
    if (!adapter) {
        const std::string why = capture.errors();
        throw std::runtime_error(path + ": llama.cpp could not load the adapter" + (why.empty() ? "" : ": " + why));
    }
    char buf[64];
    float alpha = 0.0f;
    if (llama_adapter_meta_val_str(adapter, "adapter.lora.alpha", buf, sizeof(buf)) > 0) {
        alpha = std::strtof(buf, nullptr);
    }
    return std::shared_ptr<AdapterHandle>(new AdapterHandle(std::move(model), adapter, path, alpha));
}

Napi::Function Adapter::define(Napi::Env env) {
    return DefineClass(env, "Adapter", {
        InstanceAccessor<&Adapter::path>("path"),
        InstanceAccessor<&Adapter::alpha>("alpha"),
        InstanceAccessor<&Adapter::disposed>("disposed"),
        InstanceMethod<&Adapter::dispose>("dispose"),
    });
}

Adapter::Adapter(const Napi::CallbackInfo & info) : Napi::ObjectWrap<Adapter>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
        throw Napi::TypeError::New(info.Env(), "Adapter cannot be constructed directly: use loadAdapter()");
    }
    handle_ = std::move(*info[0].As<Napi::External<std::shared_ptr<AdapterHandle>>>().Data());  // see Model::Model
}

const std::shared_ptr<AdapterHandle> & Adapter::handle(Napi::Env env) const {
    if (!handle_) throw Napi::Error::New(env, "adapter is disposed");
    return handle_;
}

std::shared_ptr<AdapterHandle> Adapter::handle_of(const Napi::Value & v) {
    Napi::Env env = v.Env();
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addon_data(env).adapter_ctor.Value())) {
        throw Napi::TypeError::New(env, "expected an Adapter");
    }
    return Adapter::Unwrap(v.As<Napi::Object>())->handle(env);
}

Napi::Value Adapter::load(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    std::shared_ptr<ModelHandle> model = Model::handle_of(info[0]);
    if (info.Length() < 2 || !info[1].IsString()) throw Napi::TypeError::New(env, "loadAdapter: path must be a string");
    const std::string path = info[1].As<Napi::String>().Utf8Value();
    return run_job(env, "selftune.loadAdapter", env.Undefined(), nullptr, [model, path](JobContext &) -> Finish {
        auto handle = AdapterHandle::load(model, path);
        return [handle](Napi::Env env) -> Napi::Value {
            auto * box = new std::shared_ptr<AdapterHandle>(handle);
            auto ext = Napi::External<std::shared_ptr<AdapterHandle>>::New(
                env, box, [](Napi::Env, std::shared_ptr<AdapterHandle> * p) { delete p; });
            return addon_data(env).adapter_ctor.New({ext});
        };
    });
}

Napi::Value Adapter::path(const Napi::CallbackInfo & info) {
    return Napi::String::New(info.Env(), handle(info.Env())->path());
}

Napi::Value Adapter::alpha(const Napi::CallbackInfo & info) {
    return Napi::Number::New(info.Env(), handle(info.Env())->alpha());
}

Napi::Value Adapter::disposed(const Napi::CallbackInfo & info) {
    return Napi::Boolean::New(info.Env(), !handle_);
}

Napi::Value Adapter::dispose(const Napi::CallbackInfo & info) {
    handle_.reset();
    return info.Env().Undefined();
}

}  // namespace selftune
