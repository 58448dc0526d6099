// Device decoders for the ggml storage types the frozen base arrives in (F32, F16, BF16,
// Q8_0, Q4_K, Q6_K), shared by dequant.cu (weights to bf16) and embedding.cu (table rows to
// f32). The layouts are ggml's (ggml-common.h); the arithmetic follows ggml's reference
// dequantizers operation for operation, without fused multiply-adds, so a value decodes
// to the same float here as in llama.cpp's CPU code before any rounding to bf16.
//
// Unit of work: 8 consecutive values ("chunk" c = values 8c .. 8c+7 of a run of whole
// blocks starting at `base`): one 16-byte bf16 store or two float4 stores per thread.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "train/cuda/common.cuh"

#include <cstdint>

namespace selftune::train::cuda::ggml_blocks {

// ggml_type values (ggml.h); the checker static_asserts them against ggml's enum.
constexpr int kF32 = 0, kF16 = 1, kQ8_0 = 8, kQ4_K = 12, kQ6_K = 14, kBF16 = 30;

// Values per block and bytes per block.
__host__ __device__ constexpr int block_values(int type) {
    return type == kQ8_0 ? 32 : (type == kQ4_K || type == kQ6_K) ? 256 : 1;
}
__host__ __device__ constexpr int block_bytes(int type) {
    return type == kF32 ? 4 : (type == kF16 || type == kBF16) ? 2 : type == kQ8_0 ? 34 : type == kQ4_K ? 144 : 210;
}
inline bool is_quantized(int type) { return type == kQ8_0 || type == kQ4_K || type == kQ6_K; }
inline bool supported(int type) {
    return type == kF32 || type == kF16 || type == kBF16 || type == kQ8_0 || type == kQ4_K || type == kQ6_K;
}
inline int64_t row_bytes(int type, int64_t n_cols) { return n_cols / block_values(type) * block_bytes(type); }

__device__ __forceinline__ float half_at(const uint8_t * p) {
    return __half2float(__ushort_as_half(__ldg(reinterpret_cast<const unsigned short *>(p))));
}

// 8 bytes from an address that is only known to be 2-byte aligned (Q8_0's 34-byte and
// Q6_K's 210-byte blocks), as one 64-bit word.
__device__ __forceinline__ uint64_t bytes8_a2(const uint8_t * p) {
    const unsigned short * s = reinterpret_cast<const unsigned short *>(p);
    return (uint64_t) __ldg(s) | ((uint64_t) __ldg(s + 1) << 16) | ((uint64_t) __ldg(s + 2) << 32) |
           ((uint64_t) __ldg(s + 3) << 48);
}

template <int T>
__device__ __forceinline__ void decode8(const uint8_t * base, int64_t c, float (&f)[8]);

template <>
__device__ __forceinline__ void decode8<kF32>(const uint8_t * base, int64_t c, float (&f)[8]) {
    const float4 * p = reinterpret_cast<const float4 *>(base) + 2 * c;
    const float4 a = __ldg(p), b = __ldg(p + 1);
    f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}

template <>
__device__ __forceinline__ void decode8<kF16>(const uint8_t * base, int64_t c, float (&f)[8]) {
    const uint4 raw = __ldg(reinterpret_cast<const uint4 *>(base) + c);
    const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int k = 0; k < 4; k++) {
        f[2 * k] = __half2float(__ushort_as_half((unsigned short) (w[k] & 0xffffu)));
        f[2 * k + 1] = __half2float(__ushort_as_half((unsigned short) (w[k] >> 16)));
    }
}

template <>
__device__ __forceinline__ void decode8<kBF16>(const uint8_t * base, int64_t c, float (&f)[8]) {
    bf16x8_to_float(__ldg(reinterpret_cast<const uint4 *>(base) + c), f);
}

// Q8_0: {f16 d; int8 q[32]}, value = q * d.
template <>
__device__ __forceinline__ void decode8<kQ8_0>(const uint8_t * base, int64_t c, float (&f)[8]) {
    const uint8_t * blk = base + (c >> 2) * 34;
    const float d = half_at(blk);
    const uint64_t q = bytes8_a2(blk + 2 + 8 * (c & 3));
#pragma unroll
    for (int k = 0; k < 8; k++) f[k] = __fmul_rn((float) (int8_t) (q >> (8 * k)), d);
}

// Q4_K: {f16 d, dmin; u8 scales[12]; u8 qs[128]}. Eight sub-blocks of 32 with 6-bit
// scale and min; group g of 64 values takes the low nibbles of qs[32g..32g+32) (sub-block
// 2g), then the high nibbles (sub-block 2g+1). value = d*sc * q - dmin*m.
template <>
__device__ __forceinline__ void decode8<kQ4_K>(const uint8_t * base, int64_t c, float (&f)[8]) {
    const uint8_t * blk = base + (c >> 5) * 144;
    const int t = (int) (c & 31);
    const int g = t >> 3, hi = (t >> 2) & 1, l0 = (t & 3) * 8;
    const int is = 2 * g + hi;
    const uint8_t * s = blk + 4;
    int sc, m;
    if (is < 4) {
        sc = __ldg(s + is) & 63;
        m = __ldg(s + is + 4) & 63;
    } else {
        const int a = __ldg(s + is + 4);
        sc = (a & 0xF) | ((__ldg(s + is - 4) >> 6) << 4);
        m = (a >> 4) | ((__ldg(s + is) >> 6) << 4);
    }
    const float d1 = __fmul_rn(half_at(blk), (float) sc);
    const float m1 = __fmul_rn(half_at(blk + 2), (float) m);
    // 16 + 32g + l0 is a multiple of 8 and blocks are 144 bytes: an aligned 8-byte load.
    const uint2 w = __ldg(reinterpret_cast<const uint2 *>(blk + 16 + 32 * g + l0));
    const uint64_t q = ((uint64_t) w.y << 32) | w.x;
#pragma unroll
    for (int k = 0; k < 8; k++) f[k] = __fsub_rn(__fmul_rn(d1, (float) ((q >> (8 * k + 4 * hi)) & 0xF)), m1);
}

// Q6_K: {u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d}. Each half of 128 values uses
// ql[64], qh[32], scales[8]; quarter qq of a half takes ql[32*(qq&1) + l] (low nibble for
// qq < 2, high for qq >= 2) and bits 2qq..2qq+1 of qh[l]; scale index l/16 + 2qq.
// value = d * scale * (q - 32).
template <>
__device__ __forceinline__ void decode8<kQ6_K>(const uint8_t * base, int64_t c, float (&f)[8]) {
    const uint8_t * blk = base + (c >> 5) * 210;
    const int t = (int) (c & 31);
    const int n = t >> 4, qq = (t >> 2) & 3, l0 = (t & 3) * 8;
    const uint64_t ql = bytes8_a2(blk + 64 * n + 32 * (qq & 1) + l0);
    const uint64_t qh = bytes8_a2(blk + 128 + 32 * n + l0);
    const int sc = (int8_t) __ldg(blk + 192 + 8 * n + (l0 >> 4) + 2 * qq);
    const float dsc = __fmul_rn(half_at(blk + 208), (float) sc);
    const int lo_shift = 4 * (qq >> 1), hi_shift = 2 * qq;
#pragma unroll
    for (int k = 0; k < 8; k++) {
        const int q = (int) (((ql >> (8 * k + lo_shift)) & 0xF) | (((qh >> (8 * k + hi_shift)) & 3) << 4)) - 32;
        f[k] = __fmul_rn(dsc, (float) q);
    }
}

// One value of an unquantized type at any alignment (the tails and unaligned fallbacks).
__device__ __forceinline__ float decode1_float_type(const void * base, int type, int64_t i) {
    if (type == kF32) return __ldg(static_cast<const float *>(base) + i);
    const unsigned short b = __ldg(static_cast<const unsigned short *>(base) + i);
    if (type == kF16) return __half2float(__ushort_as_half(b));
    return __bfloat162float(__ushort_as_bfloat16(b));
}

}  // namespace selftune::train::cuda::ggml_blocks
