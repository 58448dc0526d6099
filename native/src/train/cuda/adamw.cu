// AdamW on the f32 LoRA master parameters, and the gradient's squared norm for clipping.
//
// adamw: train/optimizer.cpp's adamw_update operation for operation; the bias corrections
// and the decay factor are computed on the host exactly as there (pow in double, then
// float), and every product and sum is rounded on its own (no fused multiply-add), so a
// step on the GPU gives the CPU's bits.
// sum_squares: a fixed partition (the block count depends on n only) with per-thread
// double sums, per-block partials in scratch, and one block summing those in order: the
// same gradient always gives the same norm, and so the same clipping.
#include "train/cuda/common.cuh"
#include "train/cuda/kernels.cuh"

#include <cmath>

namespace selftune::train::cuda {

namespace {

constexpr int kThreads = 256;

struct AdamCoef {
    float lr, beta1, beta2, one_minus_b1, one_minus_b2, eps, bc1, bc2, decay, grad_mult;
};

__device__ __forceinline__ void adam_one(float & p, float grad, float & m, float & v, const AdamCoef & c) {
    const float g = __fmul_rn(grad, c.grad_mult);
    m = __fadd_rn(__fmul_rn(c.beta1, m), __fmul_rn(c.one_minus_b1, g));
    v = __fadd_rn(__fmul_rn(c.beta2, v), __fmul_rn(__fmul_rn(c.one_minus_b2, g), g));
    const float mhat = __fdiv_rn(m, c.bc1);
    const float vhat = __fdiv_rn(v, c.bc2);
    p = __fsub_rn(__fmul_rn(p, c.decay), __fdiv_rn(__fmul_rn(c.lr, mhat), __fadd_rn(__fsqrt_rn(vhat), c.eps)));
}

template <bool Vec>
__global__ void adamw_kernel(float * __restrict__ p, const float * __restrict__ g, float * __restrict__ m,
                             float * __restrict__ v, int64_t n, AdamCoef c) {
    const int64_t tid = blockIdx.x * (int64_t) blockDim.x + threadIdx.x;
    const int64_t stride = (int64_t) gridDim.x * blockDim.x;
    int64_t done = 0;
    if (Vec) {
        const int64_t n4 = n / 4;
        for (int64_t j = tid; j < n4; j += stride) {
            float4 pp = reinterpret_cast<float4 *>(p)[j];
            const float4 gg = __ldcs(reinterpret_cast<const float4 *>(g) + j);
            float4 mm = reinterpret_cast<float4 *>(m)[j];
            float4 vv = reinterpret_cast<float4 *>(v)[j];
            adam_one(pp.x, gg.x, mm.x, vv.x, c);
            adam_one(pp.y, gg.y, mm.y, vv.y, c);
            adam_one(pp.z, gg.z, mm.z, vv.z, c);
            adam_one(pp.w, gg.w, mm.w, vv.w, c);
            reinterpret_cast<float4 *>(p)[j] = pp;
            reinterpret_cast<float4 *>(m)[j] = mm;
            reinterpret_cast<float4 *>(v)[j] = vv;
        }
        done = n4 * 4;
    }
    for (int64_t i = done + tid; i < n; i += stride) adam_one(p[i], g[i], m[i], v[i], c);
}

// Partition: group j of 4 values (j = 0 .. ceil(n/4)-1) belongs to global thread
// j mod (G * kThreads) and is added in index order, whether loaded as a float4 or (an
// unaligned buffer, the last partial group) value by value: the result never depends on
// the pointer's alignment.
constexpr int64_t kSumMaxBlocks = 1024;

int64_t sum_blocks(int64_t n) {
    const int64_t b = ceil_div(n, (int64_t) kThreads * 4 * 8);
    return b < 1 ? 1 : (b > kSumMaxBlocks ? kSumMaxBlocks : b);
}

__global__ void __launch_bounds__(kThreads) sum_squares_partial(double * __restrict__ partial, const float * __restrict__ g,
                                                                int64_t n, bool vec) {
    __shared__ double red[32];
    const int64_t tid = blockIdx.x * (int64_t) blockDim.x + threadIdx.x;
    const int64_t stride = (int64_t) gridDim.x * blockDim.x;
    const int64_t groups = ceil_div(n, 4);
    double s = 0.0;
    for (int64_t j = tid; j < groups; j += stride) {
        if (vec && 4 * j + 4 <= n) {
            const float4 x = __ldcs(reinterpret_cast<const float4 *>(g) + j);
            s += (double) x.x * x.x;
            s += (double) x.y * x.y;
            s += (double) x.z * x.z;
            s += (double) x.w * x.w;
        } else {
            for (int64_t i = 4 * j; i < 4 * j + 4 && i < n; i++) s += (double) g[i] * g[i];
        }
    }
    s = block_sum(s, red);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void __launch_bounds__(kSumMaxBlocks) sum_squares_final(double * __restrict__ out,
                                                                   const double * __restrict__ partial, int n_partial) {
    __shared__ double red[32];
    const double s = block_sum(threadIdx.x < n_partial ? partial[threadIdx.x] : 0.0, red);
    if (threadIdx.x == 0) *out = s;
}

}  // namespace

void adamw(float * p, const float * g, float * m, float * v, int64_t n, float lr, float beta1, float beta2, float eps,
           float weight_decay, int64_t t, float grad_mult, cudaStream_t stream) {
    if (n <= 0) return;
    AdamCoef c;
    c.lr = lr;
    c.beta1 = beta1;
    c.beta2 = beta2;
    c.one_minus_b1 = 1.0f - beta1;
    c.one_minus_b2 = 1.0f - beta2;
    c.eps = eps;
    c.bc1 = 1.0f - (float) std::pow((double) beta1, (double) t);
    c.bc2 = 1.0f - (float) std::pow((double) beta2, (double) t);
    c.decay = 1.0f - lr * weight_decay;
    c.grad_mult = grad_mult;
    if (aligned16(p) && aligned16(g) && aligned16(m) && aligned16(v)) {
        adamw_kernel<true><<<grid_for(n / 4 > 0 ? n / 4 : n, kThreads), kThreads, 0, stream>>>(p, g, m, v, n, c);
    } else {
        adamw_kernel<false><<<grid_for(n, kThreads), kThreads, 0, stream>>>(p, g, m, v, n, c);
    }
    CUDA_CHECK_LAUNCH();
}

int64_t sum_squares_scratch(int64_t n) { return sum_blocks(n); }

void sum_squares(double * out, const float * g, int64_t n, double * scratch, cudaStream_t stream) {
    const int64_t blocks = sum_blocks(n);
    sum_squares_partial<<<(unsigned) blocks, kThreads, 0, stream>>>(scratch, g, n < 0 ? 0 : n, aligned16(g));
    CUDA_CHECK_LAUNCH();
    sum_squares_final<<<1, kSumMaxBlocks, 0, stream>>>(out, scratch, (int) blocks);
    CUDA_CHECK_LAUNCH();
}

}  // namespace selftune::train::cuda
