// exp for float, scalar and SIMD with identical results: range reduction
// x = n ln2 + r (n rounded to nearest by the 1.5 * 2^23 trick, ln2 split in two for
// accuracy), a degree-6 polynomial for e^r, and 2^n built in the exponent bits. Max relative
// error ~2e-7 (2 float ulps) over [-86, 88]; inputs at or below -87 give 0 (no denormals),
// above 88 saturate. The vocabulary softmax does ~150k exps per scored token; glibc's scalar
// expf was a third of a training step on the tiny model.
#pragma once

#include <cstdint>
#include <cstring>

namespace selftune::train::ops {

namespace fast_exp_detail {
constexpr float kLo = -87.0f, kHi = 88.0f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kMagic = 12582912.0f;       // 1.5 * 2^23: adding it rounds to an integer
constexpr float kLn2Hi = 0.693359375f;      // exact in float
constexpr float kLn2Lo = -2.12194440e-4f;
constexpr float kP[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                         4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
}  // namespace fast_exp_detail

inline float fast_expf(float x) {
    using namespace fast_exp_detail;
    const bool under = x <= kLo;
    x = x < kLo ? kLo : (x > kHi ? kHi : x);
    const float t = x * kLog2e + kMagic;
    const float n = t - kMagic;
    float r = x - n * kLn2Hi;
    r = r - n * kLn2Lo;
    float p = kP[0];
    for (int k = 1; k < 6; k++) p = p * r + kP[k];
    p = p * r * r + r + 1.0f;
    int32_t ti;
    std::memcpy(&ti, &t, sizeof ti);
    const int32_t e = (ti - 0x4B400000 + 127) << 23;   // 0x4B400000 = bits of kMagic
    float scale;
    std::memcpy(&scale, &e, sizeof scale);
    return under ? 0.0f : p * scale;
}

// The same computation on a GCC/Clang float vector V (with VI its int32 vector).
template <typename V, typename VI>
inline V fast_expf_v(V x) {
    using namespace fast_exp_detail;
    const auto under = x <= kLo;
    x = x < kLo ? V{} + kLo : x;
    x = x > kHi ? V{} + kHi : x;
    const V t = x * kLog2e + kMagic;
    const V n = t - kMagic;
    V r = x - n * kLn2Hi;
    r = r - n * kLn2Lo;
    V p = V{} + kP[0];
    for (int k = 1; k < 6; k++) p = p * r + kP[k];
    p = p * r * r + r + 1.0f;
    VI ti;
    std::memcpy(&ti, &t, sizeof ti);
    const VI e = (ti - 0x4B400000 + 127) << 23;
    V scale;
    std::memcpy(&scale, &e, sizeof scale);
    const V y = p * scale;
    return under ? V{} : y;
}

}  // namespace selftune::train::ops
