// RMSNorm forward (f32 residual -> bf16 matmul input, saving 1/rms per row) and its
// backward into the residual gradient. One block per row; the row stays in registers
// between the reduction and the output, so x (and dy) are read from memory once.
// Rounding follows train/cpu/ops/rmsnorm.h: the mean square in double, 1/sqrtf in float,
// then (x * r) * w.
#include "train/cuda/common.cuh"
#include "train/cuda/kernels.cuh"

#include <stdexcept>

namespace selftune::train::cuda {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float4 ld4(const float * p) { return __ldg(reinterpret_cast<const float4 *>(p)); }

__device__ __forceinline__ float dot4(float4 a, float4 b) { return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w; }

// V float4 of the row per thread (D/4 <= V * kThreads).
template <int V>
__global__ void __launch_bounds__(kThreads) rmsnorm_forward_kernel(bf16 * __restrict__ y, float * __restrict__ rstd,
                                                                   const float * __restrict__ x,
                                                                   const float * __restrict__ w, int64_t D, float eps) {
    __shared__ double red[32];
    const int64_t row = blockIdx.x;
    const float * xr = x + row * D;
    const int d4 = (int) (D / 4);
    float4 xv[V];
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < V; k++) {
        const int i = threadIdx.x + k * kThreads;
        xv[k] = i < d4 ? ld4(xr + 4 * i) : make_float4(0.f, 0.f, 0.f, 0.f);
        ss += dot4(xv[k], xv[k]);
    }
    const double total = block_sum((double) ss, red);
    const float mean = (float) (total / (double) D);
    const float r = 1.0f / sqrtf(mean + eps);
    if (threadIdx.x == 0) rstd[row] = r;
    bf16 * yr = y + row * D;
#pragma unroll
    for (int k = 0; k < V; k++) {
        const int i = threadIdx.x + k * kThreads;
        if (i < d4) {
            const float4 wv = ld4(w + 4 * i);
            *reinterpret_cast<uint2 *>(yr + 4 * i) =
                make_uint2(pack_bf16x2(__fmul_rn(xv[k].x, r) * wv.x, __fmul_rn(xv[k].y, r) * wv.y),
                           pack_bf16x2(__fmul_rn(xv[k].z, r) * wv.z, __fmul_rn(xv[k].w, r) * wv.w));
        }
    }
}

template <int V>
__global__ void __launch_bounds__(kThreads) rmsnorm_backward_kernel(float * __restrict__ dx, const float * __restrict__ dy,
                                                                    const float * __restrict__ x,
                                                                    const float * __restrict__ rstd,
                                                                    const float * __restrict__ w, int64_t D) {
    __shared__ double red[32];
    const int64_t row = blockIdx.x;
    const int d4 = (int) (D / 4);
    const float * xr = x + row * D;
    const float * gr = dy + row * D;
    float4 xv[V], wg[V];
    float dot = 0.0f;
#pragma unroll
    for (int k = 0; k < V; k++) {
        const int i = threadIdx.x + k * kThreads;
        if (i < d4) {
            const float4 g = ld4(gr + 4 * i), wv = ld4(w + 4 * i);
            xv[k] = ld4(xr + 4 * i);
            wg[k] = make_float4(wv.x * g.x, wv.y * g.y, wv.z * g.z, wv.w * g.w);
        } else {
            xv[k] = wg[k] = make_float4(0.f, 0.f, 0.f, 0.f);
        }
        dot += dot4(wg[k], xv[k]);
    }
    const double total = block_sum((double) dot, red);
    const float r = rstd[row];
    const float c = (float) (total * (double) r * (double) r * (double) r / (double) D);
    float * dxr = dx + row * D;
#pragma unroll
    for (int k = 0; k < V; k++) {
        const int i = threadIdx.x + k * kThreads;
        if (i < d4) {
            float4 o = reinterpret_cast<const float4 *>(dxr)[i];
            o.x += r * wg[k].x - xv[k].x * c;
            o.y += r * wg[k].y - xv[k].y * c;
            o.z += r * wg[k].z - xv[k].z * c;
            o.w += r * wg[k].w - xv[k].w * c;
            reinterpret_cast<float4 *>(dxr)[i] = o;
        }
    }
}

// Any D, any alignment: reads the row twice (the second time mostly from cache).
__global__ void __launch_bounds__(kThreads) rmsnorm_forward_generic(bf16 * __restrict__ y, float * __restrict__ rstd,
                                                                    const float * __restrict__ x,
                                                                    const float * __restrict__ w, int64_t D, float eps) {
    __shared__ double red[32];
    const int64_t row = blockIdx.x;
    const float * xr = x + row * D;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < D; i += kThreads) ss += xr[i] * xr[i];
    const double total = block_sum((double) ss, red);
    const float r = 1.0f / sqrtf((float) (total / (double) D) + eps);
    if (threadIdx.x == 0) rstd[row] = r;
    for (int64_t i = threadIdx.x; i < D; i += kThreads) y[row * D + i] = __float2bfloat16_rn(__fmul_rn(xr[i], r) * w[i]);
}

__global__ void __launch_bounds__(kThreads) rmsnorm_backward_generic(float * __restrict__ dx, const float * __restrict__ dy,
                                                                     const float * __restrict__ x,
                                                                     const float * __restrict__ rstd,
                                                                     const float * __restrict__ w, int64_t D) {
    __shared__ double red[32];
    const int64_t row = blockIdx.x;
    const float * xr = x + row * D;
    const float * gr = dy + row * D;
    float dot = 0.0f;
    for (int64_t i = threadIdx.x; i < D; i += kThreads) dot += (w[i] * gr[i]) * xr[i];
    const double total = block_sum((double) dot, red);
    const float r = rstd[row];
    const float c = (float) (total * (double) r * (double) r * (double) r / (double) D);
    for (int64_t i = threadIdx.x; i < D; i += kThreads) dx[row * D + i] += r * (w[i] * gr[i]) - xr[i] * c;
}

bool vector_ok(int64_t D, const void * a, const void * b, const void * c, const void * d) {
    return D % 4 == 0 && D <= 8 * 4 * kThreads && aligned16(a) && aligned16(b) && aligned16(c) && aligned16(d);
}

}  // namespace

void rmsnorm_forward(bf16 * y, float * rstd, const float * x, const float * w, int64_t N, int64_t D, float eps,
                     cudaStream_t stream) {
    if (N <= 0 || D <= 0) return;
    if (N > 0x7fffffff) throw std::invalid_argument("rmsnorm_forward: too many rows");
    const unsigned grid = (unsigned) N;
    // y rows of D bf16 need only 8-byte alignment (one float4 in, 4 bf16 out).
    if (!vector_ok(D, x, w, x, w) || ((uintptr_t) y & 7) != 0) {
        rmsnorm_forward_generic<<<grid, kThreads, 0, stream>>>(y, rstd, x, w, D, eps);
    } else {
        const int64_t per = ceil_div(D / 4, kThreads);
        if (per <= 1) rmsnorm_forward_kernel<1><<<grid, kThreads, 0, stream>>>(y, rstd, x, w, D, eps);
        else if (per <= 2) rmsnorm_forward_kernel<2><<<grid, kThreads, 0, stream>>>(y, rstd, x, w, D, eps);
        else if (per <= 4) rmsnorm_forward_kernel<4><<<grid, kThreads, 0, stream>>>(y, rstd, x, w, D, eps);
        else rmsnorm_forward_kernel<8><<<grid, kThreads, 0, stream>>>(y, rstd, x, w, D, eps);
    }
    CUDA_CHECK_LAUNCH();
}

void rmsnorm_backward(float * dx, const float * dy, const float * x, const float * rstd, const float * w, int64_t N,
                      int64_t D, cudaStream_t stream) {
    if (N <= 0 || D <= 0) return;
    if (N > 0x7fffffff) throw std::invalid_argument("rmsnorm_backward: too many rows");
    const unsigned grid = (unsigned) N;
    if (!vector_ok(D, dx, dy, x, w)) {
        rmsnorm_backward_generic<<<grid, kThreads, 0, stream>>>(dx, dy, x, rstd, w, D);
    } else {
        const int64_t per = ceil_div(D / 4, kThreads);
        if (per <= 1) rmsnorm_backward_kernel<1><<<grid, kThreads, 0, stream>>>(dx, dy, x, rstd, w, D);
        else if (per <= 2) rmsnorm_backward_kernel<2><<<grid, kThreads, 0, stream>>>(dx, dy, x, rstd, w, D);
        else if (per <= 4) rmsnorm_backward_kernel<4><<<grid, kThreads, 0, stream>>>(dx, dy, x, rstd, w, D);
        else rmsnorm_backward_kernel<8><<<grid, kThreads, 0, stream>>>(dx, dy, x, rstd, w, D);
    }
    CUDA_CHECK_LAUNCH();
}

}  // namespace selftune::train::cuda
