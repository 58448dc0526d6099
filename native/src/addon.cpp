// Module entry: registers the wrapped classes and the free functions.
#include "adapter.h"
#include "addon.h"
#include "cancel.h"
#include "context.h"
#include "cpu_info.h"
#include "file_check.h"
#include "generator.h"
#include "log.h"
#include "model.h"
#include "quantize.h"
#include "train/napi_train.h"

#include "llama.h"

#include <napi.h>

namespace selftune {

static Napi::Value build_info(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("llamaCommit", SELFTUNE_LLAMA_COMMIT);
    o.Set("llamaBuildNumber", SELFTUNE_LLAMA_BUILD_NUMBER);
    o.Set("llamaTag", SELFTUNE_LLAMA_TAG);
    o.Set("llamaSource", SELFTUNE_LLAMA_SOURCE);
    o.Set("llamaVersion", llama_version());
    o.Set("ggmlVersion", ggml_version());
    o.Set("backend", SELFTUNE_BACKEND);
    o.Set("cudaArch", SELFTUNE_CUDA_ARCH);
    o.Set("compiler", SELFTUNE_COMPILER);
    o.Set("gpuOffload", llama_supports_gpu_offload());
    o.Set("systemInfo", llama_print_system_info());
    // The devices ggml can run on, e.g. "CPU" or "CUDA0 (NVIDIA H100 80GB HBM3)".
    Napi::Array devices = Napi::Array::New(env);
    for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        Napi::Object d = Napi::Object::New(env);
        d.Set("name", ggml_backend_dev_name(dev));
        d.Set("description", ggml_backend_dev_description(dev));
        size_t free = 0, total = 0;
        ggml_backend_dev_memory(dev, &free, &total);
        d.Set("memoryTotal", (double) total);
        devices.Set((uint32_t) i, d);
    }
    o.Set("devices", devices);
    return o;
}

static Napi::Value set_log_level(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    LogLevel level;
    if (info.Length() < 1 || !info[0].IsString() || !log_level_from_string(info[0].As<Napi::String>().Utf8Value(), level)) {
        throw Napi::TypeError::New(env, "setLogLevel: one of 'none', 'error', 'warn', 'info', 'debug'");
    }
    log_set_level(level);
    return env.Undefined();
}

static Napi::Value get_log_level(const Napi::CallbackInfo & info) {
    return Napi::String::New(info.Env(), log_level_name(log_get_level()));
}

static Napi::Value physical_cores_js(const Napi::CallbackInfo & info) {
    return Napi::Number::New(info.Env(), physical_cores());
}

static Napi::Object init(Napi::Env env, Napi::Object exports) {
    log_install();
    llama_backend_init();

    auto * data = new AddonData();
    Napi::Function model = Model::define(env);
    Napi::Function context = Context::define(env);
    Napi::Function adapter = Adapter::define(env);
    Napi::Function cancel = CancelSource::define(env);
    data->model_ctor = Napi::Persistent(model);
    data->context_ctor = Napi::Persistent(context);
    data->adapter_ctor = Napi::Persistent(adapter);
    data->cancel_ctor = Napi::Persistent(cancel);
    env.SetInstanceData<AddonData>(data);

    exports.Set("Model", model);
    exports.Set("Context", context);
    exports.Set("Adapter", adapter);
    exports.Set("CancelSource", cancel);
    exports.Set("buildInfo", Napi::Function::New(env, build_info, "buildInfo"));
    exports.Set("setLogLevel", Napi::Function::New(env, set_log_level, "setLogLevel"));
    exports.Set("getLogLevel", Napi::Function::New(env, get_log_level, "getLogLevel"));
    exports.Set("physicalCores", Napi::Function::New(env, physical_cores_js, "physicalCores"));
    exports.Set("loadModel", Napi::Function::New(env, Model::load, "loadModel"));
    exports.Set("createContext", Napi::Function::New(env, Context::create, "createContext"));
    exports.Set("loadAdapter", Napi::Function::New(env, Adapter::load, "loadAdapter"));
    exports.Set("quantize", Napi::Function::New(env, quantize_model, "quantize"));
    exports.Set("checkGguf", Napi::Function::New(env, check_gguf_file, "checkGguf"));
    register_train(env, exports);   // train* functions: the training engine (src/train)
    register_generate(env, exports);   // generate: batched generation (generator.cpp)
    return exports;
}

}  // namespace selftune

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    return selftune::init(env, exports);
}

NODE_API_MODULE(selftune_native, Init)
