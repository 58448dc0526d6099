// Elementwise kernels: SwiGLU forward/backward, the q/k/v bias add, f32<->bf16 casts and
// LoRA-input dropout. All share one launcher: 8 elements per thread through 16-byte
// loads/stores when every pointer is 16-byte aligned (a scalar tail for n % 8), else one
// element per thread.
//
// Dropout draws its mask from train/rng.h's counter-based hash, re-stated here for the
// device: keep(i) = RngKey{key_h}.uniform(i) >= p with i the flat index n * I + col, the
// same draw the CPU backend's apply_dropout makes, so both backends drop the same units.
#include "train/cuda/common.cuh"
#include "train/cuda/kernels.cuh"

#include <stdexcept>

namespace selftune::train::cuda {

namespace {

constexpr int kThreads = 256;

// F: vec(c) handles elements 8c .. 8c+7, one(i) element i.
template <class F>
__global__ void ew_kernel(F f, int64_t n, bool vec) {
    const int64_t tid = blockIdx.x * (int64_t) blockDim.x + threadIdx.x;
    const int64_t stride = (int64_t) gridDim.x * blockDim.x;
    int64_t done = 0;
    if (vec) {
        const int64_t chunks = n / 8;
        for (int64_t c = tid; c < chunks; c += stride) f.vec(c);
        done = chunks * 8;
    }
    for (int64_t i = done + tid; i < n; i += stride) f.one(i);
}

template <class F>
void launch(const F & f, int64_t n, bool aligned, cudaStream_t stream) {
    if (n <= 0) return;
    const int64_t work = aligned ? (n / 8 > 0 ? n / 8 : n) : n;
    ew_kernel<<<grid_for(work, kThreads), kThreads, 0, stream>>>(f, n, aligned);
    CUDA_CHECK_LAUNCH();
}

__device__ __forceinline__ float sigmoidf(float x) { return 1.0f / (1.0f + __expf(-x)); }

struct SwigluFwd {
    bf16 * h;
    const bf16 * g;
    const bf16 * u;
    __device__ void vec(int64_t c) const {
        float gv[8], uv[8];
        load_bf16x8(g + 8 * c, gv);
        load_bf16x8(u + 8 * c, uv);
#pragma unroll
        for (int k = 0; k < 8; k++) gv[k] = gv[k] * sigmoidf(gv[k]) * uv[k];
        store_bf16x8(h + 8 * c, gv);
    }
    __device__ void one(int64_t i) const {
        const float gv = __bfloat162float(g[i]);
        h[i] = __float2bfloat16_rn(gv * sigmoidf(gv) * __bfloat162float(u[i]));
    }
};

struct SwigluBwd {
    bf16 * dg;
    bf16 * du;
    const float * dh;
    const bf16 * g;
    const bf16 * u;
    __device__ static void grad(float d, float gv, float uv, float & dgv, float & duv) {
        const float s = sigmoidf(gv);
        dgv = d * uv * s * (1.0f + gv * (1.0f - s));
        duv = d * gv * s;
    }
    __device__ void vec(int64_t c) const {
        float d[8], gv[8], uv[8], a[8], b[8];
        load_f32x8(dh + 8 * c, d);
        load_bf16x8(g + 8 * c, gv);
        load_bf16x8(u + 8 * c, uv);
#pragma unroll
        for (int k = 0; k < 8; k++) grad(d[k], gv[k], uv[k], a[k], b[k]);
        store_bf16x8(dg + 8 * c, a);
        store_bf16x8(du + 8 * c, b);
    }
    __device__ void one(int64_t i) const {
        float a, b;
        grad(dh[i], __bfloat162float(g[i]), __bfloat162float(u[i]), a, b);
        dg[i] = __float2bfloat16_rn(a);
        du[i] = __float2bfloat16_rn(b);
    }
};

// vec needs O % 8 == 0 so a chunk lies in one row and b[o0 .. o0+8) is aligned.
struct AddBias {
    bf16 * y;
    const float * b;
    int64_t O;
    __device__ void vec(int64_t c) const {
        const int64_t o0 = (8 * c) % O;
        float v[8], bv[8];
        load_bf16x8(y + 8 * c, v);
        load_f32x8(b + o0, bv);
#pragma unroll
        for (int k = 0; k < 8; k++) v[k] += bv[k];
        store_bf16x8(y + 8 * c, v);
    }
    __device__ void one(int64_t i) const { y[i] = __float2bfloat16_rn(__bfloat162float(y[i]) + b[i % O]); }
};

struct CastToBf16 {
    bf16 * dst;
    const float * src;
    __device__ void vec(int64_t c) const {
        float v[8];
        load_f32x8(src + 8 * c, v);
        store_bf16x8(dst + 8 * c, v);
    }
    __device__ void one(int64_t i) const { dst[i] = __float2bfloat16_rn(src[i]); }
};

struct CastToF32 {
    float * dst;
    const bf16 * src;
    __device__ void vec(int64_t c) const {
        float v[8];
        load_bf16x8(src + 8 * c, v);
        store_f32x8(dst + 8 * c, v);
    }
    __device__ void one(int64_t i) const { dst[i] = __bfloat162float(src[i]); }
};

// train/rng.h: mix64 is SplitMix64's finalizer, bits(i) = mix64(h ^ i * C), uniform takes
// the top 24 bits.
__device__ __forceinline__ uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

__device__ __forceinline__ bool keep(uint64_t key_h, uint64_t i, float p) {
    const float u = (float) (mix64(key_h ^ (i * 0xd6e8feb86659fd93ull)) >> 40) * (1.0f / 16777216.0f);
    return u >= p;
}

struct Dropout {
    bf16 * y;
    const bf16 * x;
    uint64_t key_h;
    float p, scale;
    __device__ void vec(int64_t c) const {
        float v[8];
        load_bf16x8(x + 8 * c, v);
#pragma unroll
        for (int k = 0; k < 8; k++) v[k] = keep(key_h, (uint64_t) (8 * c + k), p) ? v[k] * scale : 0.0f;
        store_bf16x8(y + 8 * c, v);
    }
    __device__ void one(int64_t i) const {
        y[i] = __float2bfloat16_rn(keep(key_h, (uint64_t) i, p) ? __bfloat162float(x[i]) * scale : 0.0f);
    }
};

// The CPU masks dy into a temporary (dy * scale or 0) and then adds it: a separate
// product and sum, never fused, so dx matches bit for bit.
struct DropoutBwdAdd {
    float * dx;
    const float * dy;
    uint64_t key_h;
    float p, scale;
    __device__ void vec(int64_t c) const {
        float d[8], a[8];
        load_f32x8(dy + 8 * c, d);
        load_f32x8(dx + 8 * c, a);
#pragma unroll
        for (int k = 0; k < 8; k++)
            a[k] = __fadd_rn(a[k], keep(key_h, (uint64_t) (8 * c + k), p) ? __fmul_rn(d[k], scale) : 0.0f);
        store_f32x8(dx + 8 * c, a);
    }
    __device__ void one(int64_t i) const {
        dx[i] = __fadd_rn(dx[i], keep(key_h, (uint64_t) i, p) ? __fmul_rn(dy[i], scale) : 0.0f);
    }
};

// The CPU's keep_scale: T(1) / (T(1) - (T) p) in float.
float keep_scale(float p) { return 1.0f / (1.0f - p); }

}  // namespace

void swiglu_forward(bf16 * h, const bf16 * g, const bf16 * u, int64_t n, cudaStream_t stream) {
    launch(SwigluFwd{h, g, u}, n, aligned16(h) && aligned16(g) && aligned16(u), stream);
}

void swiglu_backward(bf16 * dg, bf16 * du, const float * dh, const bf16 * g, const bf16 * u, int64_t n,
                     cudaStream_t stream) {
    launch(SwigluBwd{dg, du, dh, g, u}, n,
           aligned16(dg) && aligned16(du) && aligned16(dh) && aligned16(g) && aligned16(u), stream);
}

void add_bias(bf16 * y, const float * b, int64_t N, int64_t O, cudaStream_t stream) {
    if (O <= 0) return;
    launch(AddBias{y, b, O}, N * O, O % 8 == 0 && aligned16(y) && aligned16(b), stream);
}

void cast_f32_to_bf16(bf16 * dst, const float * src, int64_t n, cudaStream_t stream) {
    launch(CastToBf16{dst, src}, n, aligned16(dst) && aligned16(src), stream);
}

void cast_bf16_to_f32(float * dst, const bf16 * src, int64_t n, cudaStream_t stream) {
    launch(CastToF32{dst, src}, n, aligned16(dst) && aligned16(src), stream);
}

void dropout(bf16 * y, const bf16 * x, int64_t N, int64_t I, uint64_t key_h, float p, cudaStream_t stream) {
    launch(Dropout{y, x, key_h, p, keep_scale(p)}, N * I, aligned16(y) && aligned16(x), stream);
}

void dropout_backward_add(float * dx, const float * dy, int64_t N, int64_t I, uint64_t key_h, float p,
                          cudaStream_t stream) {
    launch(DropoutBwdAdd{dx, dy, key_h, p, keep_scale(p)}, N * I, aligned16(dx) && aligned16(dy), stream);
}

}  // namespace selftune::train::cuda
