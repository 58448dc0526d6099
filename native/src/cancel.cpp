#include "cancel.h"

#include "addon.h"

namespace selftune {

Napi::Function CancelSource::define(Napi::Env env) {
    return DefineClass(env, "CancelSource", {
        InstanceMethod<&CancelSource::cancel>("cancel"),
        InstanceAccessor<&CancelSource::cancelled>("cancelled"),
    });
}

CancelSource::CancelSource(const Napi::CallbackInfo & info)
    : Napi::ObjectWrap<CancelSource>(info), flag_(std::make_shared<std::atomic<bool>>(false)) {}

Napi::Value CancelSource::cancel(const Napi::CallbackInfo & info) {
    flag_->store(true);
    return info.Env().Undefined();
}

Napi::Value CancelSource::cancelled(const Napi::CallbackInfo & info) {
    return Napi::Boolean::New(info.Env(), flag_->load());
}

CancelFlag CancelSource::from_value(const Napi::Value & v) {
    if (v.IsUndefined() || v.IsNull()) return nullptr;
    Napi::Env env = v.Env();
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addon_data(env).cancel_ctor.Value())) {
        throw Napi::TypeError::New(env, "cancel must be a CancelSource");
    }
    return CancelSource::Unwrap(v.As<Napi::Object>())->flag();
}

}  // namespace selftune
