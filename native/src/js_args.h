// Reading and checking arguments that come from JavaScript. Every check throws a JS
// TypeError/RangeError naming the offending option, so bad input never reaches llama.cpp.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace selftune {

// An options object: undefined/null mean "all defaults".
Napi::Object opt_object(const Napi::Value & v, const char * what);

int64_t     opt_int   (const Napi::Object & o, const char * key, int64_t def, int64_t min, int64_t max);
double      opt_number(const Napi::Object & o, const char * key, double def);
bool        opt_bool  (const Napi::Object & o, const char * key, bool def);
std::string opt_string(const Napi::Object & o, const char * key, const std::string & def);

// Token ids from a number[] or Int32Array/Uint32Array, each checked to be an integer in
// [0, n_vocab). `what` names the argument in the error message.
std::vector<int32_t> token_ids(const Napi::Value & v, int32_t n_vocab, const std::string & what);

}  // namespace selftune
