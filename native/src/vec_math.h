// 8-lane float math for the host-side row loops (log-softmax, sampling), written with
// GCC/Clang vector extensions: lowered to AVX where the build allows it and to pairs of
// SSE ops (or scalars) elsewhere. Spelled out because the compiler won't vectorise a float
// reduction on its own (it isn't associative), nor a loop that calls expf.
#pragma once

#include <cstdint>
#include <cstring>

namespace selftune::vec {

typedef float   v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
constexpr int kLanes = 8;

inline v8f splat(float v) { return v8f{} + v; }

inline v8f load(const float * p) {
    v8f v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

inline void store(float * p, v8f v) { std::memcpy(p, &v, sizeof(v)); }

inline v8f select(v8i mask, v8f a, v8f b) {   // mask ? a : b
    return (v8f) (((v8i) a & mask) | ((v8i) b & ~mask));
}

// exp(x) for x <= 0: x = k*ln2 + r with |r| <= ln2/2, exp(r) by its degree-7 Taylor
// polynomial (relative error < 1e-8 on that range), 2^k put straight into the exponent
// bits. Below -87 it clamps to ~1e-38 instead of underflowing, harmless in a sum.
inline v8f exp_nonpos(v8f x) {
    x = select(x < splat(-87.0f), splat(-87.0f), x);
    // Round to nearest by the 1.5*2^23 trick.
    const v8f k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    const v8f r = x - k * 0.693145751953125f - k * 1.42860682030941723212e-6f;
    v8f p = splat(1.0f / 5040.0f);
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const v8i bits = (__builtin_convertvector(k, v8i) + 127) << 23;
    return p * (v8f) bits;
}

inline float exp_nonpos(float x) { return exp_nonpos(splat(x))[0]; }

// Whether any lane of a comparison's mask is set.
inline bool any(v8i m) {
    int32_t r = 0;
    for (int j = 0; j < kLanes; j++) r |= m[j];
    return r != 0;
}

// Appends the x[i] with lo <= x[i] < hi, in order. A scalar loop's comparison branches on
// random data (5 ns a float); here 8 floats at a time, a branch only where one falls in.
template <typename Vec>
void collect_range(const float * x, size_t n, float lo, float hi, Vec & out) {
    const v8f vlo = splat(lo), vhi = splat(hi);
    size_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        const v8f v = load(x + i);
        const v8i in = (v >= vlo) & (v < vhi);
        if (!any(in)) continue;
        for (int j = 0; j < kLanes; j++) {
            if (in[j]) out.push_back(x[i + j]);
        }
    }
    for (; i < n; i++) {
        if (x[i] >= lo && x[i] < hi) out.push_back(x[i]);
    }
}

// The largest of x[0..n); -inf for n == 0. NaNs are skipped.
inline float max_of(const float * x, size_t n) {
    size_t i = 0;
    v8f vmax = splat(-__builtin_inff());
    for (; i + kLanes <= n; i += kLanes) {
        const v8f v = load(x + i);
        vmax = select(v > vmax, v, vmax);
    }
    float m = -__builtin_inff();
    for (int j = 0; j < kLanes; j++) m = vmax[j] > m ? vmax[j] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

}  // namespace selftune::vec
