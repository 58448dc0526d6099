// Checker and benchmark for the CUDA training backend's kernels (train/cuda/kernels.cuh),
// llm.c style: for each kernel, fresh random inputs, outputs poisoned with NaN, one launch
// compared against a CPU reference (the CPU backend's ops, the optimizer, rng.h, and
// ggml's own quantizers/dequantizers), then timed with CUDA events (warm-up, median of
// many launches, inputs rotated through copies that together exceed the L2 cache) and
// reported as achieved bandwidth beside the H200's HBM figure.
//
// Build and run: native/bench/train_cuda_kernels.sh. Exit status 1 if any check fails,
// 2 if there is no CUDA device.
#include "train/cuda/common.cuh"
#include "train/cuda/ggml_blocks.cuh"
#include "train/cuda/kernels.cuh"
#include "train_cuda_kernels_ref.h"

#include "ggml.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

using namespace selftune::train::cuda;
namespace gb = selftune::train::cuda::ggml_blocks;

static_assert(gb::kF32 == (int) GGML_TYPE_F32 && gb::kF16 == (int) GGML_TYPE_F16 && gb::kBF16 == (int) GGML_TYPE_BF16 &&
                  gb::kQ8_0 == (int) GGML_TYPE_Q8_0 && gb::kQ4_K == (int) GGML_TYPE_Q4_K && gb::kQ6_K == (int) GGML_TYPE_Q6_K,
              "ggml_blocks' type numbers must be ggml's");

namespace {

constexpr double kPeakGBs = 4800.0;           // H200 HBM3e
constexpr double kRotateBytes = 150.0e6;      // 3x the H200's 50 MB L2
constexpr int kReps = 100;

int g_failures = 0;
int g_checks = 0;

// ---- host data ---------------------------------------------------------------------------

struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed * 0x9e3779b97f4a7c15ull + 1) {}
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    float uniform() { return (float) (next() >> 40) * (1.0f / 16777216.0f); }   // [0, 1)
    float normal() {
        const float u1 = 1.0f - uniform(), u2 = uniform();
        return std::sqrt(-2.0f * std::log(u1)) * std::cos(6.2831853f * u2);
    }
};

std::vector<float> normals(size_t n, float scale, uint64_t seed) {
    std::vector<float> v(n);
    const int64_t chunk = 1 << 16;
    ref::parallel_rows(((int64_t) n + chunk - 1) / chunk, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; c++) {
            Rng r(seed * 1000003ull + (uint64_t) c);
            for (int64_t i = c * chunk; i < std::min<int64_t>((int64_t) n, (c + 1) * chunk); i++) v[i] = scale * r.normal();
        }
    });
    return v;
}

uint16_t f2bf(float f) {   // round to nearest even, as __float2bfloat16_rn
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t) ((u >> 16) | 0x40);
    return (uint16_t) ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
float bf2f(uint16_t b) {
    const uint32_t u = (uint32_t) b << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
std::vector<uint16_t> to_bf16(const std::vector<float> & v) {
    std::vector<uint16_t> o(v.size());
    for (size_t i = 0; i < v.size(); i++) o[i] = f2bf(v[i]);
    return o;
}
std::vector<float> from_bf16(const std::vector<uint16_t> & v) {
    std::vector<float> o(v.size());
    for (size_t i = 0; i < v.size(); i++) o[i] = bf2f(v[i]);
    return o;
}

// ---- device buffers: K copies of one array (the rotation sets), 256-byte aligned each ---

template <typename T>
struct Sets {
    T * base = nullptr;
    size_t n = 0, stride = 0;
    int k = 1;
    Sets(size_t n_, int k_) : n(n_), k(k_) {
        stride = (n * sizeof(T) + 255) / 256 * 256 / sizeof(T);
        CUDA_CHECK(cudaMalloc(&base, std::max<size_t>(1, stride * sizeof(T) * k)));
    }
    Sets(const Sets &) = delete;
    Sets & operator=(const Sets &) = delete;
    ~Sets() { cudaFree(base); }
    T * at(int i) const { return base + stride * (size_t) (i % k); }
    T * operator()() const { return base; }
    // Set 0 from the host, then copied to the others.
    void upload(const T * h) {
        CUDA_CHECK(cudaMemcpy(base, h, n * sizeof(T), cudaMemcpyHostToDevice));
        for (int i = 1; i < k; i++) CUDA_CHECK(cudaMemcpy(at(i), base, n * sizeof(T), cudaMemcpyDeviceToDevice));
    }
    void upload(const std::vector<T> & h) { upload(h.data()); }
    void poison() {   // all-ones bytes: NaN as f32 and as bf16
        CUDA_CHECK(cudaMemset(base, 0xff, stride * sizeof(T) * k));
    }
    // Set 0 back, as T or as the raw bits of T (U of the same size: bf16 as uint16_t).
    template <typename U = T>
    std::vector<U> download() const {
        static_assert(sizeof(U) == sizeof(T), "download as a type of the same size");
        std::vector<U> h(n);
        CUDA_CHECK(cudaDeviceSynchronize());
        CUDA_CHECK(cudaMemcpy(h.data(), base, n * sizeof(T), cudaMemcpyDeviceToHost));
        return h;
    }
};

int rotation(double bytes_per_call) {
    return (int) std::clamp(std::ceil(kRotateBytes / std::max(1.0, bytes_per_call)), 1.0, 32.0);
}

// ---- comparison ----------------------------------------------------------------------------

struct Err {
    double max_abs = 0, rel = 0;
    int64_t nonfinite = 0, mismatched = 0;   // mismatched: values not bit-equal to the reference
};

Err compare(const float * out, const float * ref, int64_t n) {
    Err e;
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        const double o = out[i], r = ref[i];
        if (!std::isfinite(o) && std::isfinite(r)) {
            e.nonfinite++;
            continue;
        }
        const double d = std::fabs(o - r);
        e.max_abs = std::max(e.max_abs, d);
        num += d * d;
        den += r * r;
        if (std::memcmp(&out[i], &ref[i], 4) != 0) e.mismatched++;
    }
    e.rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
    if (e.nonfinite) e.rel = INFINITY;
    return e;
}

Err compare(const std::vector<float> & out, const std::vector<float> & ref) {
    return compare(out.data(), ref.data(), (int64_t) out.size());
}

// bf16 output against an f32 reference: the error, and how many differ from bf16(ref).
Err compare_bf16(const std::vector<uint16_t> & out, const std::vector<float> & ref) {
    const std::vector<float> o = from_bf16(out);
    Err e = compare(o, ref);
    e.mismatched = 0;
    for (size_t i = 0; i < out.size(); i++) e.mismatched += out[i] != f2bf(ref[i]);
    return e;
}

// exact: the values must equal the reference's bit for bit.
bool report(const std::string & name, const std::string & shape, const char * what, const Err & e, double tol,
            bool exact = false, int64_t n = 0) {
    const bool ok = e.nonfinite == 0 && e.rel <= tol && (!exact || e.mismatched == 0);
    g_checks++;
    if (!ok) g_failures++;
    std::printf("  %-4s %-26s %-34s %-8s max|d| %9.3e  rel %9.3e  tol %7.1e%s", ok ? "PASS" : "FAIL", name.c_str(),
                shape.c_str(), what, e.max_abs, e.rel, tol, exact ? " exact" : "");
    if (n > 0) std::printf("  !=ref %lld/%lld", (long long) e.mismatched, (long long) n);
    if (e.nonfinite) std::printf("  NONFINITE %lld", (long long) e.nonfinite);
    std::printf("\n");
    return ok;
}

// ---- timing --------------------------------------------------------------------------------

struct Timing {
    std::string name, shape;
    double us = 0, gbs = 0;
};
std::vector<Timing> g_timings;

// launch(i) runs the kernel on rotation set i; bytes: the traffic one call must move.
void bench(const std::string & name, const std::string & shape, double bytes, const std::function<void(int)> & launch) {
    for (int i = 0; i < 5; i++) launch(i);
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<cudaEvent_t> ev(2 * kReps);
    for (auto & e : ev) CUDA_CHECK(cudaEventCreate(&e));
    for (int r = 0; r < kReps; r++) {
        CUDA_CHECK(cudaEventRecord(ev[2 * r]));
        launch(r);
        CUDA_CHECK(cudaEventRecord(ev[2 * r + 1]));
    }
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<float> ms(kReps);
    for (int r = 0; r < kReps; r++) CUDA_CHECK(cudaEventElapsedTime(&ms[r], ev[2 * r], ev[2 * r + 1]));
    for (auto & e : ev) CUDA_CHECK(cudaEventDestroy(e));
    std::nth_element(ms.begin(), ms.begin() + kReps / 2, ms.end());
    Timing t{name, shape, ms[kReps / 2] * 1e3, 0};
    t.gbs = bytes / (t.us * 1e-6) / 1e9;
    std::printf("  time %-26s %-34s %10.1f us  %8.1f GB/s  (%4.1f%% of %.0f)\n", name.c_str(), shape.c_str(), t.us,
                t.gbs, 100.0 * t.gbs / kPeakGBs, kPeakGBs);
    g_timings.push_back(t);
}

std::string dims(std::initializer_list<int64_t> d, const char * names) {
    std::string s;
    const char * p = names;
    for (int64_t v : d) {
        const char * q = std::strchr(p, ',');
        const std::string nm = q ? std::string(p, q) : std::string(p);
        s += (s.empty() ? "" : " ") + nm + "=" + std::to_string(v);
        p = q ? q + 1 : p + std::strlen(p);
    }
    return s;
}

// ---- ggml host side ---------------------------------------------------------------------------

std::vector<uint8_t> quantize(int type, const std::vector<float> & src, int64_t rows, int64_t cols) {
    const size_t rb = ggml_row_size((ggml_type) type, cols);
    std::vector<uint8_t> q(rb * (size_t) rows);
    ggml_quantize_init((ggml_type) type);
    ref::parallel_rows(rows, [&](int64_t r0, int64_t r1) {
        ggml_quantize_chunk((ggml_type) type, src.data(), q.data(), r0 * cols, r1 - r0, cols, nullptr);
    });
    return q;
}

void to_float(int type, const uint8_t * q, float * out, int64_t n) {
    if (type == GGML_TYPE_F32) {
        std::memcpy(out, q, (size_t) n * 4);
        return;
    }
    ggml_get_type_traits((ggml_type) type)->to_float(q, out, n);
}

// ---- the checks -----------------------------------------------------------------------------

void test_dequant(int type, int64_t rows, int64_t cols, bool timed) {
    const std::string name = std::string("dequant ") + ggml_type_name((ggml_type) type);
    const std::string shape = dims({rows, cols}, "rows,cols");
    const int64_t n = rows * cols;
    const std::vector<float> src = normals((size_t) n, 0.02f, 11 + type);
    const std::vector<uint8_t> q = quantize(type, src, rows, cols);
    std::vector<float> want((size_t) n);
    ref::parallel_rows(rows, [&](int64_t r0, int64_t r1) {
        const size_t rb = q.size() / (size_t) rows;
        for (int64_t r = r0; r < r1; r++) to_float(type, q.data() + rb * r, want.data() + r * cols, cols);
    });
    const double bytes = (double) q.size() + 2.0 * n;
    const int k = timed ? rotation(bytes) : 1;
    Sets<uint8_t> dq(q.size(), k);
    Sets<bf16> out((size_t) n, k);
    dq.upload(q);
    out.poison();
    dequantize_bf16(out(), dq(), type, rows, cols, 0);
    const auto got = out.download<uint16_t>();
    report(name, shape, "bf16", compare_bf16(got, want), 1e-2, false,
           n);
    if (timed) bench(name, shape, bytes, [&](int i) { dequantize_bf16(out.at(i), dq.at(i), type, rows, cols, 0); });
}

void test_embedding(int type, int64_t vocab, int64_t D, int64_t N, bool timed) {
    const std::string name = std::string("embedding ") + ggml_type_name((ggml_type) type);
    const std::string shape = dims({N, D, vocab}, "N,D,vocab");
    const std::vector<float> table = normals((size_t) (vocab * D), 0.05f, 21 + type);
    const std::vector<uint8_t> q = quantize(type, table, vocab, D);
    const size_t rb = q.size() / (size_t) vocab;
    Rng r(31);
    const int64_t k_sets = timed ? rotation((double) N * (rb + 4.0 * D)) : 1;
    std::vector<int32_t> tokens((size_t) (N * k_sets));
    for (auto & t : tokens) t = (int32_t) (r.next() % (uint64_t) vocab);
    std::vector<float> want((size_t) (N * D));
    for (int64_t n = 0; n < N; n++) to_float(type, q.data() + rb * tokens[n], want.data() + n * D, D);
    Sets<uint8_t> dt(q.size(), 1);
    dt.upload(q);
    Sets<int32_t> dtok((size_t) N, (int) k_sets);
    for (int i = 0; i < k_sets; i++)
        CUDA_CHECK(cudaMemcpy(dtok.at(i), tokens.data() + N * i, N * 4, cudaMemcpyHostToDevice));
    Sets<float> out((size_t) (N * D), (int) k_sets);
    out.poison();
    embedding_forward(out(), dtok(), dt(), type, N, D, 0);
    report(name, shape, "f32", compare(out.download(), want), 1e-6, false, N * D);
    if (timed)
        bench(name, shape, (double) N * (rb + 4.0 * D + 4.0),
              [&](int i) { embedding_forward(out.at(i), dtok.at(i), dt(), type, N, D, 0); });
}

void test_rmsnorm(int64_t N, int64_t D, bool timed) {
    const std::string shape = dims({N, D}, "N,D");
    std::vector<float> x = normals((size_t) (N * D), 1.0f, 41);
    Rng r(42);
    for (int64_t n = 0; n < N; n++) {
        const float s = 0.25f + 4.0f * r.uniform();
        for (int64_t d = 0; d < D; d++) x[n * D + d] *= s;
    }
    std::vector<float> w = normals((size_t) D, 0.1f, 43);
    for (auto & v : w) v += 1.0f;
    const float eps = 1e-6f;
    std::vector<float> y_ref((size_t) (N * D)), r_ref((size_t) N);
    ref::rmsnorm_forward(y_ref.data(), r_ref.data(), x.data(), w.data(), N, D, eps);

    const double fbytes = (double) N * D * 6 + N * 4.0 + D * 4.0;
    const int kf = timed ? rotation(fbytes) : 1;
    Sets<float> dx_in((size_t) (N * D), kf), dw((size_t) D, 1), drstd((size_t) N, kf);
    Sets<bf16> dy_out((size_t) (N * D), kf);
    dx_in.upload(x);
    dw.upload(w);
    dy_out.poison();
    drstd.poison();
    rmsnorm_forward(dy_out(), drstd(), dx_in(), dw(), N, D, eps, 0);
    const auto y = dy_out.download<uint16_t>();
    report("rmsnorm_forward", shape, "y bf16", compare_bf16(y, y_ref),
           1e-2);
    report("rmsnorm_forward", shape, "rstd f32", compare(drstd.download(), r_ref), 1e-5);
    if (timed)
        bench("rmsnorm_forward", shape, fbytes,
              [&](int i) { rmsnorm_forward(dy_out.at(i), drstd.at(i), dx_in.at(i), dw(), N, D, eps, 0); });

    // backward: dx += ..., so dx starts from random values rather than poison.
    const std::vector<float> dy = normals((size_t) (N * D), 1.0f, 44);
    std::vector<float> dx_ref = normals((size_t) (N * D), 1.0f, 45);
    const std::vector<float> dx0 = dx_ref;
    ref::rmsnorm_backward(dx_ref.data(), dy.data(), x.data(), r_ref.data(), w.data(), N, D);
    const double bbytes = (double) N * D * 16 + N * 4.0 + D * 4.0;
    const int kb = timed ? rotation(bbytes) : 1;
    Sets<float> ddy((size_t) (N * D), kb), dxx((size_t) (N * D), kb), ddx((size_t) (N * D), kb), dr((size_t) N, kb);
    ddy.upload(dy);
    dxx.upload(x);
    ddx.upload(dx0);
    dr.upload(r_ref);
    rmsnorm_backward(ddx(), ddy(), dxx(), dr(), dw(), N, D, 0);
    report("rmsnorm_backward", shape, "dx f32", compare(ddx.download(), dx_ref), 1e-5);
    if (timed)
        bench("rmsnorm_backward", shape, bbytes,
              [&](int i) { rmsnorm_backward(ddx.at(i), ddy.at(i), dxx.at(i), dr.at(i), dw(), N, D, 0); });
}

void test_rope(int64_t N, int H, int hd, int mode, float base, bool inverse, bool timed) {
    const std::string name = std::string("rope ") + (mode == 0 ? "norm" : "neox") + (inverse ? " inverse" : "");
    const std::string shape = dims({N, H, hd}, "N,H,hd") + " base=" + std::to_string((int) base);
    const int64_t n = N * H * hd;
    const std::vector<uint16_t> xb = to_bf16(normals((size_t) n, 1.0f, 51 + hd));
    std::vector<int32_t> pos((size_t) N);
    for (int64_t i = 0; i < N; i++) pos[i] = (int32_t) (i % 4096);   // every position up to 4095
    std::vector<float> want = from_bf16(xb);
    ref::rope(want.data(), pos.data(), N, H, hd, mode, base, inverse);
    const double bytes = 4.0 * n + 4.0 * N;
    const int k = timed ? rotation(bytes) : 1;
    Sets<bf16> dx((size_t) n, k);
    Sets<int32_t> dpos((size_t) N, 1);
    dx.upload(reinterpret_cast<const bf16 *>(xb.data()));
    dpos.upload(pos);
    rope(dx(), dpos(), N, H, hd, mode, base, inverse, 0);
    const auto got = dx.download<uint16_t>();
    report(name, shape, "bf16", compare_bf16(got, want), 1e-2, false,
           n);
    if (timed) bench(name, shape, bytes, [&](int i) { rope(dx.at(i), dpos(), N, H, hd, mode, base, inverse, 0); });
}

void test_swiglu(int64_t N, int64_t F, bool timed) {
    const std::string shape = dims({N, F}, "N,F");
    const int64_t n = N * F;
    const std::vector<uint16_t> g = to_bf16(normals((size_t) n, 2.0f, 61)), u = to_bf16(normals((size_t) n, 1.0f, 62));
    const std::vector<float> gf = from_bf16(g), uf = from_bf16(u), dh = normals((size_t) n, 1.0f, 63);
    std::vector<float> h_ref((size_t) n), dg_ref((size_t) n), du_ref((size_t) n);
    ref::swiglu_forward(h_ref.data(), gf.data(), uf.data(), n);
    ref::swiglu_backward(dg_ref.data(), du_ref.data(), dh.data(), gf.data(), uf.data(), n);

    const int kf = timed ? rotation(6.0 * n) : 1, kb = timed ? rotation(12.0 * n) : 1;
    const int k = std::max(kf, kb);
    Sets<bf16> dg_in((size_t) n, k), du_in((size_t) n, k), dh_out((size_t) n, kf), dgo((size_t) n, kb),
        duo((size_t) n, kb);
    Sets<float> ddh((size_t) n, kb);
    dg_in.upload(reinterpret_cast<const bf16 *>(g.data()));
    du_in.upload(reinterpret_cast<const bf16 *>(u.data()));
    ddh.upload(dh);
    dh_out.poison();
    dgo.poison();
    duo.poison();
    swiglu_forward(dh_out(), dg_in(), du_in(), n, 0);
    auto h = dh_out.download<uint16_t>();
    report("swiglu_forward", shape, "h bf16", compare_bf16(h, h_ref), 1e-2);
    swiglu_backward(dgo(), duo(), ddh(), dg_in(), du_in(), n, 0);
    auto dgv = dgo.download<uint16_t>(), duv = duo.download<uint16_t>();
    report("swiglu_backward", shape, "dg bf16", compare_bf16(dgv, dg_ref),
           1e-2);
    report("swiglu_backward", shape, "du bf16", compare_bf16(duv, du_ref),
           1e-2);
    if (timed) {
        bench("swiglu_forward", shape, 6.0 * n, [&](int i) { swiglu_forward(dh_out.at(i), dg_in.at(i), du_in.at(i), n, 0); });
        bench("swiglu_backward", shape, 12.0 * n,
              [&](int i) { swiglu_backward(dgo.at(i), duo.at(i), ddh.at(i), dg_in.at(i), du_in.at(i), n, 0); });
    }
}

void test_add_bias(int64_t N, int64_t O, bool timed) {
    const std::string shape = dims({N, O}, "N,O");
    const int64_t n = N * O;
    const std::vector<uint16_t> y = to_bf16(normals((size_t) n, 1.0f, 71));
    const std::vector<float> b = normals((size_t) O, 0.5f, 72);
    std::vector<float> want((size_t) n);
    for (int64_t i = 0; i < n; i++) want[i] = bf2f(y[i]) + b[i % O];
    const int k = timed ? rotation(4.0 * n) : 1;
    Sets<bf16> dy((size_t) n, k);
    Sets<float> db((size_t) O, 1);
    dy.upload(reinterpret_cast<const bf16 *>(y.data()));
    db.upload(b);
    add_bias(dy(), db(), N, O, 0);
    auto got = dy.download<uint16_t>();
    report("add_bias", shape, "y bf16", compare_bf16(got, want), 1e-2, true,
           n);
    if (timed) bench("add_bias", shape, 4.0 * n + 4.0 * O, [&](int i) { add_bias(dy.at(i), db(), N, O, 0); });
}

void test_casts(int64_t n, bool timed) {
    const std::string shape = dims({n}, "n");
    const std::vector<float> x = normals((size_t) n, 3.0f, 81);
    const int k = timed ? rotation(6.0 * n) : 1;
    Sets<float> df((size_t) n, k), dback((size_t) n, k);
    Sets<bf16> db((size_t) n, k);
    df.upload(x);
    db.poison();
    dback.poison();
    cast_f32_to_bf16(db(), df(), n, 0);
    auto got = db.download<uint16_t>();
    report("cast_f32_to_bf16", shape, "bf16", compare_bf16(got, x), 1e-2,
           true, n);
    cast_bf16_to_f32(dback(), db(), n, 0);
    report("cast_bf16_to_f32", shape, "f32", compare(dback.download(), from_bf16(got)),
           0.0, true, n);
    if (timed) {
        bench("cast_f32_to_bf16", shape, 6.0 * n, [&](int i) { cast_f32_to_bf16(db.at(i), df.at(i), n, 0); });
        bench("cast_bf16_to_f32", shape, 6.0 * n, [&](int i) { cast_bf16_to_f32(dback.at(i), db.at(i), n, 0); });
    }
}

void test_dropout(int64_t N, int64_t I, float p, bool timed) {
    const std::string shape = dims({N, I}, "N,I") + " p=" + std::to_string(p).substr(0, 4);
    const int64_t n = N * I;
    const uint64_t key = ref::dropout_key(1234, 17, 3, 5);
    const std::vector<uint16_t> x = to_bf16(normals((size_t) n, 1.0f, 91));
    const std::vector<float> dy = normals((size_t) n, 1.0f, 92), dx0 = normals((size_t) n, 1.0f, 93);
    // transformer.cpp's apply_dropout: keep ? x * (1 / (1 - p)) : 0, the mask at n * I + i.
    const float keep_scale = 1.0f / (1.0f - p);
    std::vector<float> y_ref((size_t) n), dx_ref((size_t) n);
    int64_t kept = 0;
    for (int64_t i = 0; i < n; i++) {
        const bool keep = ref::dropout_uniform(key, (uint64_t) i) >= p;
        kept += keep;
        y_ref[i] = keep ? bf2f(x[i]) * keep_scale : 0.0f;
        const volatile float masked = keep ? dy[i] * keep_scale : 0.0f;   // rounded before the add, as the CPU does
        dx_ref[i] = dx0[i] + masked;
    }
    const int k = timed ? rotation(12.0 * n) : 1;
    Sets<bf16> dxin((size_t) n, k), dyout((size_t) n, k);
    Sets<float> ddy((size_t) n, k), ddx((size_t) n, k);
    dxin.upload(reinterpret_cast<const bf16 *>(x.data()));
    ddy.upload(dy);
    ddx.upload(dx0);
    dyout.poison();
    dropout(dyout(), dxin(), N, I, key, p, 0);
    auto got = dyout.download<uint16_t>();
    report("dropout", shape, "y bf16", compare_bf16(got, y_ref), 1e-2, true,
           n);
    dropout_backward_add(ddx(), ddy(), N, I, key, p, 0);
    report("dropout_backward_add", shape, "dx f32", compare(ddx.download(), dx_ref), 1e-6, true, n);
    std::printf("       (kept %.4f of units, expected %.4f)\n", (double) kept / n, 1.0 - p);
    if (timed) {
        bench("dropout", shape, 4.0 * n, [&](int i) { dropout(dyout.at(i), dxin.at(i), N, I, key, p, 0); });
        bench("dropout_backward_add", shape, 12.0 * n,
              [&](int i) { dropout_backward_add(ddx.at(i), ddy.at(i), N, I, key, p, 0); });
    }
}

void test_cross_entropy(int64_t M, int64_t V, bool timed) {
    const std::string shape = dims({M, V}, "M,V");
    std::vector<float> logits = normals((size_t) (M * V), 3.0f, 101);
    std::vector<int32_t> targets((size_t) M);
    std::vector<float> weight((size_t) M);
    Rng r(102);
    for (int64_t m = 0; m < M; m++) {
        targets[m] = (int32_t) (r.next() % (uint64_t) V);
        logits[m * V + targets[m]] += 8.0f * r.uniform();   // a model that is somewhat right
        weight[m] = m % 13 == 0 ? 0.0f : (0.5f + r.uniform()) / (float) M;
    }
    std::vector<double> lse_ref((size_t) M), logp_ref((size_t) M);
    std::vector<float> dl_ref((size_t) (M * V));
    ref::cross_entropy(lse_ref.data(), logp_ref.data(), dl_ref.data(), logits.data(), targets.data(), weight.data(), M, V);
    const std::vector<float> lse_f(lse_ref.begin(), lse_ref.end()), logp_f(logp_ref.begin(), logp_ref.end());

    const int k = timed ? rotation(4.0 * M * V) : 1;
    Sets<float> dlog((size_t) (M * V), k), dlse((size_t) M, k), dlogp((size_t) M, k), dw((size_t) M, 1);
    Sets<int32_t> dt((size_t) M, 1);
    Sets<bf16> dgrad((size_t) (M * V), k);
    dlog.upload(logits);
    dt.upload(targets);
    dw.upload(weight);
    dlse.poison();
    dlogp.poison();
    dgrad.poison();
    cross_entropy_forward(dlogp(), dlse(), dlog(), dt(), M, V, 0);
    report("cross_entropy_forward", shape, "lse f32", compare(dlse.download(), lse_f), 1e-5);
    report("cross_entropy_forward", shape, "logp f32", compare(dlogp.download(), logp_f), 1e-5);
    cross_entropy_backward(dgrad(), dlog(), dlse(), dt(), dw(), M, V, 0);
    auto got = dgrad.download<uint16_t>();
    report("cross_entropy_backward", shape, "dz bf16", compare_bf16(got, dl_ref),
           1e-2);
    if (timed) {
        bench("cross_entropy_forward", shape, 4.0 * M * V + 12.0 * M,
              [&](int i) { cross_entropy_forward(dlogp.at(i), dlse.at(i), dlog.at(i), dt(), M, V, 0); });
        bench("cross_entropy_backward", shape, 6.0 * M * V + 12.0 * M,
              [&](int i) { cross_entropy_backward(dgrad.at(i), dlog.at(i), dlse.at(i), dt(), dw(), M, V, 0); });
    }
}

void test_adamw(int64_t n, bool timed) {
    const std::string shape = dims({n}, "n");
    std::vector<float> p = normals((size_t) n, 0.1f, 111), g = normals((size_t) n, 1e-3f, 112),
                       m = normals((size_t) n, 1e-4f, 113), v = normals((size_t) n, 1e-3f, 114);
    for (auto & x : v) x = x * x;   // second moments are non-negative
    const float lr = 2e-4f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.01f, gm = 0.7f;
    const int64_t t = 7;
    std::vector<float> pr = p, mr = m, vr = v;
    ref::adamw(pr.data(), g.data(), mr.data(), vr.data(), n, lr, b1, b2, eps, wd, t, gm);
    const int k = timed ? rotation(28.0 * n) : 1;
    Sets<float> dp((size_t) n, k), dg((size_t) n, k), dm((size_t) n, k), dv((size_t) n, k);
    dp.upload(p);
    dg.upload(g);
    dm.upload(m);
    dv.upload(v);
    adamw(dp(), dg(), dm(), dv(), n, lr, b1, b2, eps, wd, t, gm, 0);
    report("adamw", shape, "p f32", compare(dp.download(), pr), 1e-6, true, n);
    report("adamw", shape, "m f32", compare(dm.download(), mr), 1e-6, true, n);
    report("adamw", shape, "v f32", compare(dv.download(), vr), 1e-6, true, n);
    if (timed)
        bench("adamw", shape, 28.0 * n,
              [&](int i) { adamw(dp.at(i), dg.at(i), dm.at(i), dv.at(i), n, lr, b1, b2, eps, wd, t, gm, 0); });
}

void test_sum_squares(int64_t n, bool timed) {
    const std::string shape = dims({n}, "n");
    const std::vector<float> g = normals((size_t) n + 1, 1e-2f, 121);
    long double want = 0;   // values [1, n] (so that the unaligned view below holds the same ones)
    for (int64_t i = 1; i <= n; i++) want += (long double) g[i] * (long double) g[i];
    const int k = timed ? rotation(4.0 * n) : 1;
    Sets<float> dg((size_t) n + 4, k);
    Sets<double> scratch((size_t) sum_squares_scratch(n), 1), out(4, 1);
    // Set 0: g[1..n] at offset 0 (aligned); set 1 (or a copy) holds g[0..n] so that
    // g[1..n] starts 4 bytes past an aligned address.
    std::vector<float> aligned_copy(g.begin() + 1, g.end());
    CUDA_CHECK(cudaMemcpy(dg(), aligned_copy.data(), n * 4, cudaMemcpyHostToDevice));
    for (int i = 1; i < k; i++) CUDA_CHECK(cudaMemcpy(dg.at(i), dg(), n * 4, cudaMemcpyDeviceToDevice));
    float * unaligned = nullptr;
    CUDA_CHECK(cudaMalloc(&unaligned, (n + 1) * 4));
    CUDA_CHECK(cudaMemcpy(unaligned, g.data(), (n + 1) * 4, cudaMemcpyHostToDevice));
    out.poison();
    sum_squares(out(), dg(), n, scratch(), 0);
    sum_squares(out() + 1, dg(), n, scratch(), 0);
    sum_squares(out() + 2, unaligned + 1, n, scratch(), 0);
    const auto o = out.download();
    CUDA_CHECK(cudaFree(unaligned));
    Err e;
    e.max_abs = std::fabs((double) (o[0] - want));
    e.rel = e.max_abs / (double) want;
    e.nonfinite = !std::isfinite(o[0]);
    report("sum_squares", shape, "f64", e, 1e-12);
    Err same;
    same.mismatched = (std::memcmp(&o[0], &o[1], 8) != 0) + (std::memcmp(&o[0], &o[2], 8) != 0);
    report("sum_squares", shape, "repeat", same, 0.0, true, 2);   // same bits again, and unaligned
    if (timed) bench("sum_squares", shape, 4.0 * n, [&](int i) { sum_squares(out(), dg.at(i), n, scratch(), 0); });
}

}  // namespace

int main() {
    int n_dev = 0;
    const cudaError_t err = cudaGetDeviceCount(&n_dev);
    if (err != cudaSuccess || n_dev == 0) {
        std::fprintf(stderr, "train_cuda_kernels: no CUDA device available (%s)\n",
                     err != cudaSuccess ? cudaGetErrorString(err) : "device count is 0");
        return 2;
    }
    try {
        cudaDeviceProp prop;
        CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
        std::printf("device: %s, %d SMs, L2 %.0f MB; bandwidth shown against %.0f GB/s (H200 HBM3e)\n", prop.name,
                    prop.multiProcessorCount, prop.l2CacheSize / 1e6, kPeakGBs);
        std::printf("each check: max|out-ref|, rel = ||out-ref|| / ||ref||, PASS if rel <= tol (\"exact\": and every "
                    "value bit-equal);\n!=ref counts values that differ from the reference rounded to the output type\n\n");

        std::printf("dequant (ggml quantize_chunk -> ggml to_float is the reference)\n");
        for (int type : {GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16, GGML_TYPE_Q8_0, GGML_TYPE_Q4_K, GGML_TYPE_Q6_K}) {
            test_dequant(type, 8960, 1536, true);
            test_dequant(type, 18944, 3584, type == GGML_TYPE_Q4_K || type == GGML_TYPE_Q8_0);
        }
        test_dequant(GGML_TYPE_F32, 3, 1001, false);   // a tail that is not 8 values
        test_dequant(GGML_TYPE_F16, 5, 33, false);

        std::printf("\nembedding (rows of ggml to_float)\n");
        for (int type : {GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16, GGML_TYPE_Q8_0, GGML_TYPE_Q4_K, GGML_TYPE_Q6_K})
            test_embedding(type, 65536, 1536, 4096, true);
        for (int type : {GGML_TYPE_F32, GGML_TYPE_Q8_0}) test_embedding(type, 65536, 896, 4096, true);
        test_embedding(GGML_TYPE_F32, 100, 7, 9, false);   // scalar path

        std::printf("\nrmsnorm (train/cpu/ops/rmsnorm.h)\n");
        for (int64_t D : {896, 1536, 3584}) test_rmsnorm(4096, D, true);
        test_rmsnorm(5, 1002, false);   // generic path
        test_rmsnorm(3, 8192 + 4, false);

        std::printf("\nrope (train/cpu/ops/rope.h; positions 0..4095)\n");
        for (bool inv : {false, true}) {
            test_rope(4096, 14, 64, 1, 1e6f, inv, true);     // qwen2 0.5B q
            test_rope(4096, 12, 128, 1, 1e6f, inv, true);    // qwen2 1.5B q
            test_rope(4096, 28, 128, 1, 1e6f, inv, true);    // qwen2 7B q
            test_rope(4096, 4, 128, 1, 1e6f, inv, true);     // qwen2 7B k
            test_rope(4096, 32, 128, 0, 1e4f, inv, true);    // llama q
            test_rope(4096, 8, 64, 0, 5e5f, inv, true);
        }
        test_rope(4096, 3, 72, 1, 1e4f, false, false);   // generic paths
        test_rope(4096, 3, 6, 0, 1e4f, true, false);

        std::printf("\nswiglu (train/cpu/ops/swiglu.h)\n");
        for (int64_t F : {4864, 8960, 18944}) test_swiglu(4096, F, true);
        test_swiglu(7, 143, false);

        std::printf("\nadd_bias, casts (plain loops)\n");
        for (int64_t O : {896, 128, 1536, 256, 3584, 512}) test_add_bias(4096, O, true);
        test_add_bias(9, 100, false);
        test_casts(4096 * 3584, true);
        test_casts(1001, false);

        std::printf("\ndropout (train/rng.h mask, transformer.cpp's apply_dropout)\n");
        for (int64_t I : {896, 3584, 18944}) test_dropout(4096, I, 0.1f, true);
        test_dropout(7, 13, 0.3f, false);

        std::printf("\ncross-entropy (train/cpu/ops/cross_entropy.h in double)\n");
        test_cross_entropy(1024, 151936, true);
        test_cross_entropy(1024, 32000, true);
        test_cross_entropy(7, 32003, false);   // unaligned rows, scalar backward

        std::printf("\nadamw (train/optimizer.cpp), sum_squares (long double loop)\n");
        test_adamw(10000000, true);
        test_adamw(1003, false);
        test_sum_squares(10000000, true);
        test_sum_squares(1001, false);
    } catch (const std::exception & e) {
        std::fprintf(stderr, "train_cuda_kernels: %s\n", e.what());
        return 1;
    }
    std::printf("\n%d of %d checks passed%s\n", g_checks - g_failures, g_checks, g_failures ? "  -- FAILURES" : "");
    return g_failures ? 1 : 0;
}
