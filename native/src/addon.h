// Per-environment state of the addon: the JS constructors of the wrapped classes.
// Held as instance data of the napi_env (one per JS realm/worker), not in globals.
#pragma once

#include <napi.h>

namespace selftune {

struct AddonData {
    Napi::FunctionReference model_ctor;
    Napi::FunctionReference context_ctor;
    Napi::FunctionReference adapter_ctor;
    Napi::FunctionReference cancel_ctor;
};

inline AddonData & addon_data(Napi::Env env) {
    return *env.GetInstanceData<AddonData>();
}

}  // namespace selftune
