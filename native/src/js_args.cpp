#include "js_args.h"

#include <cmath>

namespace selftune {

Napi::Object opt_object(const Napi::Value & v, const char * what) {
    if (v.IsUndefined() || v.IsNull()) return Napi::Object::New(v.Env());
    if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an object");
    return v.As<Napi::Object>();
}

int64_t opt_int(const Napi::Object & o, const char * key, int64_t def, int64_t min, int64_t max) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return def;
    if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be a number");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || std::floor(d) != d) {
        throw Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be an integer");
    }
    if (d < (double) min || d > (double) max) {
        throw Napi::RangeError::New(o.Env(), std::string("option ") + key + " = " + std::to_string((int64_t) d) +
                                                 " is out of range [" + std::to_string(min) + ", " +
                                                 std::to_string(max) + "]");
    }
    return (int64_t) d;
}

double opt_number(const Napi::Object & o, const char * key, double def) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return def;
    if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be a number");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d)) throw Napi::RangeError::New(o.Env(), std::string("option ") + key + " must be finite");
    return d;
}

bool opt_bool(const Napi::Object & o, const char * key, bool def) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return def;
    if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be a boolean");
    return v.As<Napi::Boolean>().Value();
}

std::string opt_string(const Napi::Object & o, const char * key, const std::string & def) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return def;
    if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be a string");
    return v.As<Napi::String>().Utf8Value();
}

static void check_id(Napi::Env env, double d, size_t i, int32_t n_vocab, const std::string & what) {
    if (!std::isfinite(d) || std::floor(d) != d) {
        throw Napi::TypeError::New(env, what + "[" + std::to_string(i) + "] is not an integer token id");
    }
    if (d < 0 || d >= (double) n_vocab) {
        throw Napi::RangeError::New(env, what + "[" + std::to_string(i) + "] = " + std::to_string((int64_t) d) +
                                             " is not a token id (vocabulary has " + std::to_string(n_vocab) +
                                             " tokens)");
    }
}

std::vector<int32_t> token_ids(const Napi::Value & v, int32_t n_vocab, const std::string & what) {
    Napi::Env env = v.Env();
    std::vector<int32_t> out;
    if (v.IsTypedArray()) {
        Napi::TypedArray ta = v.As<Napi::TypedArray>();
        const size_t n = ta.ElementLength();
        out.reserve(n);
        if (ta.TypedArrayType() == napi_int32_array) {
            Napi::Int32Array a = v.As<Napi::Int32Array>();
            for (size_t i = 0; i < n; i++) {
                check_id(env, a[i], i, n_vocab, what);
                out.push_back(a[i]);
            }
        } else if (ta.TypedArrayType() == napi_uint32_array) {
            Napi::Uint32Array a = v.As<Napi::Uint32Array>();
            for (size_t i = 0; i < n; i++) {
                check_id(env, a[i], i, n_vocab, what);
                out.push_back((int32_t) a[i]);
            }
        } else {
            throw Napi::TypeError::New(env, what + " must be a number[], Int32Array or Uint32Array");
        }
        return out;
    }
    if (!v.IsArray()) throw Napi::TypeError::New(env, what + " must be an array of token ids");
    Napi::Array arr = v.As<Napi::Array>();
    const uint32_t n = arr.Length();
    out.reserve(n);
    for (uint32_t i = 0; i < n; i++) {
        Napi::Value e = arr.Get(i);
        if (!e.IsNumber()) throw Napi::TypeError::New(env, what + "[" + std::to_string(i) + "] is not a number");
        const double d = e.As<Napi::Number>().DoubleValue();
        check_id(env, d, i, n_vocab, what);
        out.push_back((int32_t) d);
    }
    return out;
}

}  // namespace selftune
