#include "gguf_keys.h"

#include "gguf.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace selftune {

void GgufKeys::fail(const std::string & why) const {
    throw std::runtime_error(path + ": " + why);
}

bool GgufKeys::has(const std::string & key) const {
    return gguf_find_key(g, key.c_str()) >= 0;
}

std::string GgufKeys::type_of(const std::string & key) const {
    const int64_t id = gguf_find_key(g, key.c_str());
    if (id < 0) return "";
    const gguf_type t = gguf_get_kv_type(g, id);
    if (t == GGUF_TYPE_ARRAY) return std::string("array of ") + gguf_type_name(gguf_get_arr_type(g, id));
    return gguf_type_name(t);
}

static int64_t find_typed(const GgufKeys & k, const std::string & key, gguf_type want, const char * want_name,
                          bool required) {
    const int64_t id = gguf_find_key(k.g, key.c_str());
    if (id < 0) {
        if (required) k.fail("missing metadata key " + key);
        return -1;
    }
    if (gguf_get_kv_type(k.g, id) != want) k.fail(key + " must be " + want_name + ", is " + k.type_of(key));
    return id;
}

std::optional<uint32_t> GgufKeys::u32(const std::string & key, bool required) const {
    const int64_t id = find_typed(*this, key, GGUF_TYPE_UINT32, "a u32", required);
    if (id < 0) return std::nullopt;
    return gguf_get_val_u32(g, id);
}

std::optional<float> GgufKeys::f32(const std::string & key, bool required) const {
    const int64_t id = find_typed(*this, key, GGUF_TYPE_FLOAT32, "an f32", required);
    if (id < 0) return std::nullopt;
    return gguf_get_val_f32(g, id);
}

std::optional<bool> GgufKeys::boolean(const std::string & key) const {
    const int64_t id = find_typed(*this, key, GGUF_TYPE_BOOL, "a bool", false);
    if (id < 0) return std::nullopt;
    return gguf_get_val_bool(g, id);
}

std::optional<std::string> GgufKeys::str(const std::string & key, bool required) const {
    const int64_t id = find_typed(*this, key, GGUF_TYPE_STRING, "a string", required);
    if (id < 0) return std::nullopt;
    return std::string(gguf_get_val_str(g, id));
}

std::vector<uint32_t> GgufKeys::u32_per_layer(const std::string & key, uint32_t n_layer, bool required,
                                              uint32_t fallback) const {
    std::vector<uint32_t> out(n_layer, fallback);
    const int64_t id = gguf_find_key(g, key.c_str());
    if (id < 0) {
        if (required) fail("missing metadata key " + key);
        return out;
    }
    if (gguf_get_kv_type(g, id) != GGUF_TYPE_ARRAY) {
        const uint32_t v = *u32(key);
        for (auto & x : out) x = v;
        return out;
    }
    const gguf_type item = gguf_get_arr_type(g, id);
    if (item != GGUF_TYPE_UINT32 && item != GGUF_TYPE_INT32) fail(key + " must be a u32 or an array of u32, is " + type_of(key));
    const size_t n = gguf_get_arr_n(g, id);
    if (n != n_layer) {
        fail(key + " has " + std::to_string(n) + " values but there are " + std::to_string(n_layer) +
             " layers (block_count)");
    }
    const auto * data = static_cast<const uint32_t *>(gguf_get_arr_data(g, id));
    for (size_t i = 0; i < n; i++) {
        if (item == GGUF_TYPE_INT32 && (int32_t) data[i] < 0) {
            fail(key + "[" + std::to_string(i) + "] is " + std::to_string((int32_t) data[i]) + ", negative");
        }
        out[i] = data[i];
    }
    return out;
}

std::optional<float> GgufKeys::f32_in(const std::string & key, double lo, double hi, const char * why,
                                      bool required) const {
    const std::optional<float> v = f32(key, required);
    if (!v) return v;
    if (!std::isfinite(*v)) fail(key + " is " + float_text(*v) + "; it must be a finite number (" + why + ")");
    if (*v < lo || *v > hi) {
        fail(key + " is " + float_text(*v) + ", outside " + float_text(lo) + " .. " + float_text(hi) + " (" + why + ")");
    }
    return v;
}

std::optional<uint32_t> GgufKeys::u32_in(const std::string & key, uint64_t lo, uint64_t hi, const char * why,
                                         bool required) const {
    const std::optional<uint32_t> v = u32(key, required);
    if (!v) return v;
    if (*v < lo || *v > hi) {
        fail(key + " is " + std::to_string(*v) + ", outside " + std::to_string(lo) + " .. " + std::to_string(hi) +
             " (" + why + ")");
    }
    return v;
}

std::string float_text(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[64];
    for (int digits = 1; digits <= 17; digits++) {
        std::snprintf(buf, sizeof(buf), "%.*g", digits, v);
        if (std::strtod(buf, nullptr) == v || (float) std::strtod(buf, nullptr) == (float) v) return buf;
    }
    return buf;
}

std::string shape_text(const int64_t * ne) {
    int n = 4;
    while (n > 1 && ne[n - 1] == 1) n--;
    std::string s = "[";
    for (int i = 0; i < n; i++) s += (i ? ", " : "") + std::to_string(ne[i]);
    return s + "]";
}

}  // namespace selftune
