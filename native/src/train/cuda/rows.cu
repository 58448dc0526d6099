#include "train/cuda/rows.cuh"

#include "train/cuda/status.h"

namespace selftune::train::cuda {

namespace {

// One block per row; D is the model width (64 .. 8192), a few passes of 256 threads.
__global__ void copy_rows_kernel(float * dst, const float * src, const int32_t * rows, int64_t D, bool scatter) {
    const int64_t j = blockIdx.x;
    const int64_t r = rows[j];
    float * d = dst + (scatter ? r : j) * D;
    const float * s = src + (scatter ? j : r) * D;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) d[i] = s[i];
}

void copy_rows(float * dst, const float * src, const int32_t * rows, int64_t M, int64_t D, bool scatter,
               cudaStream_t stream) {
    if (M == 0 || D == 0) return;
    copy_rows_kernel<<<(unsigned) M, 256, 0, stream>>>(dst, src, rows, D, scatter);
    check_cuda(cudaGetLastError(), scatter ? "scatter_rows" : "gather_rows");
}

}  // namespace

void gather_rows(float * dst, const float * src, const int32_t * rows, int64_t M, int64_t D, cudaStream_t stream) {
    copy_rows(dst, src, rows, M, D, false, stream);
}

void scatter_rows(float * dst, const float * src, const int32_t * rows, int64_t M, int64_t D, cudaStream_t stream) {
    copy_rows(dst, src, rows, M, D, true, stream);
}

}  // namespace selftune::train::cuda
