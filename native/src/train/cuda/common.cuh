// Helpers shared by the CUDA training backend's kernels and its host code: error checks
// that turn a CUDA failure into an exception naming the call site, grid sizing, and the
// 16-byte (8 x bf16 / 2 x float4) packing every memory-bound kernel here moves data in.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace selftune::train::cuda {

[[noreturn]] inline void cuda_fail(cudaError_t err, const char * what, const char * file, int line) {
    throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + what + ": " +
                             cudaGetErrorString(err));
}

}  // namespace selftune::train::cuda

#define CUDA_CHECK(call)                                                                        \
    do {                                                                                        \
        const cudaError_t cuda_check_err_ = (call);                                             \
        if (cuda_check_err_ != cudaSuccess)                                                     \
            ::selftune::train::cuda::cuda_fail(cuda_check_err_, #call, __FILE__, __LINE__);     \
    } while (0)

// After a <<<>>> launch: catches bad configurations at the launch site (cheap, no sync).
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

namespace selftune::train::cuda {

__host__ __device__ inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline bool aligned16(const void * p) { return ((uintptr_t) p & 15) == 0; }

// Blocks for a grid-stride loop over `work` items: enough to fill the card, never beyond
// what a 1-D grid may hold.
inline unsigned grid_for(int64_t work, int threads) {
    const int64_t b = ceil_div(work, threads);
    return (unsigned) (b < 1 ? 1 : (b > (1 << 20) ? (1 << 20) : b));
}


template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum over the block, returned to every thread. Fixed shuffle tree, then the warps' sums
// in warp order: the same inputs always give the same bits. blockDim.x a multiple of 32,
// at most 1024; `smem` holds 32 T.
template <typename T>
__device__ __forceinline__ T block_sum(T v, T * smem) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();   // smem may still be read from a previous call
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    T s = smem[0];
    for (int k = 1; k < n_warps; k++) s += smem[k];
    return s;
}

// bf16 is the top half of an f32: widening is a shift, no conversion instruction. Bit
// operations on the words rather than reinterpret_cast to bf16 pairs keep clear of
// strict-aliasing questions.
__device__ __forceinline__ void bf16x8_to_float(const uint4 & raw, float (&f)[8]) {
    const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int k = 0; k < 4; k++) {
        f[2 * k] = __uint_as_float(w[k] << 16);
        f[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
    }
}

__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
    return (uint32_t) __bfloat16_as_ushort(__float2bfloat16_rn(lo)) |
           ((uint32_t) __bfloat16_as_ushort(__float2bfloat16_rn(hi)) << 16);
}

__device__ __forceinline__ uint4 float_to_bf16x8(const float (&f)[8]) {
    return make_uint4(pack_bf16x2(f[0], f[1]), pack_bf16x2(f[2], f[3]), pack_bf16x2(f[4], f[5]),
                      pack_bf16x2(f[6], f[7]));
}

__device__ __forceinline__ void load_bf16x8(const __nv_bfloat16 * p, float (&f)[8]) {
    bf16x8_to_float(*reinterpret_cast<const uint4 *>(p), f);
}

__device__ __forceinline__ void store_bf16x8(__nv_bfloat16 * p, const float (&f)[8]) {
    *reinterpret_cast<uint4 *>(p) = float_to_bf16x8(f);
}

__device__ __forceinline__ void load_f32x8(const float * p, float (&f)[8]) {
    const float4 a = reinterpret_cast<const float4 *>(p)[0];
    const float4 b = reinterpret_cast<const float4 *>(p)[1];
    f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w;
    f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}

__device__ __forceinline__ void store_f32x8(float * p, const float (&f)[8]) {
    reinterpret_cast<float4 *>(p)[0] = make_float4(f[0], f[1], f[2], f[3]);
    reinterpret_cast<float4 *>(p)[1] = make_float4(f[4], f[5], f[6], f[7]);
}

}  // namespace selftune::train::cuda
