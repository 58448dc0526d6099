// The frozen base weights, in the ggml type the GGUF stores them in, to the bf16 the
// matrix multiplies read: one pass, 8 values per thread (one 16-byte store).
#include "train/cuda/common.cuh"
#include "train/cuda/ggml_blocks.cuh"
#include "train/cuda/kernels.cuh"

#include <stdexcept>
#include <string>

namespace selftune::train::cuda {

namespace gb = ggml_blocks;

namespace {

// Rows of whole blocks are contiguous, so the matrix is one run of blocks: chunk c of the
// whole tensor is chunk c of the run, whatever the row length. The last (n % 8) values,
// possible only for unquantized types, go to thread 0.
template <int T>
__global__ void dequant_kernel(bf16 * __restrict__ dst, const uint8_t * __restrict__ src, int64_t n) {
    const int64_t chunks = n / 8;
    for (int64_t c = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; c < chunks; c += (int64_t) gridDim.x * blockDim.x) {
        float f[8];
        gb::decode8<T>(src, c, f);
        store_bf16x8(dst + 8 * c, f);
    }
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        for (int64_t i = chunks * 8; i < n; i++) dst[i] = __float2bfloat16_rn(gb::decode1_float_type(src, T, i));
    }
}

// Unaligned unquantized tensors (a sliced view, say): value by value.
__global__ void dequant_scalar_kernel(bf16 * __restrict__ dst, const void * __restrict__ src, int type, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n; i += (int64_t) gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn(gb::decode1_float_type(src, type, i));
}

}  // namespace

bool dequant_supported(int ggml_type) { return gb::supported(ggml_type); }

void dequantize_bf16(bf16 * dst, const void * src, int ggml_type, int64_t n_rows, int64_t n_cols, cudaStream_t stream) {
    if (!gb::supported(ggml_type)) throw std::invalid_argument("dequantize_bf16: unsupported ggml type " + std::to_string(ggml_type));
    if (n_cols % gb::block_values(ggml_type) != 0)
        throw std::invalid_argument("dequantize_bf16: row length " + std::to_string(n_cols) + " is not whole blocks");
    const int64_t n = n_rows * n_cols;
    if (n <= 0) return;
    const bool aligned = aligned16(dst) && aligned16(src);
    if (gb::is_quantized(ggml_type) && !aligned)
        throw std::invalid_argument("dequantize_bf16: quantized source and destination must be 16-byte aligned");
    constexpr int kThreads = 256;
    if (!aligned) {
        dequant_scalar_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(dst, src, ggml_type, n);
        CUDA_CHECK_LAUNCH();
        return;
    }
    const uint8_t * s = static_cast<const uint8_t *>(src);
    const unsigned grid = grid_for(n / 8 > 0 ? n / 8 : 1, kThreads);
    switch (ggml_type) {
        case gb::kF32: dequant_kernel<gb::kF32><<<grid, kThreads, 0, stream>>>(dst, s, n); break;
        case gb::kF16: dequant_kernel<gb::kF16><<<grid, kThreads, 0, stream>>>(dst, s, n); break;
        case gb::kBF16: dequant_kernel<gb::kBF16><<<grid, kThreads, 0, stream>>>(dst, s, n); break;
        case gb::kQ8_0: dequant_kernel<gb::kQ8_0><<<grid, kThreads, 0, stream>>>(dst, s, n); break;
        case gb::kQ4_K: dequant_kernel<gb::kQ4_K><<<grid, kThreads, 0, stream>>>(dst, s, n); break;
        case gb::kQ6_K: dequant_kernel<gb::kQ6_K><<<grid, kThreads, 0, stream>>>(dst, s, n); break;
    }
    CUDA_CHECK_LAUNCH();
}

}  // namespace selftune::train::cuda
