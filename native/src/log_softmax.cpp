#include "log_softmax.h"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace selftune {

namespace {

// GCC/Clang vector extensions: 8 floats, lowered to AVX where the build allows it and
// to pairs of SSE ops (or scalars) elsewhere. Spelled out because the compiler won't
// vectorise a float reduction on its own (it isn't associative).
typedef float   v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
constexpr int kLanes = 8;

inline v8f splat(float v) { return v8f{} + v; }

inline v8f load(const float * p) {
    v8f v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

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

inline float exp_nonpos_scalar(float x) {
    v8f v = splat(x);
    return exp_nonpos(v)[0];
}

}  // namespace

double log_sum_exp(const float * x, size_t n) {
    if (n == 0) return -INFINITY;

    size_t i = 0;
    v8f vmax = splat(-INFINITY);
    for (; i + kLanes <= n; i += kLanes) {
        const v8f v = load(x + i);
        vmax = select(v > vmax, v, vmax);
    }
    float m = -INFINITY;
    for (int j = 0; j < kLanes; j++) m = vmax[j] > m ? vmax[j] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    if (!std::isfinite(m)) return m;   // all -inf, or an inf logit: propagate

    // Blocks bound the float accumulation error; each block's lanes go into a double.
    const size_t block = 4096;
    const v8f vm = splat(m);
    double total = 0.0;
    i = 0;
    while (n - i >= (size_t) kLanes) {
        size_t len = (n - i) / kLanes * kLanes;
        if (len > block) len = block;
        const size_t end = i + len;
        // Four independent chains: each exp is a long dependent polynomial, and one
        // accumulator would leave the FMA units waiting on it.
        v8f acc0 = splat(0.0f), acc1 = acc0, acc2 = acc0, acc3 = acc0;
        for (; i + 4 * kLanes <= end; i += 4 * kLanes) {
            acc0 += exp_nonpos(load(x + i) - vm);
            acc1 += exp_nonpos(load(x + i + kLanes) - vm);
            acc2 += exp_nonpos(load(x + i + 2 * kLanes) - vm);
            acc3 += exp_nonpos(load(x + i + 3 * kLanes) - vm);
        }
        for (; i < end; i += kLanes) acc0 += exp_nonpos(load(x + i) - vm);
        const v8f acc = (acc0 + acc1) + (acc2 + acc3);
        for (int j = 0; j < kLanes; j++) total += acc[j];
    }
    for (; i < n; i++) total += exp_nonpos_scalar(x[i] - m);
    return (double) m + std::log(total);
}

}  // namespace selftune
