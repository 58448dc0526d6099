// Cross-entropy over one chunk of scored rows of logits [M x V] f32 (V ~ 152k).
//
// Forward: one block per row, a single pass with an online max (each thread keeps its own
// running max and a sum of exponentials rescaled whenever the max grows), then the
// threads' (max, sum) pairs are merged. Exponentials are summed in float only within a
// group of 16 (each <= 1), groups are added in double: with 150k terms a float running sum
// would drop the small ones the gradient is made of (the CPU reference does the same).
// Backward: a flat elementwise pass, 8 logits per thread, bf16 gradients out.
#include "train/cuda/common.cuh"
#include "train/cuda/kernels.cuh"

#include <cfloat>
#include <stdexcept>

namespace selftune::train::cuda {

namespace {

constexpr int kFwdThreads = 512;
constexpr int kUnroll = 4;   // float4 loads in flight per thread

__device__ __forceinline__ void online_add(float v, float & m, double & s) {
    if (v > m) {
        s *= (double) __expf(m - v);
        m = v;
    }
    s += (double) __expf(v - m);
}

__global__ void __launch_bounds__(kFwdThreads) cross_entropy_forward_kernel(float * __restrict__ logp, float * __restrict__ lse,
                                                                           const float * __restrict__ logits,
                                                                           const int32_t * __restrict__ targets,
                                                                           int64_t V) {
    __shared__ double red[32];
    __shared__ float redf[32];
    const int64_t r = blockIdx.x;
    const float * z = logits + r * V;
    // Scalar head up to the first 16-byte boundary and scalar tail; float4s in between.
    int64_t head = (int64_t) ((16 - ((uintptr_t) z & 15)) & 15) / 4;
    if (head > V) head = V;
    const int64_t n4 = (V - head) / 4;
    const float4 * z4 = reinterpret_cast<const float4 *>(z + head);

    float m = -FLT_MAX;
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < head; i += kFwdThreads) online_add(z[i], m, s);
    for (int64_t i = head + 4 * n4 + threadIdx.x; i < V; i += kFwdThreads) online_add(z[i], m, s);

    for (int64_t i0 = threadIdx.x; i0 < n4; i0 += (int64_t) kUnroll * kFwdThreads) {
        float4 v[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            const int64_t i = i0 + (int64_t) u * kFwdThreads;
            v[u] = i < n4 ? __ldcs(z4 + i) : make_float4(-INFINITY, -INFINITY, -INFINITY, -INFINITY);
        }
        float mx = m;
#pragma unroll
        for (int u = 0; u < kUnroll; u++) mx = fmaxf(mx, fmaxf(fmaxf(v[u].x, v[u].y), fmaxf(v[u].z, v[u].w)));
        if (mx > m) {
            s *= (double) __expf(m - mx);
            m = mx;
        }
        float e = 0.0f;
#pragma unroll
        for (int u = 0; u < kUnroll; u++)
            e += (__expf(v[u].x - m) + __expf(v[u].y - m)) + (__expf(v[u].z - m) + __expf(v[u].w - m));
        s += (double) e;
    }

    // Merge: the row max, then each thread's sum rescaled to it, summed in a fixed order.
    float bm = m;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) bm = fmaxf(bm, __shfl_xor_sync(0xffffffffu, bm, o));
    if ((threadIdx.x & 31) == 0) redf[threadIdx.x >> 5] = bm;
    __syncthreads();
    bm = redf[0];
    for (int k = 1; k < kFwdThreads / 32; k++) bm = fmaxf(bm, redf[k]);
    const double total = block_sum(s * exp((double) m - (double) bm), red);
    if (threadIdx.x == 0) {
        const double l = (double) bm + log(total);
        lse[r] = (float) l;
        logp[r] = (float) ((double) z[targets[r]] - l);
    }
}

constexpr int kBwdThreads = 256;

__device__ __forceinline__ float ce_grad(float z, float l, float w, bool is_target) {
    return w * ((is_target ? 1.0f : 0.0f) - __expf(z - l));
}

// Rows along y; 8 logits per thread along x. Needs V % 8 == 0 and aligned pointers.
__global__ void cross_entropy_backward_kernel(bf16 * __restrict__ dlogits, const float * __restrict__ logits,
                                              const float * __restrict__ lse, const int32_t * __restrict__ targets,
                                              const float * __restrict__ weight, int64_t M, int64_t V) {
    const int64_t per_row = V / 8;
    const int64_t c = blockIdx.x * (int64_t) blockDim.x + threadIdx.x;
    if (c >= per_row) return;
    for (int64_t r = blockIdx.y; r < M; r += gridDim.y) {
        const float l = __ldg(lse + r), w = __ldg(weight + r);
        const int64_t t = __ldg(targets + r) - 8 * c;   // target's offset within this chunk
        float v[8];
        const float4 * z4 = reinterpret_cast<const float4 *>(logits + r * V) + 2 * c;
        const float4 a = __ldcs(z4), b = __ldcs(z4 + 1);
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
#pragma unroll
        for (int k = 0; k < 8; k++) v[k] = ce_grad(v[k], l, w, t == k);
        __stcs(reinterpret_cast<uint4 *>(dlogits + r * V) + c, float_to_bf16x8(v));
    }
}

__global__ void cross_entropy_backward_scalar(bf16 * __restrict__ dlogits, const float * __restrict__ logits,
                                              const float * __restrict__ lse, const int32_t * __restrict__ targets,
                                              const float * __restrict__ weight, int64_t M, int64_t V) {
    for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < M * V; i += (int64_t) gridDim.x * blockDim.x) {
        const int64_t r = i / V, v = i - r * V;
        dlogits[i] = __float2bfloat16_rn(ce_grad(logits[i], lse[r], weight[r], targets[r] == v));
    }
}

}  // namespace

void cross_entropy_forward(float * logp, float * lse, const float * logits, const int32_t * targets, int64_t M,
                           int64_t V, cudaStream_t stream) {
    if (M <= 0) return;
    if (V <= 0) throw std::invalid_argument("cross_entropy_forward: empty vocabulary");
    if (M > 0x7fffffff) throw std::invalid_argument("cross_entropy_forward: too many rows");
    cross_entropy_forward_kernel<<<(unsigned) M, kFwdThreads, 0, stream>>>(logp, lse, logits, targets, V);
    CUDA_CHECK_LAUNCH();
}

void cross_entropy_backward(bf16 * dlogits, const float * logits, const float * lse, const int32_t * targets,
                            const float * weight, int64_t M, int64_t V, cudaStream_t stream) {
    if (M <= 0 || V <= 0) return;
    if (V % 8 == 0 && aligned16(dlogits) && aligned16(logits)) {
        const dim3 grid((unsigned) ceil_div(V / 8, kBwdThreads), (unsigned) (M < 65535 ? M : 65535));
        cross_entropy_backward_kernel<<<grid, kBwdThreads, 0, stream>>>(dlogits, logits, lse, targets, weight, M, V);
    } else {
        cross_entropy_backward_scalar<<<grid_for(M * V, kBwdThreads), kBwdThreads, 0, stream>>>(dlogits, logits, lse,
                                                                                                 targets, weight, M, V);
    }
    CUDA_CHECK_LAUNCH();
}

}  // namespace selftune::train::cuda
