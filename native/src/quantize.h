// quantize(inPath, outPath, type, {threads?}) -> Promise<void>: llama_model_quantize on a
// worker thread. Types: f32, f16, bf16, q8_0, q4_0, q4_k (= q4_k_m), q4_k_s, q4_k_m,
// q5_k_m, q6_k.
#pragma once

#include <napi.h>

namespace selftune {

Napi::Value quantize_model(const Napi::CallbackInfo & info);

}  // namespace selftune
