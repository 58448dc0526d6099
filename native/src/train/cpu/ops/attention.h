// Causal multi-head attention with grouped-query heads, for one sequence of L tokens.
//
// Layout (what the q/k/v projections produce): q[L x H x hd], k and v [L x Hkv x hd]; query
// head h reads key/value head h / (H / Hkv). Out o[L x H x hd].
//
//   s_ij = scale * q_i . k_j  (j <= i),   p_ij = softmax_j(s_ij),   o_i = sum_j p_ij v_j
//
// The forward saves only the row log-sum-exp lse_i (H x L); the backward recomputes p from
// it (as flash attention does) instead of storing L x L probabilities per head and layer:
//   dp_ij = dO_i . v_j,  D_i = sum_j p_ij dp_ij (= dO_i . o_i),  ds_ij = p_ij (dp_ij - D_i)
//   dq_i += scale sum_j ds_ij k_j,  dk_j += scale ds_ij q_i,  dv_j += p_ij dO_i
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace selftune::train::ops {

struct AttnShape {
    int64_t L, H, Hkv, hd;
    double scale;
};

// One query head. `lse` points at this head's L values. `round_p`, when given, rounds each
// probability before it weights V: only for parity tests that mimic llama.cpp's f16 KV
// cache (see CpuTransformer::set_llama_f16_kv); training never sets it.
template <typename T>
void attention_forward_head(T * o, T * lse, const T * q, const T * k, const T * v, const AttnShape & s, int64_t h,
                            std::vector<T> & scratch, T (*round_p)(T) = nullptr) {
    const int64_t H = s.H, Hkv = s.Hkv, hd = s.hd, kvh = h / (H / Hkv);
    scratch.resize((size_t) s.L);
    T * p = scratch.data();
    for (int64_t i = 0; i < s.L; i++) {
        const T * qi = q + (i * H + h) * hd;
        T m = -INFINITY;
        for (int64_t j = 0; j <= i; j++) {
            const T * kj = k + (j * Hkv + kvh) * hd;
            T d = 0;
            for (int64_t e = 0; e < hd; e++) d += qi[e] * kj[e];
            p[j] = (T) s.scale * d;
            m = p[j] > m ? p[j] : m;
        }
        double sum = 0;
        for (int64_t j = 0; j <= i; j++) {
            p[j] = std::exp(p[j] - m);
            sum += (double) p[j];
        }
        const T inv = (T) (1.0 / sum);
        T * oi = o + (i * H + h) * hd;
        for (int64_t e = 0; e < hd; e++) oi[e] = 0;
        for (int64_t j = 0; j <= i; j++) {
            const T w = round_p ? round_p(p[j] * inv) : p[j] * inv;
            const T * vj = v + (j * Hkv + kvh) * hd;
            for (int64_t e = 0; e < hd; e++) oi[e] += w * vj[e];
        }
        lse[i] = m + (T) std::log(sum);
    }
}

// All query heads of one key/value head (its group), so that dk and dv of that kv head
// are written by one caller only: tasks over (sequence, kv head) never collide.
template <typename T>
void attention_backward_group(T * dq, T * dk, T * dv, const T * dout, const T * o, const T * lse, const T * q,
                              const T * k, const T * v, const AttnShape & s, int64_t kvh, std::vector<T> & scratch) {
    const int64_t H = s.H, Hkv = s.Hkv, hd = s.hd, group = H / Hkv;
    scratch.resize((size_t) (2 * s.L));
    T * p = scratch.data();
    T * ds = p + s.L;
    for (int64_t h = kvh * group; h < (kvh + 1) * group; h++) {
        const T * lh = lse + h * s.L;
        for (int64_t i = 0; i < s.L; i++) {
            const T * qi = q + (i * H + h) * hd;
            const T * gi = dout + (i * H + h) * hd;
            const T * oi = o + (i * H + h) * hd;
            T Di = 0;
            for (int64_t e = 0; e < hd; e++) Di += gi[e] * oi[e];
            for (int64_t j = 0; j <= i; j++) {
                const T * kj = k + (j * Hkv + kvh) * hd;
                const T * vj = v + (j * Hkv + kvh) * hd;
                T d = 0, dp = 0;
                for (int64_t e = 0; e < hd; e++) {
                    d += qi[e] * kj[e];
                    dp += gi[e] * vj[e];
                }
                p[j] = std::exp((T) s.scale * d - lh[i]);
                ds[j] = p[j] * (dp - Di) * (T) s.scale;
            }
            T * dqi = dq + (i * H + h) * hd;
            for (int64_t j = 0; j <= i; j++) {
                const T * kj = k + (j * Hkv + kvh) * hd;
                T * dkj = dk + (j * Hkv + kvh) * hd;
                T * dvj = dv + (j * Hkv + kvh) * hd;
                for (int64_t e = 0; e < hd; e++) {
                    dqi[e] += ds[j] * kj[e];
                    dkj[e] += ds[j] * qi[e];
                    dvj[e] += p[j] * gi[e];
                }
            }
        }
    }
}

// Whole sequence, serial: the reference the gradient checks use.
template <typename T>
void attention_forward(T * o, T * lse, const T * q, const T * k, const T * v, const AttnShape & s) {
    std::vector<T> scratch;
    for (int64_t h = 0; h < s.H; h++) attention_forward_head(o, lse + h * s.L, q, k, v, s, h, scratch);
}

template <typename T>
void attention_backward(T * dq, T * dk, T * dv, const T * dout, const T * o, const T * lse, const T * q, const T * k,
                        const T * v, const AttnShape & s) {
    std::vector<T> scratch;
    for (int64_t g = 0; g < s.Hkv; g++) attention_backward_group(dq, dk, dv, dout, o, lse, q, k, v, s, g, scratch);
}

}  // namespace selftune::train::ops
