// exp for float arrays, written so the compiler vectorizes it: range reduction
// x = n ln2 + r (|r| <= ln2/2, ln2 split in two for accuracy), a degree-6 polynomial for
// e^r, and 2^n built in the exponent bits. Max relative error ~2e-7 (2 float ulps) over
// [-87, 88]; inputs below -87 give 0 (no denormals), above 88 saturate.
// Used where the vocabulary softmax does ~150k exps per scored token; glibc's scalar expf
// was a third of a training step on the tiny model.
#pragma once

#include <cstdint>
#include <cstring>

namespace selftune::train::ops {

inline float fast_expf(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    const float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f;        // ln2 high part (exact in float)
    r = r - n * -2.12194440e-4f;           // ln2 low part
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int32_t e = ((int32_t) n + 127) << 23;
    float scale;
    std::memcpy(&scale, &e, sizeof scale);
    const float y = p * scale;
    return x <= -87.0f ? 0.0f : y;
}

}  // namespace selftune::train::ops
