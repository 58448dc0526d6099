#include "quantize.h"

#include "cpu_info.h"
#include "model_check.h"
#include "job.h"
#include "js_args.h"
#include "log.h"

#include "llama.h"

#include <climits>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>

namespace selftune {

static const std::pair<const char *, llama_ftype> kTypes[] = {
    {"f32", LLAMA_FTYPE_ALL_F32},          {"f16", LLAMA_FTYPE_MOSTLY_F16},
    {"bf16", LLAMA_FTYPE_MOSTLY_BF16},     {"q8_0", LLAMA_FTYPE_MOSTLY_Q8_0},
    {"q4_0", LLAMA_FTYPE_MOSTLY_Q4_0},     {"q4_k", LLAMA_FTYPE_MOSTLY_Q4_K_M},
    {"q4_k_s", LLAMA_FTYPE_MOSTLY_Q4_K_S}, {"q4_k_m", LLAMA_FTYPE_MOSTLY_Q4_K_M},
    {"q5_k_m", LLAMA_FTYPE_MOSTLY_Q5_K_M}, {"q6_k", LLAMA_FTYPE_MOSTLY_Q6_K},
};

Napi::Value quantize_model(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsString()) {
        throw Napi::TypeError::New(env, "quantize(inPath, outPath, type)");
    }
    const std::string in = info[0].As<Napi::String>().Utf8Value();
    const std::string out = info[1].As<Napi::String>().Utf8Value();
    const std::string type = info[2].As<Napi::String>().Utf8Value();
    Napi::Object o = opt_object(info[3], "quantize options");
    const int32_t threads = (int32_t) opt_int(o, "threads", 0, 0, 1024);

    llama_ftype ftype = LLAMA_FTYPE_GUESSED;
    std::string known;
    for (const auto & t : kTypes) {
        if (type == t.first) ftype = t.second;
        known += (known.empty() ? "" : ", ") + std::string(t.first);
    }
    if (ftype == LLAMA_FTYPE_GUESSED) throw Napi::TypeError::New(env, "quantize: unknown type '" + type + "' (one of " + known + ")");
    if (in == out) throw Napi::Error::New(env, "quantize: output path must differ from the input");

    return run_job(env, "selftune.quantize", env.Undefined(), nullptr, [in, out, ftype, threads](JobContext &) -> Finish {
        validate_model_file(in, false);   // llama.cpp's quantizer loads the model's settings too
        llama_model_quantize_params qp = llama_model_quantize_default_params();
        qp.ftype = ftype;
        qp.nthread = threads > 0 ? threads : physical_cores();
        LogCapture capture;
        if (llama_model_quantize(in.c_str(), out.c_str(), &qp) != 0) {
            std::remove(out.c_str());   // never leave a half-written model behind
            const std::string why = capture.errors();
            throw std::runtime_error("failed to quantize " + in + (why.empty() ? "" : ": " + why));
        }
        return Finish();
    });
}

}  // namespace selftune
