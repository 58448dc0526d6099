#include "file_check.h"

#include "adapter_check.h"
#include "model.h"
#include "model_check.h"

#include <stdexcept>

namespace selftune {

Napi::Value check_gguf_file(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "checkGguf(path)");
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    const char * kind = "model";
    std::string arch;
    int64_t n_tensors = 0;
    try {
        const CheckedGguf file = read_checked_gguf(path);
        arch = file.header.architecture;
        n_tensors = file.header.n_tensors;
        if (file.header.general_type == "adapter") {
            kind = "adapter";   // checked alone: which model it fits is loadAdapter's question
            check_adapter_settings(file, "", nullptr);
        } else if (file.header.n_tensors == 0) {
            kind = "vocabulary";   // loads with vocabOnly only
            check_model_settings(file, true);
        } else {
            ModelHandle::check_loads(path);
        }
    } catch (const std::exception & e) {
        throw Napi::Error::New(env, e.what());
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("kind", kind);
    o.Set("architecture", arch);
    o.Set("tensorCount", (double) n_tensors);
    return o;
}

}  // namespace selftune
