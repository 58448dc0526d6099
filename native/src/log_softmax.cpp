#include "log_softmax.h"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace selftune {

namespace {

constexpr int kLanes = 16;

// exp(x) for x <= 0: x = k*ln2 + r with |r| <= ln2/2, exp(r) by a degree-7 Taylor
// polynomial (relative error < 2e-8 on that range), 2^k put straight into the exponent
// bits. Below -87 the result underflows to 0, which is what the sum needs.
inline float exp_nonpos(float x) {
    x = x < -87.0f ? -87.0f : x;
    // Round to nearest by the 1.5*2^23 trick: vectorises where nearbyint may not.
    const float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    const float r = x - k * 0.693145751953125f - k * 1.42860682030941723212e-6f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const int32_t bits = ((int32_t) k + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
}

}  // namespace

double log_sum_exp(const float * x, size_t n) {
    if (n == 0) return -INFINITY;

    // Independent lanes rather than one accumulator: float reductions are not
    // associative, so the compiler vectorises only what we spell out as parallel.
    float mx[kLanes];
    for (int j = 0; j < kLanes; j++) mx[j] = -INFINITY;
    size_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        for (int j = 0; j < kLanes; j++) mx[j] = x[i + j] > mx[j] ? x[i + j] : mx[j];
    }
    float m = -INFINITY;
    for (int j = 0; j < kLanes; j++) m = mx[j] > m ? mx[j] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    if (!std::isfinite(m)) return m;   // all -inf, or a NaN/inf logit: propagate

    double total = 0.0;
    float acc[kLanes];
    i = 0;
    // Blocks bound the float accumulation error; each block's lanes go into a double.
    const size_t block = 4096;
    while (n - i >= kLanes) {
        size_t len = (n - i) / kLanes * kLanes;
        if (len > block) len = block;
        const size_t end = i + len;
        for (int j = 0; j < kLanes; j++) acc[j] = 0.0f;
        for (; i < end; i += kLanes) {
            for (int j = 0; j < kLanes; j++) acc[j] += exp_nonpos(x[i + j] - m);
        }
        for (int j = 0; j < kLanes; j++) total += acc[j];
    }
    for (; i < n; i++) total += exp_nonpos(x[i] - m);
    return (double) m + std::log(total);
}

}  // namespace selftune
