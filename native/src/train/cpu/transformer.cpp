#include "train/cpu/transformer.h"

#include "train/cpu/ops/attention.h"
#include "train/cpu/ops/cross_entropy.h"
#include "train/cpu/ops/embedding.h"
#include "train/cpu/ops/matmul.h"
#include "train/cpu/ops/rmsnorm.h"
#include "train/cpu/ops/swiglu.h"

#include "ggml-cpu.h"
#include "ggml.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace selftune::train {

template <typename T>
static T round_f16(T x) {
    return (T) ggml_fp16_to_fp32(ggml_fp32_to_fp16((float) x));
}

template <typename T>
CpuTransformer<T>::CpuTransformer(const BaseWeights<T> & weights, const LoraLayout & layout, ThreadPool * pool)
    : w_(weights), layout_(layout), pool_(pool) {
    if ((int32_t) layout.slot_of.size() != weights.config.n_layer) {
        throw std::invalid_argument("LoRA layout does not match the model's layer count");
    }
}

template <typename T>
const T * CpuTransformer<T>::parity_input(const T * x, int64_t N, int64_t I, int32_t type, std::vector<T> & buf) const {
    if (!llama_parity_ || type == GGML_TYPE_F32) return x;
    const ggml_type_traits_cpu * cpu = ggml_get_type_traits_cpu((ggml_type) type);
    const ggml_type vt = cpu ? cpu->vec_dot_type : GGML_TYPE_F32;
    if (vt == GGML_TYPE_F32 || I % ggml_blck_size(vt) != 0) return x;
    const ggml_type_traits_cpu * vcpu = ggml_get_type_traits_cpu(vt);
    const ggml_type_traits * vtr = ggml_get_type_traits(vt);
    // q8_K (the K-quants' activation type) has no to_float in ggml: its block is
    // {float d; int8 qs[256]; int16 bsums[16]}, value = d * qs.
    const bool q8k = vt == GGML_TYPE_Q8_K && ggml_type_size(vt) == sizeof(float) + 256 + 16 * sizeof(int16_t);
    if (!vcpu || !vcpu->from_float || (!vtr->to_float && !q8k)) return x;
    buf.resize((size_t) (N * I));
    std::vector<float> row((size_t) I);
    std::vector<uint8_t> q(ggml_row_size(vt, I));
    for (int64_t n = 0; n < N; n++) {
        for (int64_t i = 0; i < I; i++) row[(size_t) i] = (float) x[n * I + i];
        vcpu->from_float(row.data(), q.data(), I);
        if (q8k) {
            const size_t bs = ggml_type_size(vt);
            for (int64_t b = 0; b < I / 256; b++) {
                float d;
                std::memcpy(&d, q.data() + b * bs, sizeof d);
                const int8_t * qs = (const int8_t *) (q.data() + b * bs + sizeof(float));
                for (int k = 0; k < 256; k++) row[(size_t) (b * 256 + k)] = d * (float) qs[k];
            }
        } else {
            vtr->to_float(q.data(), row.data(), I);
        }
        for (int64_t i = 0; i < I; i++) buf[(size_t) (n * I + i)] = (T) row[(size_t) i];
    }
    return buf.data();
}

template <typename T>
void CpuTransformer<T>::apply_dropout(T * out, const T * x, int64_t N, int64_t I, int slot, const DropoutSpec & dp) {
    const RngKey key = dp.key.with((uint64_t) slot);
    const T keep_scale = T(1) / (T(1) - (T) dp.p);
    const float p = dp.p;
    auto rows = [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; n++) {
            for (int64_t i = 0; i < I; i++) {
                const bool keep = key.uniform((uint64_t) (n * I + i)) >= p;
                out[n * I + i] = keep ? x[n * I + i] * keep_scale : T(0);
            }
        }
    };
    if (pool_) pool_->parallel_range(N, 8, rows);
    else rows(0, N);
}

template <typename T>
void CpuTransformer<T>::linear_forward(T * y, const T * x, int64_t N, const std::vector<T> & W,
                                       const std::vector<T> & bias, int64_t I, int64_t O, int layer, int target,
                                       const T * lora, const DropoutSpec & dp, std::vector<T> & u_store) {
    std::vector<T> rounded;
    const int32_t wtype = w_.types.layer.empty() ? 0 : w_.types.layer[(size_t) layer][(size_t) target];
    ops::matmul_forward<T>(pool_, y, parity_input(x, N, I, wtype, rounded), W.data(), nullptr, N, I, O);
    const LoraSlot * s = lora ? layout_.find(layer, target) : nullptr;
    if (s) {
        const int64_t r = layout_.config.rank;
        const T * xin = x;
        std::vector<T> xd;
        if (dp.p > 0.0f) {
            xd.resize((size_t) (N * I));
            apply_dropout(xd.data(), x, N, I, layout_.slot_of[(size_t) layer][(size_t) target], dp);
            xin = xd.data();
        }
        u_store.resize((size_t) (N * r));
        ops::matmul_forward<T>(pool_, u_store.data(), xin, lora + s->a_offset, nullptr, N, I, r);
        // llama.cpp's order: W x + scale * (B (A x)), then the bias.
        ops::matmul_forward<T>(pool_, y, u_store.data(), lora + s->b_offset, nullptr, N, r, O,
                               (T) layout_.config.scale(), /*accumulate*/ true);
    }
    if (!bias.empty()) {
        for (int64_t n = 0; n < N; n++) {
            for (int64_t o = 0; o < O; o++) y[n * O + o] += bias[(size_t) o];
        }
    }
}

template <typename T>
void CpuTransformer<T>::linear_backward(T * dx, const T * dy, const T * x, int64_t N, const std::vector<T> & W,
                                        int64_t I, int64_t O, int layer, int target, const T * lora, T * grads,
                                        const DropoutSpec & dp, const std::vector<T> & u_store) {
    if (dx) ops::matmul_backward_x<T>(pool_, dx, dy, W.data(), N, I, O);
    const LoraSlot * s = lora ? layout_.find(layer, target) : nullptr;
    if (!s) return;
    const int64_t r = layout_.config.rank;
    const T scale = (T) layout_.config.scale();
    const T * A = lora + s->a_offset;
    const T * B = lora + s->b_offset;
    // y += scale * B u, u = A xd:   dB += scale * dy^T u;   gu = scale * dy B
    ops::matmul_backward_w<T>(pool_, grads + s->b_offset, dy, u_store.data(), N, r, O, scale);
    std::vector<T> gu((size_t) (N * r), T(0));
    ops::matmul_backward_x<T>(pool_, gu.data(), dy, B, N, r, O, scale);
    // dA += gu^T xd;   dxd = gu A;   dx += mask * dxd
    const T * xin = x;
    std::vector<T> xd;
    const int slot = layout_.slot_of[(size_t) layer][(size_t) target];
    if (dp.p > 0.0f) {
        xd.resize((size_t) (N * I));
        apply_dropout(xd.data(), x, N, I, slot, dp);
        xin = xd.data();
    }
    ops::matmul_backward_w<T>(pool_, grads + s->a_offset, gu.data(), xin, N, I, r);
    if (!dx) return;
    if (dp.p > 0.0f) {
        std::vector<T> dxd((size_t) (N * I), T(0));
        ops::matmul_backward_x<T>(pool_, dxd.data(), gu.data(), A, N, I, r);
        // The mask applied to a vector of ones gives mask values; reuse apply_dropout.
        apply_dropout(dxd.data(), dxd.data(), N, I, slot, dp);
        for (int64_t k = 0; k < N * I; k++) dx[k] += dxd[(size_t) k];
    } else {
        ops::matmul_backward_x<T>(pool_, dx, gu.data(), A, N, I, r);
    }
}

template <typename T>
void CpuTransformer<T>::forward(const PackedBatch & b, const T * lora, const DropoutSpec & dp) {
    const ModelConfig & c = w_.config;
    const int64_t N = b.n_rows, D = c.n_embd, Qd = c.q_dim(), KVd = c.kv_dim(), F = c.n_ff;
    const int64_t H = c.n_head, Hkv = c.n_head_kv, hd = c.head_dim;
    if (N == 0) throw std::invalid_argument("empty batch");

    int32_t max_pos = 0;
    for (int32_t p : b.pos) max_pos = std::max(max_pos, p);
    if ((int64_t) rope_.cos.size() < (int64_t) (max_pos + 1) * (hd / 2)) {
        rope_.build(std::max<int64_t>(max_pos + 1, 256), hd, c.rope_base);
    }

    acts_.resize((size_t) c.n_layer);
    acts_[0].x_in.resize((size_t) (N * D));
    ops::embedding_forward<T>(acts_[0].x_in.data(), b.tokens.data(), w_.tok_embd.data(), N, D);
    x_out_.resize((size_t) (N * D));
    scratch_.resize((size_t) (N * D));
    const int64_t n_seq = (int64_t) b.seq_start.size() - 1;

    for (int32_t l = 0; l < c.n_layer; l++) {
        LayerActs & A = acts_[(size_t) l];
        const LayerWeights<T> & W = w_.layers[(size_t) l];
        A.xn1.resize((size_t) (N * D));
        A.r1.resize((size_t) N);
        A.q.resize((size_t) (N * Qd));
        A.k.resize((size_t) (N * KVd));
        A.v.resize((size_t) (N * KVd));
        A.att.resize((size_t) (N * Qd));
        A.lse.resize((size_t) (N * H));
        A.x_mid.resize((size_t) (N * D));
        A.xn2.resize((size_t) (N * D));
        A.r2.resize((size_t) N);
        A.g.resize((size_t) (N * F));
        A.u.resize((size_t) (N * F));
        A.h.resize((size_t) (N * F));
        A.lora_u.resize(kNumTargets);

        ops::rmsnorm_forward<T>(pool_, A.xn1.data(), A.r1.data(), A.x_in.data(), W.attn_norm.data(), N, D, c.rms_eps);
        linear_forward(A.q.data(), A.xn1.data(), N, W.wq, W.bq, D, Qd, l, kQ, lora, dp, A.lora_u[kQ]);
        linear_forward(A.k.data(), A.xn1.data(), N, W.wk, W.bk, D, KVd, l, kK, lora, dp, A.lora_u[kK]);
        linear_forward(A.v.data(), A.xn1.data(), N, W.wv, W.bv, D, KVd, l, kV, lora, dp, A.lora_u[kV]);
        ops::rope_forward<T>(pool_, A.q.data(), b.pos.data(), N, H, hd, c.rope, rope_);
        ops::rope_forward<T>(pool_, A.k.data(), b.pos.data(), N, Hkv, hd, c.rope, rope_);
        if (llama_parity_) {
            for (auto * a : {&A.q, &A.k, &A.v}) {
                for (T & x : *a) x = round_f16(x);
            }
        }

        // Attention: one task per (sequence, query head).
        auto attn_task = [&](int64_t t) {
            const int64_t s = t / H, h = t % H;
            const int64_t r0 = b.seq_start[(size_t) s], L = b.seq_start[(size_t) s + 1] - r0;
            const ops::AttnShape sh{L, H, Hkv, hd, 1.0 / std::sqrt((double) hd)};
            std::vector<T> tmp;
            ops::attention_forward_head<T>(A.att.data() + r0 * Qd, A.lse.data() + r0 * H + h * L,
                                           A.q.data() + r0 * Qd, A.k.data() + r0 * KVd, A.v.data() + r0 * KVd, sh,
                                           h, tmp, llama_parity_ ? &round_f16<T> : nullptr);
        };
        if (pool_) pool_->parallel_for(n_seq * H, attn_task);
        else for (int64_t t = 0; t < n_seq * H; t++) attn_task(t);

        T * proj = scratch_.data();
        linear_forward(proj, A.att.data(), N, W.wo, {}, Qd, D, l, kO, lora, dp, A.lora_u[kO]);
        for (int64_t k = 0; k < N * D; k++) A.x_mid[(size_t) k] = proj[k] + A.x_in[(size_t) k];

        ops::rmsnorm_forward<T>(pool_, A.xn2.data(), A.r2.data(), A.x_mid.data(), W.ffn_norm.data(), N, D, c.rms_eps);
        linear_forward(A.g.data(), A.xn2.data(), N, W.w_gate, {}, D, F, l, kGate, lora, dp, A.lora_u[kGate]);
        linear_forward(A.u.data(), A.xn2.data(), N, W.w_up, {}, D, F, l, kUp, lora, dp, A.lora_u[kUp]);
        ops::swiglu_forward<T>(pool_, A.h.data(), A.g.data(), A.u.data(), N * F);
        linear_forward(proj, A.h.data(), N, W.w_down, {}, F, D, l, kDown, lora, dp, A.lora_u[kDown]);

        std::vector<T> & next = l + 1 < c.n_layer ? acts_[(size_t) l + 1].x_in : x_out_;
        next.resize((size_t) (N * D));
        for (int64_t k = 0; k < N * D; k++) next[(size_t) k] = proj[k] + A.x_mid[(size_t) k];
    }
    xnf_.resize((size_t) (N * D));
    rf_.resize((size_t) N);
    ops::rmsnorm_forward<T>(pool_, xnf_.data(), rf_.data(), x_out_.data(), w_.output_norm.data(), N, D, c.rms_eps);
}

template <typename T>
void CpuTransformer<T>::gather_scored(const PackedBatch & b, int64_t c0, int64_t m, T * out) const {
    const int64_t D = w_.config.n_embd;
    for (int64_t j = 0; j < m; j++) std::copy_n(xnf_.data() + b.loss_rows[(size_t) (c0 + j)] * D, D, out + j * D);
}

template <typename T>
double CpuTransformer<T>::head_forward(const PackedBatch & b, std::vector<double> * row_logprobs) {
    const int64_t D = w_.config.n_embd, V = w_.config.n_vocab;
    const int64_t M = (int64_t) b.loss_rows.size();
    const T * Wout = w_.output_matrix();
    // Logits only for scored rows, a chunk at a time: a [rows x 150k] block is tens of MB,
    // and prompt rows never need logits at all.
    const int64_t C = std::clamp<int64_t>((int64_t) (1 << 24) / V, 8, 512);
    std::vector<T> hbuf((size_t) (std::min(C, M) * D)), logits((size_t) (std::min(C, M) * V));
    std::vector<double> loss((size_t) M);
    for (int64_t c0 = 0; c0 < M; c0 += C) {
        const int64_t m = std::min(C, M - c0);
        gather_scored(b, c0, m, hbuf.data());
        ops::matmul_forward<T>(pool_, logits.data(), hbuf.data(), Wout, nullptr, m, D, V);
        auto rows = [&](int64_t j0, int64_t j1) {
            std::vector<T> tmp;
            for (int64_t j = j0; j < j1; j++) {
                const T * z = logits.data() + j * V;
                loss[(size_t) (c0 + j)] = ops::cross_entropy<T>(nullptr, z, V, b.loss_targets[(size_t) (c0 + j)], T(0), &tmp);
            }
        };
        if (pool_) pool_->parallel_range(m, 1, rows);
        else rows(0, m);
    }
    double sum = 0;
    for (int64_t j = 0; j < M; j++) sum += loss[(size_t) j];
    if (row_logprobs) {
        row_logprobs->resize((size_t) M);
        for (int64_t j = 0; j < M; j++) (*row_logprobs)[(size_t) j] = -loss[(size_t) j];
    }
    return sum;
}

template <typename T>
void CpuTransformer<T>::head_backward(const PackedBatch & b, const double * weight, T * dxnf) {
    const int64_t D = w_.config.n_embd, V = w_.config.n_vocab;
    const int64_t M = (int64_t) b.loss_rows.size();
    const T * Wout = w_.output_matrix();
    const int64_t C = std::clamp<int64_t>((int64_t) (1 << 24) / V, 8, 512);
    std::vector<T> hbuf((size_t) (std::min(C, M) * D)), logits((size_t) (std::min(C, M) * V)), dh;
    for (int64_t c0 = 0; c0 < M; c0 += C) {
        const int64_t m = std::min(C, M - c0);
        gather_scored(b, c0, m, hbuf.data());
        // The forward's product again, so the same logits bit for bit.
        ops::matmul_forward<T>(pool_, logits.data(), hbuf.data(), Wout, nullptr, m, D, V);
        auto rows = [&](int64_t j0, int64_t j1) {
            for (int64_t j = j0; j < j1; j++) {
                T * z = logits.data() + j * V;
                // d(w logp)/dz = w (onehot - softmax) = -w (softmax - onehot), in place.
                ops::cross_entropy<T>(z, z, V, b.loss_targets[(size_t) (c0 + j)], (T) -weight[c0 + j]);
            }
        };
        if (pool_) pool_->parallel_range(m, 1, rows);
        else rows(0, m);
        dh.assign((size_t) (m * D), T(0));
        ops::matmul_backward_x<T>(pool_, dh.data(), logits.data(), Wout, m, D, V);
        for (int64_t j = 0; j < m; j++) {
            T * dst = dxnf + b.loss_rows[(size_t) (c0 + j)] * D;
            for (int64_t k = 0; k < D; k++) dst[k] += dh[(size_t) (j * D + k)];
        }
    }
}

template <typename T>
double CpuTransformer<T>::forward_logp(const PackedBatch & b, const T * lora, const DropoutSpec & dropout_in,
                                      std::vector<double> * logp, bool for_backward) {
    // The caller decides whether dropout applies (training) or not (evaluation: p = 0);
    // forward-only runs with dropout exist for the gradient checks.
    DropoutSpec dp = dropout_in;
    if (!lora) dp.p = 0.0f;
    have_backward_state_ = false;
    forward(b, lora, dp);
    const double loss = head_forward(b, logp);
    if (for_backward) {
        last_batch_ = b;
        last_lora_ = lora;
        last_dropout_ = dp;
        have_backward_state_ = true;
    }
    return loss;
}

template <typename T>
double CpuTransformer<T>::run(const PackedBatch & b, const T * lora, T * grads, T grad_scale,
                              const DropoutSpec & dropout, std::vector<double> * row_logprobs) {
    const double loss = forward_logp(b, lora, dropout, row_logprobs, grads != nullptr);
    if (grads) {
        const std::vector<double> w(b.loss_rows.size(), -(double) grad_scale);
        backward(w.data(), grads);
    }
    return loss;
}

template <typename T>
void CpuTransformer<T>::backward(const double * weight, T * grads) {
    if (!have_backward_state_) throw std::logic_error("backward() without a forward kept for it");
    have_backward_state_ = false;
    const PackedBatch & b = last_batch_;
    const T * lora = last_lora_;
    const DropoutSpec dp = last_dropout_;
    if (!lora || b.loss_rows.empty()) return;   // nothing receives a gradient
    const ModelConfig & c = w_.config;
    const int64_t N = b.n_rows, D = c.n_embd, Qd = c.q_dim(), KVd = c.kv_dim(), F = c.n_ff;
    const int64_t H = c.n_head, Hkv = c.n_head_kv, hd = c.head_dim;
    std::vector<T> dxnf((size_t) (N * D), T(0));
    head_backward(b, weight, dxnf.data());

    std::vector<T> dres((size_t) (N * D), T(0)), dmid((size_t) (N * D)), dxn((size_t) (N * D));
    std::vector<T> dh((size_t) (N * F)), dg((size_t) (N * F)), du((size_t) (N * F));
    std::vector<T> datt((size_t) (N * Qd)), dq((size_t) (N * Qd)), dk((size_t) (N * KVd)), dv((size_t) (N * KVd));
    ops::rmsnorm_backward<T>(pool_, dres.data(), nullptr, dxnf.data(), x_out_.data(), rf_.data(),
                             w_.output_norm.data(), N, D);
    const int64_t n_seq = (int64_t) b.seq_start.size() - 1;

    for (int32_t l = c.n_layer - 1; l >= 0; l--) {
        const LayerActs & A = acts_[(size_t) l];
        const LayerWeights<T> & W = w_.layers[(size_t) l];
        // FFN block: out = x_mid + down(silu(gate(xn2)) * up(xn2)), xn2 = norm(x_mid)
        std::fill(dh.begin(), dh.end(), T(0));
        linear_backward(dh.data(), dres.data(), A.h.data(), N, W.w_down, F, D, l, kDown, lora, grads, dp,
                        A.lora_u[kDown]);
        std::fill(dg.begin(), dg.end(), T(0));
        std::fill(du.begin(), du.end(), T(0));
        ops::swiglu_backward<T>(pool_, dg.data(), du.data(), dh.data(), A.g.data(), A.u.data(), N * F);
        std::fill(dxn.begin(), dxn.end(), T(0));
        linear_backward(dxn.data(), dg.data(), A.xn2.data(), N, W.w_gate, D, F, l, kGate, lora, grads, dp,
                        A.lora_u[kGate]);
        linear_backward(dxn.data(), du.data(), A.xn2.data(), N, W.w_up, D, F, l, kUp, lora, grads, dp,
                        A.lora_u[kUp]);
        dmid = dres;
        ops::rmsnorm_backward<T>(pool_, dmid.data(), nullptr, dxn.data(), A.x_mid.data(), A.r2.data(),
                                 W.ffn_norm.data(), N, D);

        // Attention block: x_mid = x_in + o(attn(rope(q(xn1)), rope(k(xn1)), v(xn1))), xn1 = norm(x_in)
        std::fill(datt.begin(), datt.end(), T(0));
        linear_backward(datt.data(), dmid.data(), A.att.data(), N, W.wo, Qd, D, l, kO, lora, grads, dp,
                        A.lora_u[kO]);
        std::fill(dq.begin(), dq.end(), T(0));
        std::fill(dk.begin(), dk.end(), T(0));
        std::fill(dv.begin(), dv.end(), T(0));
        auto attn_task = [&](int64_t t) {
            const int64_t s = t / Hkv, g = t % Hkv;
            const int64_t r0 = b.seq_start[(size_t) s], L = b.seq_start[(size_t) s + 1] - r0;
            const ops::AttnShape sh{L, H, Hkv, hd, 1.0 / std::sqrt((double) hd)};
            std::vector<T> tmp;
            ops::attention_backward_group<T>(dq.data() + r0 * Qd, dk.data() + r0 * KVd, dv.data() + r0 * KVd,
                                             datt.data() + r0 * Qd, A.att.data() + r0 * Qd, A.lse.data() + r0 * H,
                                             A.q.data() + r0 * Qd, A.k.data() + r0 * KVd, A.v.data() + r0 * KVd, sh,
                                             g, tmp);
        };
        if (pool_) pool_->parallel_for(n_seq * Hkv, attn_task);
        else for (int64_t t = 0; t < n_seq * Hkv; t++) attn_task(t);
        ops::rope_backward<T>(pool_, dq.data(), b.pos.data(), N, H, hd, c.rope, rope_);
        ops::rope_backward<T>(pool_, dk.data(), b.pos.data(), N, Hkv, hd, c.rope, rope_);

        // Below layer 0 there is only the frozen embedding: the input gradient is not needed.
        const bool need_dx = l > 0;
        T * dxn1 = need_dx ? dxn.data() : nullptr;
        if (need_dx) std::fill(dxn.begin(), dxn.end(), T(0));
        linear_backward(dxn1, dq.data(), A.xn1.data(), N, W.wq, D, Qd, l, kQ, lora, grads, dp, A.lora_u[kQ]);
        linear_backward(dxn1, dk.data(), A.xn1.data(), N, W.wk, D, KVd, l, kK, lora, grads, dp, A.lora_u[kK]);
        linear_backward(dxn1, dv.data(), A.xn1.data(), N, W.wv, D, KVd, l, kV, lora, grads, dp, A.lora_u[kV]);
        if (need_dx) {
            dres = dmid;
            ops::rmsnorm_backward<T>(pool_, dres.data(), nullptr, dxn.data(), A.x_in.data(), A.r1.data(),
                                     W.attn_norm.data(), N, D);
        }
    }
}

template <typename T>
void CpuTransformer<T>::logits(const PackedBatch & b, const T * lora, std::vector<T> & out, bool last_only) {
    have_backward_state_ = false;   // the activations are about to be replaced
    forward(b, lora, DropoutSpec{});
    const int64_t N = b.n_rows, D = w_.config.n_embd, V = w_.config.n_vocab;
    const int64_t first = last_only ? N - 1 : 0;
    out.resize((size_t) ((N - first) * V));
    std::vector<T> rounded;
    const T * h = parity_input(xnf_.data() + first * D, N - first, D, w_.types.output, rounded);
    ops::matmul_forward<T>(pool_, out.data(), h, w_.output_matrix(), nullptr, N - first, D, V);
}

template class CpuTransformer<float>;
template class CpuTransformer<double>;

}  // namespace selftune::train
