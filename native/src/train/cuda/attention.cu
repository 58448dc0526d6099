// Causal grouped-query attention over packed variable-length sequences, flash style: the
// score matrix never reaches global memory. The forward keeps a running max and sum per row
// and saves only lse; the backward recomputes p = exp(scale q.k - lse) from it.
//
// Fast paths (hd 64 and 128): bf16 mma.sync m16n8k16 with f32 accumulation, 64-row tiles,
// 4 warps of 16 rows each, the next K/V (or Q/dO) tile copied in with cp.async while the
// current one is used. The backward is three passes plus a reduction, none of them using
// atomics, so that gradients are bitwise reproducible:
//   D = rowsum(dO * o);  dK/dV per (key tile, query head);  dQ per (query tile, head);
//   GQA: when H > Hkv, the per-query-head dK/dV go to f32 scratch and a last kernel sums
//   each kv head's group in a fixed order.
// Every other hd (<= 256): one warp per row, scalar f32, slow but simple.
#include "train/cuda/kernels.cuh"

#include <cmath>
#include <cstdint>
#include <initializer_list>

namespace selftune::train::cuda {

namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr int kTile = 64;      // rows of a Q tile and of a K/V tile
constexpr int kThreads = 128;  // 4 warps x 16 rows

// ---------------------------------------------------------------------------------------
// PTX wrappers. The asm that reads or writes shared memory carries a "memory" clobber so
// the compiler never moves it across __syncthreads.

__device__ __forceinline__ uint32_t smem_addr(const void * p) {
    return (uint32_t) __cvta_generic_to_shared(p);
}

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const bf16 * p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p))
                 : "memory");
}

__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], const bf16 * p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p))
                 : "memory");
}

// c += a (16x16, row) * b (16x8, col); fragment layouts as in the PTX ISA for m16n8k16.
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void cp_async16(void * dst, const void * src) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(dst)), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}
// Waits until at most one group (the prefetch just issued) is still in flight.
__device__ __forceinline__ void cp_async_wait_one() {
    asm volatile("cp.async.wait_group 1;\n" ::: "memory");
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (lower column) in the low half
    return *reinterpret_cast<uint32_t *>(&v);
}

// ---------------------------------------------------------------------------------------
// Tile staging and warp-level products. Tiles live in shared memory row-major with a row
// stride of HD + 8 elements: the 16-byte pad puts the 8 rows an ldmatrix reads in 8
// different bank groups.

template <int HD> struct Tile {
    static constexpr int LD = HD + 8;
    static constexpr int ELEMS = kTile * LD;
};

// 64 rows of HD bf16 from global (row i at g + i * stride) into s; rows >= n_valid become
// zeros so that padded rows contribute nothing and never read past a sequence.
template <int HD>
__device__ __forceinline__ void load_tile_async(bf16 * s, const bf16 * g, int64_t stride, int n_valid) {
    constexpr int CPR = HD / 8;  // 16-byte chunks per row
    for (int c = threadIdx.x; c < kTile * CPR; c += kThreads) {
        const int r = c / CPR, col = (c % CPR) * 8;
        bf16 * dst = s + r * Tile<HD>::LD + col;
        if (r < n_valid) cp_async16(dst, g + (int64_t) r * stride + col);
        else *reinterpret_cast<uint4 *>(dst) = make_uint4(0, 0, 0, 0);
    }
}

// A fragment (16 x 16 at column k0) of a row-major 16-row block at sA.
template <int HD>
__device__ __forceinline__ void load_a_frag(uint32_t (&a)[4], const bf16 * sA, int k0, int lane) {
    const int r = lane & 7, mi = lane >> 3;  // lane supplies row r of 8x8 matrix mi
    ldsm_x4(a, sA + (r + (mi & 1) * 8) * Tile<HD>::LD + k0 + (mi >> 1) * 8);
}

// acc (16 x NT*8) += A (16 x HD) * B^T, B being NT*8 rows of HD at sB (both row-major with
// the reduced dimension contiguous: S = Q K^T, dP = dO V^T and their transposes).
template <int HD, int NT>
__device__ __forceinline__ void mma_abt(float (&acc)[NT][4], const bf16 * sA, const bf16 * sB, int lane) {
    constexpr int LD = Tile<HD>::LD;
    const int r = lane & 7, mi = lane >> 3;
#pragma unroll
    for (int ks = 0; ks < HD / 16; ks++) {
        uint32_t a[4];
        load_a_frag<HD>(a, sA, ks * 16, lane);
#pragma unroll
        for (int np = 0; np < NT / 2; np++) {
            // matrices: (n 0-7, k 0-7) (n 0-7, k 8-15) (n 8-15, k 0-7) (n 8-15, k 8-15)
            uint32_t b[4];
            ldsm_x4(b, sB + (np * 16 + r + (mi >> 1) * 8) * LD + ks * 16 + (mi & 1) * 8);
            mma_bf16(acc[2 * np], a, b[0], b[1]);
            mma_bf16(acc[2 * np + 1], a, b[2], b[3]);
        }
    }
}

// Same with A already in registers (the forward's Q, loaded once per block).
template <int HD, int NT>
__device__ __forceinline__ void mma_abt_reg(float (&acc)[NT][4], const uint32_t (&a)[HD / 16][4], const bf16 * sB,
                                            int lane) {
    constexpr int LD = Tile<HD>::LD;
    const int r = lane & 7, mi = lane >> 3;
#pragma unroll
    for (int ks = 0; ks < HD / 16; ks++) {
#pragma unroll
        for (int np = 0; np < NT / 2; np++) {
            uint32_t b[4];
            ldsm_x4(b, sB + (np * 16 + r + (mi >> 1) * 8) * LD + ks * 16 + (mi & 1) * 8);
            mma_bf16(acc[2 * np], a[ks], b[0], b[1]);
            mma_bf16(acc[2 * np + 1], a[ks], b[2], b[3]);
        }
    }
}

// acc (16 x HD) += P (16 x KT*8, an accumulator tile in C layout) * B, B being KT*8 rows of
// HD at sB, row-major (O += P V, dV += P^T dO, dK += dS^T Q, dQ += dS K). The C layout of
// two adjacent 8-column tiles is exactly the A layout of one 16-wide k step; B comes in
// through ldmatrix.trans because its k dimension runs down the rows.
template <int HD, int KT>
__device__ __forceinline__ void mma_pv(float (&acc)[HD / 8][4], const float (&p)[KT][4], const bf16 * sB, int lane) {
    constexpr int LD = Tile<HD>::LD;
    const int r = lane & 7, mi = lane >> 3;
#pragma unroll
    for (int ks = 0; ks < KT / 2; ks++) {
        const uint32_t a[4] = {pack_bf16(p[2 * ks][0], p[2 * ks][1]), pack_bf16(p[2 * ks][2], p[2 * ks][3]),
                               pack_bf16(p[2 * ks + 1][0], p[2 * ks + 1][1]),
                               pack_bf16(p[2 * ks + 1][2], p[2 * ks + 1][3])};
#pragma unroll
        for (int dp = 0; dp < HD / 16; dp++) {
            // matrices: (k 0-7, n 0-7) (k 8-15, n 0-7) (k 0-7, n 8-15) (k 8-15, n 8-15)
            uint32_t b[4];
            ldsm_x4_trans(b, sB + (ks * 16 + r + (mi & 1) * 8) * LD + dp * 16 + (mi >> 1) * 8);
            mma_bf16(acc[2 * dp], a, b[0], b[1]);
            mma_bf16(acc[2 * dp + 1], a, b[2], b[3]);
        }
    }
}

// Block index -> (head, sequence, tile), the tile dimension slowest so that the heaviest
// tiles (most causal work) are scheduled first: for queries the last tile, for keys the first.
struct BlockPos {
    int h, s, t;
};
__device__ __forceinline__ BlockPos block_pos(int H, int n_seq) {
    const int b = blockIdx.x;
    return {b % H, (b / H) % n_seq, b / (H * n_seq)};
}

// ---------------------------------------------------------------------------------------
// Forward, fast path. Block: one 64-row query tile of one head of one sequence.

template <int HD>
__global__ void __launch_bounds__(kThreads) attn_fwd_kernel(bf16 * __restrict__ out, float * __restrict__ lse,
                                                            const bf16 * __restrict__ q, const bf16 * __restrict__ k,
                                                            const bf16 * __restrict__ v,
                                                            const int32_t * __restrict__ seq_start, int n_seq,
                                                            int n_tiles, int H, int Hkv, float scale_log2) {
    constexpr int LD = Tile<HD>::LD, TE = Tile<HD>::ELEMS;
    extern __shared__ uint4 smem_u4[];
    bf16 * sQ = reinterpret_cast<bf16 *>(smem_u4);
    bf16 * sK = sQ + TE;       // 2 buffers
    bf16 * sV = sK + 2 * TE;   // 2 buffers

    const BlockPos bp = block_pos(H, n_seq);
    const int h = bp.h, qt = n_tiles - 1 - bp.t;
    const int start = seq_start[bp.s], L = seq_start[bp.s + 1] - start;
    const int q0 = qt * kTile;
    if (q0 >= L) return;
    const int kvh = h / (H / Hkv);
    const int64_t qs = (int64_t) H * HD, ks = (int64_t) Hkv * HD;
    const bf16 * kg = k + (int64_t) start * ks + kvh * HD;
    const bf16 * vg = v + (int64_t) start * ks + kvh * HD;

    load_tile_async<HD>(sQ, q + (int64_t) (start + q0) * qs + h * HD, qs, L - q0);
    load_tile_async<HD>(sK, kg, ks, L);
    load_tile_async<HD>(sV, vg, ks, L);
    cp_async_commit();

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, tig = lane & 3;
    const int row0 = q0 + warp * 16 + g;  // this thread's rows: row0 and row0 + 8
    uint32_t qf[HD / 16][4];
    float o[HD / 8][4];
#pragma unroll
    for (int i = 0; i < HD / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // l: this thread's columns only

    for (int kt = 0; kt <= qt; kt++) {
        const int buf = kt & 1;
        if (kt < qt) {
            const int k1 = (kt + 1) * kTile;
            load_tile_async<HD>(sK + (buf ^ 1) * TE, kg + k1 * ks, ks, L - k1);
            load_tile_async<HD>(sV + (buf ^ 1) * TE, vg + k1 * ks, ks, L - k1);
        }
        cp_async_commit();
        cp_async_wait_one();
        __syncthreads();
        if (kt == 0) {
#pragma unroll
            for (int s = 0; s < HD / 16; s++) load_a_frag<HD>(qf[s], sQ + warp * 16 * LD, s * 16, lane);
        }

        float sc[8][4];
#pragma unroll
        for (int i = 0; i < 8; i++) sc[i][0] = sc[i][1] = sc[i][2] = sc[i][3] = 0.f;
        mma_abt_reg<HD, 8>(sc, qf, sK + buf * TE, lane);

        // Only the diagonal tile has keys after a row; every row keeps at least key q0 there,
        // so the running max is finite after the first tile.
        const bool diag = kt == qt;
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int col = kt * kTile + nt * 8 + tig * 2 + (e & 1), row = row0 + (e >> 1) * 8;
                const float x = diag && col > row ? -INFINITY : sc[nt][e] * scale_log2;
                sc[nt][e] = x;
                mx[e >> 1] = fmaxf(mx[e >> 1], x);
            }
        float corr[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
            const float mn = fmaxf(m[r], mx[r]);
            corr[r] = exp2f(m[r] - mn);
            m[r] = mn;
            l[r] *= corr[r];
        }
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const float p = exp2f(sc[nt][e] - m[e >> 1]);
                sc[nt][e] = p;
                l[e >> 1] += p;
            }
#pragma unroll
        for (int i = 0; i < HD / 8; i++) {
            o[i][0] *= corr[0];
            o[i][1] *= corr[0];
            o[i][2] *= corr[1];
            o[i][3] *= corr[1];
        }
        mma_pv<HD, 8>(o, sc, sV + buf * TE, lane);
        __syncthreads();  // the buffer just read is the next prefetch's target
    }

#pragma unroll
    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
        const int row = row0 + r * 8;
        if (row >= L) continue;
        const float inv = 1.f / l[r];
        bf16 * og = out + (int64_t) (start + row) * qs + h * HD + tig * 2;
#pragma unroll
        for (int i = 0; i < HD / 8; i++)
            *reinterpret_cast<__nv_bfloat162 *>(og + i * 8) =
                __floats2bfloat162_rn(o[i][2 * r] * inv, o[i][2 * r + 1] * inv);
        if (tig == 0) lse[(int64_t) (start + row) * H + h] = m[r] * kLn2 + logf(l[r]);
    }
}

// ---------------------------------------------------------------------------------------
// Backward, fast path.

// dK, dV of one 64-key tile for one query head, over all query tiles at or after it. Each
// warp owns 16 keys and walks the queries 32 at a time, so its accumulators are the only
// large state (2 x 16 x HD f32).
template <int HD>
__global__ void __launch_bounds__(kThreads) attn_bwd_dkdv_kernel(
    bf16 * __restrict__ dk, bf16 * __restrict__ dv, float * __restrict__ dk_part, float * __restrict__ dv_part,
    const bf16 * __restrict__ dout, const float * __restrict__ lse, const float * __restrict__ Dv,
    const bf16 * __restrict__ q, const bf16 * __restrict__ k, const bf16 * __restrict__ v,
    const int32_t * __restrict__ seq_start, int n_seq, int H, int Hkv, float scale_log2, float scale) {
    constexpr int LD = Tile<HD>::LD, TE = Tile<HD>::ELEMS;
    extern __shared__ uint4 smem_u4[];
    bf16 * sK = reinterpret_cast<bf16 *>(smem_u4);
    bf16 * sV = sK + TE;
    bf16 * sQ = sV + TE;        // 2 buffers
    bf16 * sO = sQ + 2 * TE;    // dO, 2 buffers
    float * sL = reinterpret_cast<float *>(sO + 2 * TE);  // lse * log2(e), 2 x 64
    float * sD = sL + 2 * kTile;                          // D, 2 x 64

    const BlockPos bp = block_pos(H, n_seq);
    const int h = bp.h, kt = bp.t;
    const int start = seq_start[bp.s], L = seq_start[bp.s + 1] - start;
    const int k0 = kt * kTile;
    if (k0 >= L) return;
    const int group = H / Hkv, kvh = h / group;
    const int64_t qs = (int64_t) H * HD, ks = (int64_t) Hkv * HD;
    const bf16 * qg = q + (int64_t) start * qs + h * HD;
    const bf16 * og = dout + (int64_t) start * qs + h * HD;
    const int last_qt = (L - 1) / kTile;

    auto stage_queries = [&](int qt, int b) {
        const int r0 = qt * kTile;
        load_tile_async<HD>(sQ + b * TE, qg + r0 * qs, qs, L - r0);
        load_tile_async<HD>(sO + b * TE, og + r0 * qs, qs, L - r0);
        if (threadIdx.x < kTile) {
            const int r = r0 + threadIdx.x;
            const int64_t i = (int64_t) (start + r) * H + h;
            sL[b * kTile + threadIdx.x] = r < L ? lse[i] * kLog2e : 0.f;
            sD[b * kTile + threadIdx.x] = r < L ? Dv[i] : 0.f;
        }
    };
    load_tile_async<HD>(sK, k + (int64_t) (start + k0) * ks + kvh * HD, ks, L - k0);
    load_tile_async<HD>(sV, v + (int64_t) (start + k0) * ks + kvh * HD, ks, L - k0);
    stage_queries(kt, 0);
    cp_async_commit();

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, tig = lane & 3;
    const int key0 = k0 + warp * 16 + g;  // this thread's keys: key0 and key0 + 8
    float dka[HD / 8][4], dva[HD / 8][4];
#pragma unroll
    for (int i = 0; i < HD / 8; i++)
#pragma unroll
        for (int e = 0; e < 4; e++) dka[i][e] = dva[i][e] = 0.f;

    for (int qt = kt; qt <= last_qt; qt++) {
        const int buf = (qt - kt) & 1;
        if (qt < last_qt) stage_queries(qt + 1, buf ^ 1);
        cp_async_commit();
        cp_async_wait_one();
        __syncthreads();
        const bf16 * tq = sQ + buf * TE;
        const bf16 * to = sO + buf * TE;
        const float * tl = sL + buf * kTile;
        const float * td = sD + buf * kTile;
#pragma unroll 1
        for (int qc = 0; qc < 2; qc++) {
            // On the diagonal tile, a chunk of queries entirely before this warp's keys is all masked.
            if (qt == kt && qc * 32 + 31 < warp * 16) continue;
            float st[4][4], dpt[4][4];  // S^T and dP^T: 16 keys x 32 queries
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int e = 0; e < 4; e++) st[i][e] = dpt[i][e] = 0.f;
            mma_abt<HD, 4>(st, sK + warp * 16 * LD, tq + qc * 32 * LD, lane);
            mma_abt<HD, 4>(dpt, sV + warp * 16 * LD, to + qc * 32 * LD, lane);
#pragma unroll
            for (int nt = 0; nt < 4; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int c = qc * 32 + nt * 8 + tig * 2 + (e & 1);
                    const int qrow = qt * kTile + c, key = key0 + (e >> 1) * 8;
                    const float p = qrow >= key && qrow < L ? exp2f(st[nt][e] * scale_log2 - tl[c]) : 0.f;
                    st[nt][e] = p;
                    dpt[nt][e] = p * (dpt[nt][e] - td[c]);
                }
            mma_pv<HD, 4>(dva, st, to + qc * 32 * LD, lane);
            mma_pv<HD, 4>(dka, dpt, tq + qc * 32 * LD, lane);
        }
        __syncthreads();
    }

#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int key = key0 + r * 8;
        if (key >= L) continue;
        if (group == 1) {
            const int64_t base = (int64_t) (start + key) * ks + kvh * HD + tig * 2;
#pragma unroll
            for (int i = 0; i < HD / 8; i++) {
                *reinterpret_cast<__nv_bfloat162 *>(dk + base + i * 8) =
                    __floats2bfloat162_rn(dka[i][2 * r] * scale, dka[i][2 * r + 1] * scale);
                *reinterpret_cast<__nv_bfloat162 *>(dv + base + i * 8) =
                    __floats2bfloat162_rn(dva[i][2 * r], dva[i][2 * r + 1]);
            }
        } else {
            const int64_t base = (int64_t) (start + key) * qs + h * HD + tig * 2;
#pragma unroll
            for (int i = 0; i < HD / 8; i++) {
                *reinterpret_cast<float2 *>(dk_part + base + i * 8) =
                    make_float2(dka[i][2 * r] * scale, dka[i][2 * r + 1] * scale);
                *reinterpret_cast<float2 *>(dv_part + base + i * 8) = make_float2(dva[i][2 * r], dva[i][2 * r + 1]);
            }
        }
    }
}

// dQ of one 64-row query tile of one head, over the key tiles up to the diagonal: the
// probabilities are recomputed a second time rather than accumulated across key blocks,
// which is what keeps dQ free of atomics.
template <int HD>
__global__ void __launch_bounds__(kThreads, 1) attn_bwd_dq_kernel(
    bf16 * __restrict__ dq, const bf16 * __restrict__ dout, const float * __restrict__ lse,
    const float * __restrict__ Dv, const bf16 * __restrict__ q, const bf16 * __restrict__ k,
    const bf16 * __restrict__ v, const int32_t * __restrict__ seq_start, int n_seq, int n_tiles, int H, int Hkv,
    float scale_log2, float scale) {
    constexpr int LD = Tile<HD>::LD, TE = Tile<HD>::ELEMS;
    extern __shared__ uint4 smem_u4[];
    bf16 * sQ = reinterpret_cast<bf16 *>(smem_u4);
    bf16 * sO = sQ + TE;       // dO
    bf16 * sK = sO + TE;       // 2 buffers
    bf16 * sV = sK + 2 * TE;   // 2 buffers

    const BlockPos bp = block_pos(H, n_seq);
    const int h = bp.h, qt = n_tiles - 1 - bp.t;
    const int start = seq_start[bp.s], L = seq_start[bp.s + 1] - start;
    const int q0 = qt * kTile;
    if (q0 >= L) return;
    const int kvh = h / (H / Hkv);
    const int64_t qs = (int64_t) H * HD, ks = (int64_t) Hkv * HD;
    const bf16 * kg = k + (int64_t) start * ks + kvh * HD;
    const bf16 * vg = v + (int64_t) start * ks + kvh * HD;

    load_tile_async<HD>(sQ, q + (int64_t) (start + q0) * qs + h * HD, qs, L - q0);
    load_tile_async<HD>(sO, dout + (int64_t) (start + q0) * qs + h * HD, qs, L - q0);
    load_tile_async<HD>(sK, kg, ks, L);
    load_tile_async<HD>(sV, vg, ks, L);
    cp_async_commit();

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, tig = lane & 3;
    const int row0 = q0 + warp * 16 + g;
    // Rows past the sequence get lse = D = 0 over zero Q/dO rows: finite, and never written.
    float l2[2], dd[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int row = row0 + r * 8;
        const int64_t i = (int64_t) (start + row) * H + h;
        l2[r] = row < L ? lse[i] * kLog2e : 0.f;
        dd[r] = row < L ? Dv[i] : 0.f;
    }
    float dqa[HD / 8][4];
#pragma unroll
    for (int i = 0; i < HD / 8; i++) dqa[i][0] = dqa[i][1] = dqa[i][2] = dqa[i][3] = 0.f;

    for (int kt = 0; kt <= qt; kt++) {
        const int buf = kt & 1;
        if (kt < qt) {
            const int k1 = (kt + 1) * kTile;
            load_tile_async<HD>(sK + (buf ^ 1) * TE, kg + k1 * ks, ks, L - k1);
            load_tile_async<HD>(sV + (buf ^ 1) * TE, vg + k1 * ks, ks, L - k1);
        }
        cp_async_commit();
        cp_async_wait_one();
        __syncthreads();
        const bf16 * tk = sK + buf * TE;
        const bf16 * tv = sV + buf * TE;
#pragma unroll 1
        for (int kc = 0; kc < 2; kc++) {
            // On the diagonal tile, a chunk of keys entirely after this warp's rows is all masked.
            if (kt == qt && kc * 32 > warp * 16 + 15) continue;
            float sc[4][4], dp[4][4];  // 16 rows x 32 keys
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int e = 0; e < 4; e++) sc[i][e] = dp[i][e] = 0.f;
            mma_abt<HD, 4>(sc, sQ + warp * 16 * LD, tk + kc * 32 * LD, lane);
            mma_abt<HD, 4>(dp, sO + warp * 16 * LD, tv + kc * 32 * LD, lane);
#pragma unroll
            for (int nt = 0; nt < 4; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int key = kt * kTile + kc * 32 + nt * 8 + tig * 2 + (e & 1);
                    const int row = row0 + (e >> 1) * 8;
                    const float p = key <= row ? exp2f(sc[nt][e] * scale_log2 - l2[e >> 1]) : 0.f;
                    sc[nt][e] = p * (dp[nt][e] - dd[e >> 1]);
                }
            mma_pv<HD, 4>(dqa, sc, tk + kc * 32 * LD, lane);
        }
        __syncthreads();
    }

#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int row = row0 + r * 8;
        if (row >= L) continue;
        bf16 * dg = dq + (int64_t) (start + row) * qs + h * HD + tig * 2;
#pragma unroll
        for (int i = 0; i < HD / 8; i++)
            *reinterpret_cast<__nv_bfloat162 *>(dg + i * 8) =
                __floats2bfloat162_rn(dqa[i][2 * r] * scale, dqa[i][2 * r + 1] * scale);
    }
}

// dk[n, g, :] = sum over the group's query heads, in head order, of the f32 partials.
__global__ void gqa_reduce_kernel(bf16 * __restrict__ dk, bf16 * __restrict__ dv, const float * __restrict__ dk_part,
                                  const float * __restrict__ dv_part, int64_t N, int H, int Hkv, int hd) {
    const int64_t idx = (int64_t) blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= N * Hkv * hd) return;
    const int e = (int) (idx % hd);
    const int gh = (int) ((idx / hd) % Hkv);
    const int64_t n = idx / ((int64_t) Hkv * hd);
    const int group = H / Hkv;
    const int64_t base = (n * H + (int64_t) gh * group) * hd + e;
    float sk = 0.f, sv = 0.f;
    for (int t = 0; t < group; t++) {
        sk += dk_part[base + (int64_t) t * hd];
        sv += dv_part[base + (int64_t) t * hd];
    }
    dk[idx] = __float2bfloat16(sk);
    dv[idx] = __float2bfloat16(sv);
}

// ---------------------------------------------------------------------------------------
// Shared by both paths, and the generic path (any hd <= 256): one warp per row, lanes over
// keys for the dot products and over dimensions for the accumulations. Butterfly shuffles
// leave the same bits in every lane, so the reductions are deterministic.

constexpr int kGenDims = 8;  // 256 / 32 dimensions per lane

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}

// D[n, h] = dO[n, h, :] . o[n, h, :]
__global__ void attn_bwd_dot_kernel(float * __restrict__ Dv, const bf16 * __restrict__ dout,
                                    const bf16 * __restrict__ out, int64_t NH, int hd) {
    const int64_t w = (int64_t) blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (w >= NH) return;
    const bf16 * a = dout + w * hd;
    const bf16 * b = out + w * hd;
    float s = 0.f;
    for (int e = lane; e < hd; e += 32) s += __bfloat162float(a[e]) * __bfloat162float(b[e]);
    s = warp_sum(s);
    if (lane == 0) Dv[w] = s;
}

__device__ __forceinline__ float dot_smem(const float * x, const bf16 * y, int hd) {
    float d = 0.f;
    for (int e = 0; e < hd; e++) d += x[e] * __bfloat162float(y[e]);
    return d;
}

// blockIdx.y: sequence; warp w of the sequence: row w / H, head w % H.
__global__ void gen_fwd_kernel(bf16 * __restrict__ out, float * __restrict__ lse, const bf16 * __restrict__ q,
                               const bf16 * __restrict__ k, const bf16 * __restrict__ v,
                               const int32_t * __restrict__ seq_start, int H, int Hkv, int hd, float scale) {
    __shared__ float sq[4][256];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t w = (int64_t) blockIdx.x * 4 + warp;
    const int start = seq_start[blockIdx.y], L = seq_start[blockIdx.y + 1] - start;
    const int i = (int) (w / H), h = (int) (w % H);
    if (i >= L) return;  // whole warp
    const int kvh = h / (H / Hkv);
    const int64_t qs = (int64_t) H * hd, ks = (int64_t) Hkv * hd;
    const bf16 * qi = q + (int64_t) (start + i) * qs + h * hd;
    for (int e = lane; e < hd; e += 32) sq[warp][e] = __bfloat162float(qi[e]);
    __syncwarp();
    const bf16 * kb = k + (int64_t) start * ks + kvh * hd;
    const bf16 * vb = v + (int64_t) start * ks + kvh * hd;
    float o[kGenDims] = {};
    float m = -INFINITY, l = 0.f;
    for (int j0 = 0; j0 <= i; j0 += 32) {
        const int j = j0 + lane;
        const float s = j <= i ? dot_smem(sq[warp], kb + j * ks, hd) * scale : -INFINITY;
        const float mn = fmaxf(m, warp_max(s));
        const float corr = expf(m - mn);
        const float p = j <= i ? expf(s - mn) : 0.f;
        l = l * corr + warp_sum(p);
        m = mn;
#pragma unroll
        for (int t = 0; t < kGenDims; t++) o[t] *= corr;
        const int nj = min(32, i - j0 + 1);
        for (int jj = 0; jj < nj; jj++) {
            const float pj = __shfl_sync(0xffffffffu, p, jj);
            const bf16 * vj = vb + (j0 + jj) * ks;
#pragma unroll
            for (int t = 0; t < kGenDims; t++) {
                const int e = lane + 32 * t;
                if (e < hd) o[t] += pj * __bfloat162float(vj[e]);
            }
        }
    }
    const float inv = 1.f / l;
    bf16 * oi = out + (int64_t) (start + i) * qs + h * hd;
#pragma unroll
    for (int t = 0; t < kGenDims; t++) {
        const int e = lane + 32 * t;
        if (e < hd) oi[e] = __float2bfloat16(o[t] * inv);
    }
    if (lane == 0) lse[(int64_t) (start + i) * H + h] = m + logf(l);
}

__global__ void gen_bwd_dq_kernel(bf16 * __restrict__ dq, const bf16 * __restrict__ dout,
                                  const float * __restrict__ lse, const float * __restrict__ Dv,
                                  const bf16 * __restrict__ q, const bf16 * __restrict__ k,
                                  const bf16 * __restrict__ v, const int32_t * __restrict__ seq_start, int H, int Hkv,
                                  int hd, float scale) {
    __shared__ float sq[4][256], so[4][256];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t w = (int64_t) blockIdx.x * 4 + warp;
    const int start = seq_start[blockIdx.y], L = seq_start[blockIdx.y + 1] - start;
    const int i = (int) (w / H), h = (int) (w % H);
    if (i >= L) return;
    const int kvh = h / (H / Hkv);
    const int64_t qs = (int64_t) H * hd, ks = (int64_t) Hkv * hd;
    const int64_t row = (int64_t) (start + i) * qs + h * hd;
    for (int e = lane; e < hd; e += 32) {
        sq[warp][e] = __bfloat162float(q[row + e]);
        so[warp][e] = __bfloat162float(dout[row + e]);
    }
    __syncwarp();
    const float li = lse[(int64_t) (start + i) * H + h], Di = Dv[(int64_t) (start + i) * H + h];
    const bf16 * kb = k + (int64_t) start * ks + kvh * hd;
    const bf16 * vb = v + (int64_t) start * ks + kvh * hd;
    float acc[kGenDims] = {};
    for (int j0 = 0; j0 <= i; j0 += 32) {
        const int j = j0 + lane;
        float ds = 0.f;
        if (j <= i) {
            const float p = expf(dot_smem(sq[warp], kb + j * ks, hd) * scale - li);
            ds = p * (dot_smem(so[warp], vb + j * ks, hd) - Di);
        }
        const int nj = min(32, i - j0 + 1);
        for (int jj = 0; jj < nj; jj++) {
            const float dsj = __shfl_sync(0xffffffffu, ds, jj);
            const bf16 * kj = kb + (j0 + jj) * ks;
#pragma unroll
            for (int t = 0; t < kGenDims; t++) {
                const int e = lane + 32 * t;
                if (e < hd) acc[t] += dsj * __bfloat162float(kj[e]);
            }
        }
    }
#pragma unroll
    for (int t = 0; t < kGenDims; t++) {
        const int e = lane + 32 * t;
        if (e < hd) dq[row + e] = __float2bfloat16(acc[t] * scale);
    }
}

// Warp per (key row, kv head): loops over the group's query heads in order, so dk/dv of a
// kv head are summed by one warp and written once.
__global__ void gen_bwd_dkdv_kernel(bf16 * __restrict__ dk, bf16 * __restrict__ dv, const bf16 * __restrict__ dout,
                                    const float * __restrict__ lse, const float * __restrict__ Dv,
                                    const bf16 * __restrict__ q, const bf16 * __restrict__ k,
                                    const bf16 * __restrict__ v, const int32_t * __restrict__ seq_start, int H,
                                    int Hkv, int hd, float scale) {
    __shared__ float sk[4][256], sv[4][256];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t w = (int64_t) blockIdx.x * 4 + warp;
    const int start = seq_start[blockIdx.y], L = seq_start[blockIdx.y + 1] - start;
    const int j = (int) (w / Hkv), kvh = (int) (w % Hkv);
    if (j >= L) return;
    const int group = H / Hkv;
    const int64_t qs = (int64_t) H * hd, ks = (int64_t) Hkv * hd;
    const int64_t krow = (int64_t) (start + j) * ks + kvh * hd;
    for (int e = lane; e < hd; e += 32) {
        sk[warp][e] = __bfloat162float(k[krow + e]);
        sv[warp][e] = __bfloat162float(v[krow + e]);
    }
    __syncwarp();
    float ak[kGenDims] = {}, av[kGenDims] = {};
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        const bf16 * qb = q + (int64_t) start * qs + h * hd;
        const bf16 * ob = dout + (int64_t) start * qs + h * hd;
        for (int i0 = j; i0 < L; i0 += 32) {
            const int i = i0 + lane;
            float p = 0.f, ds = 0.f;
            if (i < L) {
                const int64_t li = (int64_t) (start + i) * H + h;
                p = expf(dot_smem(sk[warp], qb + i * qs, hd) * scale - lse[li]);
                ds = p * (dot_smem(sv[warp], ob + i * qs, hd) - Dv[li]);
            }
            const int ni = min(32, L - i0);
            for (int ii = 0; ii < ni; ii++) {
                const float pi = __shfl_sync(0xffffffffu, p, ii);
                const float dsi = __shfl_sync(0xffffffffu, ds, ii);
                const bf16 * qi = qb + (i0 + ii) * qs;
                const bf16 * oi = ob + (i0 + ii) * qs;
#pragma unroll
                for (int t = 0; t < kGenDims; t++) {
                    const int e = lane + 32 * t;
                    if (e < hd) {
                        av[t] += pi * __bfloat162float(oi[e]);
                        ak[t] += dsi * __bfloat162float(qi[e]);
                    }
                }
            }
        }
    }
#pragma unroll
    for (int t = 0; t < kGenDims; t++) {
        const int e = lane + 32 * t;
        if (e < hd) {
            dk[krow + e] = __float2bfloat16(ak[t] * scale);
            dv[krow + e] = __float2bfloat16(av[t]);
        }
    }
}

// ---------------------------------------------------------------------------------------

size_t align256(size_t b) {
    return (b + 255) & ~(size_t) 255;
}

bool has_fast_path(int hd) {
    return hd == 64 || hd == 128;
}

// The fast kernels move 16-byte chunks; anything else takes the generic path.
bool aligned16(std::initializer_list<const void *> ptrs) {
    for (const void * p : ptrs)
        if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
    return true;
}

template <int HD> constexpr size_t fwd_smem() {
    return (size_t) 5 * Tile<HD>::ELEMS * sizeof(bf16);
}
template <int HD> constexpr size_t dkdv_smem() {
    return (size_t) 6 * Tile<HD>::ELEMS * sizeof(bf16) + 4 * kTile * sizeof(float);
}
template <int HD> constexpr size_t dq_smem() {
    return (size_t) 6 * Tile<HD>::ELEMS * sizeof(bf16);
}

template <int HD>
void launch_fwd(bf16 * out, float * lse, const bf16 * q, const bf16 * k, const bf16 * v, const int32_t * seq_start,
                int n_seq, int max_len, int H, int Hkv, float scale, cudaStream_t stream) {
    const int n_tiles = (max_len + kTile - 1) / kTile;
    cudaFuncSetAttribute(attn_fwd_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int) fwd_smem<HD>());
    attn_fwd_kernel<HD><<<n_tiles * n_seq * H, kThreads, fwd_smem<HD>(), stream>>>(
        out, lse, q, k, v, seq_start, n_seq, n_tiles, H, Hkv, scale * kLog2e);
}

template <int HD>
void launch_bwd(bf16 * dq, bf16 * dk, bf16 * dv, float * dk_part, float * dv_part, const bf16 * dout,
                const float * lse, const float * Dv, const bf16 * q, const bf16 * k, const bf16 * v,
                const int32_t * seq_start, int n_seq, int max_len, int H, int Hkv, float scale, cudaStream_t stream) {
    const int n_tiles = (max_len + kTile - 1) / kTile;
    const int blocks = n_tiles * n_seq * H;
    cudaFuncSetAttribute(attn_bwd_dkdv_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int) dkdv_smem<HD>());
    cudaFuncSetAttribute(attn_bwd_dq_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int) dq_smem<HD>());
    attn_bwd_dkdv_kernel<HD><<<blocks, kThreads, dkdv_smem<HD>(), stream>>>(
        dk, dv, dk_part, dv_part, dout, lse, Dv, q, k, v, seq_start, n_seq, H, Hkv, scale * kLog2e, scale);
    attn_bwd_dq_kernel<HD><<<blocks, kThreads, dq_smem<HD>(), stream>>>(dq, dout, lse, Dv, q, k, v, seq_start,
                                                                          n_seq, n_tiles, H, Hkv, scale * kLog2e,
                                                                          scale);
}

}  // namespace

void attention_forward(bf16 * out, float * lse, const bf16 * q, const bf16 * k, const bf16 * v,
                       const int32_t * seq_start, int n_seq, int max_len, int64_t N, int H, int Hkv, int hd,
                       cudaStream_t stream) {
    if (N <= 0 || n_seq <= 0 || max_len <= 0) return;
    const float scale = (float) (1.0 / std::sqrt((double) hd));
    if (has_fast_path(hd) && aligned16({out, q, k, v})) {
        if (hd == 64) launch_fwd<64>(out, lse, q, k, v, seq_start, n_seq, max_len, H, Hkv, scale, stream);
        else launch_fwd<128>(out, lse, q, k, v, seq_start, n_seq, max_len, H, Hkv, scale, stream);
        return;
    }
    const dim3 grid((unsigned) (((int64_t) max_len * H + 3) / 4), (unsigned) n_seq);
    gen_fwd_kernel<<<grid, 128, 0, stream>>>(out, lse, q, k, v, seq_start, H, Hkv, hd, scale);
}

size_t attention_backward_scratch(int64_t N, int H, int Hkv, int hd) {
    size_t b = align256((size_t) N * H * sizeof(float));  // D
    if (has_fast_path(hd) && H != Hkv) b += 2 * align256((size_t) N * H * hd * sizeof(float));  // dK, dV partials
    return b;
}

void attention_backward(bf16 * dq, bf16 * dk, bf16 * dv, const bf16 * dout, const bf16 * out, const float * lse,
                        const bf16 * q, const bf16 * k, const bf16 * v, const int32_t * seq_start, int n_seq,
                        int max_len, int64_t N, int H, int Hkv, int hd, void * scratch, cudaStream_t stream) {
    if (N <= 0 || n_seq <= 0 || max_len <= 0) return;
    const float scale = (float) (1.0 / std::sqrt((double) hd));
    char * sp = static_cast<char *>(scratch);
    float * Dv = reinterpret_cast<float *>(sp);
    sp += align256((size_t) N * H * sizeof(float));
    const int64_t NH = N * H;
    attn_bwd_dot_kernel<<<(unsigned) ((NH + 3) / 4), 128, 0, stream>>>(Dv, dout, out, NH, hd);

    if (has_fast_path(hd) && aligned16({dq, dk, dv, dout, q, k, v})) {
        float * dk_part = nullptr, * dv_part = nullptr;
        if (H != Hkv) {
            dk_part = reinterpret_cast<float *>(sp);
            dv_part = reinterpret_cast<float *>(sp + align256((size_t) N * H * hd * sizeof(float)));
        }
        if (hd == 64)
            launch_bwd<64>(dq, dk, dv, dk_part, dv_part, dout, lse, Dv, q, k, v, seq_start, n_seq, max_len, H, Hkv,
                           scale, stream);
        else
            launch_bwd<128>(dq, dk, dv, dk_part, dv_part, dout, lse, Dv, q, k, v, seq_start, n_seq, max_len, H, Hkv,
                            scale, stream);
        if (H != Hkv) {
            const int64_t n = N * Hkv * hd;
            gqa_reduce_kernel<<<(unsigned) ((n + 255) / 256), 256, 0, stream>>>(dk, dv, dk_part, dv_part, N, H, Hkv,
                                                                                hd);
        }
        return;
    }
    const dim3 gq((unsigned) (((int64_t) max_len * H + 3) / 4), (unsigned) n_seq);
    const dim3 gk((unsigned) (((int64_t) max_len * Hkv + 3) / 4), (unsigned) n_seq);
    gen_bwd_dq_kernel<<<gq, 128, 0, stream>>>(dq, dout, lse, Dv, q, k, v, seq_start, H, Hkv, hd, scale);
    gen_bwd_dkdv_kernel<<<gk, 128, 0, stream>>>(dk, dv, dout, lse, Dv, q, k, v, seq_start, H, Hkv, hd, scale);
}

}  // namespace selftune::train::cuda
