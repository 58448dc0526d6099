// Token embedding lookup straight from the GGUF's table (any supported ggml type) into the
// f32 residual stream: the table is never expanded in memory, only the N rows read.
#include "train/cuda/common.cuh"
#include "train/cuda/ggml_blocks.cuh"
#include "train/cuda/kernels.cuh"

#include <stdexcept>
#include <string>

namespace selftune::train::cuda {

namespace gb = ggml_blocks;

namespace {

// One thread per 8 values of an output row; a row of whole blocks starts at tok * row_bytes.
template <int T>
__global__ void embedding_kernel(float * __restrict__ x, const int32_t * __restrict__ tokens,
                                 const uint8_t * __restrict__ table, int64_t N, int64_t D, int64_t row_bytes) {
    const int64_t per_row = D / 8;
    const int64_t total = N * per_row;
    for (int64_t idx = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t) gridDim.x * blockDim.x) {
        const int64_t n = idx / per_row, c = idx - n * per_row;
        const int64_t tok = __ldg(tokens + n);
        float f[8];
        gb::decode8<T>(table + tok * row_bytes, c, f);
        store_f32x8(x + n * D + 8 * c, f);
    }
}

__global__ void embedding_scalar_kernel(float * __restrict__ x, const int32_t * __restrict__ tokens,
                                        const void * __restrict__ table, int type, int64_t N, int64_t D) {
    for (int64_t idx = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; idx < N * D;
         idx += (int64_t) gridDim.x * blockDim.x) {
        const int64_t n = idx / D, d = idx - n * D;
        x[idx] = gb::decode1_float_type(table, type, (int64_t) __ldg(tokens + n) * D + d);
    }
}

}  // namespace

void embedding_forward(float * x, const int32_t * tokens, const void * table, int ggml_type, int64_t N, int64_t D,
                       cudaStream_t stream) {
    if (!gb::supported(ggml_type)) throw std::invalid_argument("embedding_forward: unsupported ggml type " + std::to_string(ggml_type));
    if (D % gb::block_values(ggml_type) != 0)
        throw std::invalid_argument("embedding_forward: row length " + std::to_string(D) + " is not whole blocks");
    if (N <= 0 || D <= 0) return;
    constexpr int kThreads = 256;
    const bool vec = D % 8 == 0 && aligned16(x) && aligned16(table);
    if (!vec) {
        if (gb::is_quantized(ggml_type))
            throw std::invalid_argument("embedding_forward: quantized table and output must be 16-byte aligned");
        embedding_scalar_kernel<<<grid_for(N * D, kThreads), kThreads, 0, stream>>>(x, tokens, table, ggml_type, N, D);
        CUDA_CHECK_LAUNCH();
        return;
    }
    const uint8_t * t = static_cast<const uint8_t *>(table);
    const int64_t rb = gb::row_bytes(ggml_type, D);
    const unsigned grid = grid_for(N * (D / 8), kThreads);
    switch (ggml_type) {
        case gb::kF32: embedding_kernel<gb::kF32><<<grid, kThreads, 0, stream>>>(x, tokens, t, N, D, rb); break;
        case gb::kF16: embedding_kernel<gb::kF16><<<grid, kThreads, 0, stream>>>(x, tokens, t, N, D, rb); break;
        case gb::kBF16: embedding_kernel<gb::kBF16><<<grid, kThreads, 0, stream>>>(x, tokens, t, N, D, rb); break;
        case gb::kQ8_0: embedding_kernel<gb::kQ8_0><<<grid, kThreads, 0, stream>>>(x, tokens, t, N, D, rb); break;
        case gb::kQ4_K: embedding_kernel<gb::kQ4_K><<<grid, kThreads, 0, stream>>>(x, tokens, t, N, D, rb); break;
        case gb::kQ6_K: embedding_kernel<gb::kQ6_K><<<grid, kThreads, 0, stream>>>(x, tokens, t, N, D, rb); break;
    }
    CUDA_CHECK_LAUNCH();
}

}  // namespace selftune::train::cuda
