// Rotary position embedding on bf16 q/k, in place, forward or inverse (its backward).
//
// The angles are built as train/cpu/ops/rope.h builds its cache (which is ggml's CPU
// rope): theta_scale = powf(base, -2/head_dim) on the host with the same libm, then per
// pair theta_i = ((pos * s) * s) ... i times in float, so theta is bit-identical to the
// CPU's and only sinf/cosf differ (by an ulp or two). A closed form such as
// pos * powf(s, i) would drift by hundreds of ulps at long positions.
#include "train/cuda/common.cuh"
#include "train/cuda/kernels.cuh"

#include <cmath>
#include <stdexcept>

namespace selftune::train::cuda {

namespace {

constexpr int kThreads = 256;

// theta of pairs i0 .. i0+K-1 at position p, the CPU's multiplication chain.
template <int K>
__device__ __forceinline__ void angles(int p, int i0, float s, float sign, float (&cs)[K], float (&sn)[K]) {
    float theta = (float) p;
    for (int i = 0; i < i0; i++) theta = __fmul_rn(theta, s);
#pragma unroll
    for (int k = 0; k < K; k++) {
        sincosf(theta, &sn[k], &cs[k]);
        sn[k] *= sign;
        theta = __fmul_rn(theta, s);
    }
}

// Work item: (row n, group of kHeads heads, chunk j of the head); j varies fastest, so a
// warp's loads of one head are contiguous. Grouping heads amortizes the angles (a chain
// of up to head_dim/2 multiplies and 4-8 sincosf) over kHeads heads while leaving enough
// threads to keep the memory system busy.
constexpr int kHeads = 4;

// norm mode: 8 consecutive values are pairs 4j .. 4j+3.
__global__ void rope_norm_kernel(bf16 * __restrict__ x, const int32_t * __restrict__ pos, int64_t N, int n_head,
                                 int head_dim, float s, float sign) {
    const int per_head = head_dim / 8, groups = (n_head + kHeads - 1) / kHeads;
    const int64_t per_row = (int64_t) groups * per_head;
    for (int64_t idx = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; idx < N * per_row;
         idx += (int64_t) gridDim.x * blockDim.x) {
        const int64_t n = idx / per_row;
        const int rem = (int) (idx - n * per_row), hg = rem / per_head, j = rem - hg * per_head;
        float cs[4], sn[4];
        angles<4>(__ldg(pos + n), 4 * j, s, sign, cs, sn);
        bf16 * row = x + n * n_head * (int64_t) head_dim + 8 * j;
        // All loads first, then all stores: kHeads 16-byte loads in flight per thread.
        float v[kHeads][8];
#pragma unroll
        for (int u = 0; u < kHeads; u++)
            if (hg * kHeads + u < n_head) load_bf16x8(row + (int64_t) (hg * kHeads + u) * head_dim, v[u]);
#pragma unroll
        for (int u = 0; u < kHeads; u++) {
            if (hg * kHeads + u >= n_head) break;
#pragma unroll
            for (int k = 0; k < 4; k++) {
                const float a = v[u][2 * k], b = v[u][2 * k + 1];
                v[u][2 * k] = a * cs[k] - b * sn[k];
                v[u][2 * k + 1] = a * sn[k] + b * cs[k];
            }
            store_bf16x8(row + (int64_t) (hg * kHeads + u) * head_dim, v[u]);
        }
    }
}

// neox mode: pairs 8j .. 8j+7 are values [8j, 8j+8) and [half+8j, half+8j+8).
__global__ void rope_neox_kernel(bf16 * __restrict__ x, const int32_t * __restrict__ pos, int64_t N, int n_head,
                                 int head_dim, float s, float sign) {
    const int half = head_dim / 2, per_head = half / 8, groups = (n_head + kHeads - 1) / kHeads;
    const int64_t per_row = (int64_t) groups * per_head;
    for (int64_t idx = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; idx < N * per_row;
         idx += (int64_t) gridDim.x * blockDim.x) {
        const int64_t n = idx / per_row;
        const int rem = (int) (idx - n * per_row), hg = rem / per_head, j = rem - hg * per_head;
        float cs[8], sn[8];
        angles<8>(__ldg(pos + n), 8 * j, s, sign, cs, sn);
        bf16 * row = x + n * n_head * (int64_t) head_dim + 8 * j;
        float a[kHeads][8], b[kHeads][8];
#pragma unroll
        for (int u = 0; u < kHeads; u++) {
            if (hg * kHeads + u < n_head) {
                load_bf16x8(row + (int64_t) (hg * kHeads + u) * head_dim, a[u]);
                load_bf16x8(row + (int64_t) (hg * kHeads + u) * head_dim + half, b[u]);
            }
        }
#pragma unroll
        for (int u = 0; u < kHeads; u++) {
            if (hg * kHeads + u >= n_head) break;
#pragma unroll
            for (int k = 0; k < 8; k++) {
                const float p = a[u][k], q = b[u][k];
                a[u][k] = p * cs[k] - q * sn[k];
                b[u][k] = p * sn[k] + q * cs[k];
            }
            store_bf16x8(row + (int64_t) (hg * kHeads + u) * head_dim, a[u]);
            store_bf16x8(row + (int64_t) (hg * kHeads + u) * head_dim + half, b[u]);
        }
    }
}

// Any even head_dim, any alignment: one pair per thread.
__global__ void rope_generic_kernel(bf16 * __restrict__ x, const int32_t * __restrict__ pos, int64_t N, int n_head,
                                    int head_dim, int mode, float s, float sign) {
    const int half = head_dim / 2;
    for (int64_t idx = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; idx < N * half;
         idx += (int64_t) gridDim.x * blockDim.x) {
        const int64_t n = idx / half;
        const int p = (int) (idx - n * half);
        float cs[1], sn[1];
        angles<1>(__ldg(pos + n), p, s, sign, cs, sn);
        const int i0 = mode == 0 ? 2 * p : p, i1 = mode == 0 ? 2 * p + 1 : p + half;
        for (int h = 0; h < n_head; h++) {
            bf16 * v = x + (n * n_head + h) * (int64_t) head_dim;
            const float a = __bfloat162float(v[i0]), b = __bfloat162float(v[i1]);
            v[i0] = __float2bfloat16_rn(a * cs[0] - b * sn[0]);
            v[i1] = __float2bfloat16_rn(a * sn[0] + b * cs[0]);
        }
    }
}

}  // namespace

void rope(bf16 * x, const int32_t * pos, int64_t N, int n_head, int head_dim, int mode, float base, bool inverse,
          cudaStream_t stream) {
    if (head_dim <= 0 || head_dim % 2 != 0) throw std::invalid_argument("rope: head_dim must be even");
    if (mode != 0 && mode != 1) throw std::invalid_argument("rope: mode must be 0 (norm) or 1 (neox)");
    if (N <= 0 || n_head <= 0) return;
    // float pow, as the CPU cache's std::pow(float, float).
    const float s = std::pow(base, -2.0f / (float) head_dim);
    const float sign = inverse ? -1.0f : 1.0f;
    const bool vec = aligned16(x) && (mode == 0 ? head_dim % 8 == 0 : head_dim % 16 == 0);
    if (!vec) {
        rope_generic_kernel<<<grid_for(N * (head_dim / 2), kThreads), kThreads, 0, stream>>>(x, pos, N, n_head, head_dim,
                                                                                               mode, s, sign);
    } else if (mode == 0) {
        const int64_t items = N * ((n_head + kHeads - 1) / kHeads) * (head_dim / 8);
        rope_norm_kernel<<<grid_for(items, kThreads), kThreads, 0, stream>>>(x, pos, N, n_head, head_dim, s, sign);
    } else {
        const int64_t items = N * ((n_head + kHeads - 1) / kHeads) * (head_dim / 16);
        rope_neox_kernel<<<grid_for(items, kThreads), kThreads, 0, stream>>>(x, pos, N, n_head, head_dim, s, sign);
    }
    CUDA_CHECK_LAUNCH();
}

}  // namespace selftune::train::cuda
