#include "train/gradcheck.h"

#include "train/cpu/ops/attention.h"
#include "train/cpu/ops/cross_entropy.h"
#include "train/cpu/ops/embedding.h"
#include "train/cpu/ops/fast_exp.h"
#include "train/cpu/ops/matmul.h"
#include "train/cpu/ops/rmsnorm.h"
#include "train/cpu/ops/rope.h"
#include "train/cpu/ops/swiglu.h"
#include "train/cpu/transformer.h"
#include "train/objective.h"
#include "train/rng.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

namespace selftune::train {

namespace {

using Vec = std::vector<double>;

struct Rand {
    RngKey key;
    uint64_t i = 0;
    explicit Rand(uint64_t seed) : key(seed) {}
    double uniform() { return (double) key.uniform(i++); }
    double normal() {   // Box-Muller; plenty for test data
        const double u1 = std::max(1e-12, uniform()), u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }
    Vec normals(size_t n, double std = 1.0) {
        Vec v(n);
        for (auto & x : v) x = normal() * std;
        return v;
    }
};

// Compares an analytic gradient with central differences of f at up to `max_checks`
// coordinates of `x` (spread evenly). f reads x.
struct Checker {
    CheckResult r;
    double floor;
    // floor: gradients smaller than this are compared in absolute terms (central differences
    // carry ~1e-10 of absolute error, which is large relative to a near-zero gradient).
    Checker(std::string name, double tol, double floor_ = 1e-3) : floor(floor_) {
        r.name = std::move(name);
        r.tolerance = tol;
    }
    void check(Vec & x, const Vec & analytic, const std::function<double()> & f, double eps = 1e-6,
               size_t max_checks = 64) {
        const size_t n = x.size();
        const size_t step = std::max<size_t>(1, n / max_checks);
        for (size_t i = 0; i < n; i += step) {
            const double keep = x[i];
            x[i] = keep + eps;
            const double fp = f();
            x[i] = keep - eps;
            const double fm = f();
            x[i] = keep;
            const double num = (fp - fm) / (2 * eps);
            const double err = std::fabs(num - analytic[i]);
            r.max_abs_err = std::max(r.max_abs_err, err);
            r.max_rel_err = std::max(r.max_rel_err, err / std::max({std::fabs(num), std::fabs(analytic[i]), floor}));
            r.n_checked++;
        }
    }
    CheckResult done() {
        r.passed = r.n_checked > 0 && r.max_rel_err <= r.tolerance;
        return r;
    }
};

double dot(const Vec & a, const Vec & b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); i++) s += a[i] * b[i];
    return s;
}

}  // namespace

std::vector<CheckResult> check_ops(uint64_t seed) {
    std::vector<CheckResult> out;
    Rand rnd(seed);
    const double tol = 1e-6;

    {   // matmul: y = x W^T + b; both the references and the blocked kernels (in double)
        const int64_t N = 5, I = 19, O = 7;
        Vec x = rnd.normals(N * I), W = rnd.normals(O * I), b = rnd.normals(O), R = rnd.normals(N * O);
        auto f = [&] {
            Vec y(N * O);
            ops::matmul_forward_ref(y.data(), x.data(), W.data(), b.data(), N, I, O);
            return dot(y, R);
        };
        for (int blocked = 0; blocked < 2; blocked++) {
            Vec dx(N * I, 0.0), dW(O * I, 0.0);
            if (blocked) {
                ops::matmul_backward_x<double>(nullptr, dx.data(), R.data(), W.data(), N, I, O);
                ops::matmul_backward_w<double>(nullptr, dW.data(), R.data(), x.data(), N, I, O);
            } else {
                ops::matmul_backward_x_ref(dx.data(), R.data(), W.data(), N, I, O);
                ops::matmul_backward_w_ref(dW.data(), R.data(), x.data(), N, I, O);
            }
            Checker cx(blocked ? "matmul.dx (blocked)" : "matmul.dx", tol), cw(blocked ? "matmul.dW (blocked)" : "matmul.dW", tol);
            cx.check(x, dx, f);
            cw.check(W, dW, f);
            out.push_back(cx.done());
            out.push_back(cw.done());
        }
    }
    {   // rmsnorm
        const int64_t N = 3, D = 11;
        Vec x = rnd.normals(N * D), w = rnd.normals(D), R = rnd.normals(N * D);
        auto f = [&] {
            Vec y(N * D), r(N);
            ops::rmsnorm_forward<double>(nullptr, y.data(), r.data(), x.data(), w.data(), N, D, 1e-5f);
            return dot(y, R);
        };
        Vec y(N * D), r(N), dx(N * D, 0.0), dw(D, 0.0);
        ops::rmsnorm_forward<double>(nullptr, y.data(), r.data(), x.data(), w.data(), N, D, 1e-5f);
        ops::rmsnorm_backward<double>(nullptr, dx.data(), dw.data(), R.data(), x.data(), r.data(), w.data(), N, D);
        Checker cx("rmsnorm.dx", tol), cw("rmsnorm.dw", tol);
        cx.check(x, dx, f);
        cw.check(w, dw, f);
        out.push_back(cx.done());
        out.push_back(cw.done());
    }
    for (RopeMode mode : {RopeMode::norm, RopeMode::neox}) {
        const int64_t N = 4, H = 3, hd = 8;
        Vec x = rnd.normals(N * H * hd), R = rnd.normals(N * H * hd);
        std::vector<int32_t> pos = {0, 5, 2, 17};
        ops::RopeCache<double> cache;
        cache.build(32, hd, 10000.0f);
        auto f = [&] {
            Vec y = x;
            ops::rope_forward<double>(nullptr, y.data(), pos.data(), N, H, hd, mode, cache);
            return dot(y, R);
        };
        Vec dx = R;
        ops::rope_backward<double>(nullptr, dx.data(), pos.data(), N, H, hd, mode, cache);
        Checker c(mode == RopeMode::norm ? "rope.norm.dx" : "rope.neox.dx", tol);
        c.check(x, dx, f);
        out.push_back(c.done());
    }
    {   // attention, causal, GQA (4 query heads over 2 kv heads)
        const ops::AttnShape s{6, 4, 2, 5, 1.0 / std::sqrt(5.0)};
        const int64_t Qd = s.H * s.hd, KVd = s.Hkv * s.hd;
        Vec q = rnd.normals(s.L * Qd), k = rnd.normals(s.L * KVd), v = rnd.normals(s.L * KVd), R = rnd.normals(s.L * Qd);
        auto f = [&] {
            Vec o(s.L * Qd), lse(s.H * s.L);
            ops::attention_forward<double>(o.data(), lse.data(), q.data(), k.data(), v.data(), s);
            return dot(o, R);
        };
        Vec o(s.L * Qd), lse(s.H * s.L), dq(s.L * Qd, 0.0), dk(s.L * KVd, 0.0), dv(s.L * KVd, 0.0);
        ops::attention_forward<double>(o.data(), lse.data(), q.data(), k.data(), v.data(), s);
        ops::attention_backward<double>(dq.data(), dk.data(), dv.data(), R.data(), o.data(), lse.data(), q.data(),
                                        k.data(), v.data(), s);
        Checker cq("attention.dq", tol), ck("attention.dk", tol), cv("attention.dv", tol);
        cq.check(q, dq, f);
        ck.check(k, dk, f);
        cv.check(v, dv, f);
        out.push_back(cq.done());
        out.push_back(ck.done());
        out.push_back(cv.done());
        // The causal mask: output row i must not depend on k/v rows after i.
        Vec o2(s.L * Qd), lse2(s.H * s.L);
        Vec k2 = k, v2 = v;
        for (int64_t e = 0; e < KVd; e++) {
            k2[(s.L - 1) * KVd + e] += 1.0;
            v2[(s.L - 1) * KVd + e] -= 1.0;
        }
        ops::attention_forward<double>(o2.data(), lse2.data(), q.data(), k2.data(), v2.data(), s);
        CheckResult m;
        m.name = "attention.causal_mask";
        m.tolerance = 0;
        for (int64_t i = 0; i < (s.L - 1) * Qd; i++) m.max_abs_err = std::max(m.max_abs_err, std::fabs(o2[i] - o[i]));
        m.max_rel_err = m.max_abs_err;
        m.n_checked = (s.L - 1) * Qd;
        m.passed = m.max_abs_err == 0;
        out.push_back(m);
    }
    {   // swiglu
        const int64_t n = 17;
        Vec g = rnd.normals(n, 2.0), u = rnd.normals(n), R = rnd.normals(n);
        auto f = [&] {
            Vec h(n);
            ops::swiglu_forward<double>(nullptr, h.data(), g.data(), u.data(), n);
            return dot(h, R);
        };
        Vec dg(n, 0.0), du(n, 0.0);
        ops::swiglu_backward<double>(nullptr, dg.data(), du.data(), R.data(), g.data(), u.data(), n);
        Checker cg("swiglu.dgate", tol), cu("swiglu.dup", tol);
        cg.check(g, dg, f);
        cu.check(u, du, f);
        out.push_back(cg.done());
        out.push_back(cu.done());
    }
    {   // embedding, with a repeated id
        const int64_t V = 6, D = 4;
        std::vector<int32_t> ids = {2, 5, 2, 0};
        const int64_t N = (int64_t) ids.size();
        Vec E = rnd.normals(V * D), R = rnd.normals(N * D);
        auto f = [&] {
            Vec y(N * D);
            ops::embedding_forward<double>(y.data(), ids.data(), E.data(), N, D);
            return dot(y, R);
        };
        Vec dE(V * D, 0.0);
        ops::embedding_backward<double>(dE.data(), ids.data(), R.data(), N, D);
        Checker c("embedding.dE", tol);
        c.check(E, dE, f);
        out.push_back(c.done());
    }
    {   // cross-entropy
        const int64_t V = 13;
        Vec z = rnd.normals(V, 3.0);
        const double scale = 0.37;
        auto f = [&] { return scale * ops::cross_entropy<double>(nullptr, z.data(), V, 4, scale); };
        Vec dz(V);
        ops::cross_entropy<double>(dz.data(), z.data(), V, 4, scale);
        Checker c("cross_entropy.dz", tol);
        c.check(z, dz, f);
        out.push_back(c.done());
    }
    return out;
}

namespace {

BaseWeights<double> random_weights(Rand & rnd, const ModelConfig & c) {
    BaseWeights<double> w;
    w.config = c;
    const size_t D = (size_t) c.n_embd, Q = (size_t) c.q_dim(), KV = (size_t) c.kv_dim(), F = (size_t) c.n_ff;
    const size_t V = (size_t) c.n_vocab;
    auto mat = [&](size_t in, size_t o) { return rnd.normals(in * o, 1.0 / std::sqrt((double) in)); };
    auto gain = [&](size_t n) {
        Vec v = rnd.normals(n, 0.1);
        for (auto & x : v) x += 1.0;
        return v;
    };
    w.tok_embd = rnd.normals(V * D, 1.0);
    for (int32_t l = 0; l < c.n_layer; l++) {
        LayerWeights<double> L;
        L.attn_norm = gain(D);
        L.wq = mat(D, Q);
        L.wk = mat(D, KV);
        L.wv = mat(D, KV);
        if (c.qkv_bias) {
            L.bq = rnd.normals(Q, 0.1);
            L.bk = rnd.normals(KV, 0.1);
            L.bv = rnd.normals(KV, 0.1);
        }
        L.wo = mat(Q, D);
        L.ffn_norm = gain(D);
        L.w_gate = mat(D, F);
        L.w_up = mat(D, F);
        L.w_down = mat(F, D);
        w.layers.push_back(std::move(L));
    }
    w.output_norm = gain(D);
    if (!c.tied_output) w.output = mat(D, V);
    return w;
}

ModelConfig tiny_config(const std::string & arch) {
    ModelConfig c;
    c.arch = arch;
    c.n_vocab = 29;
    c.n_embd = 16;
    c.n_layer = 2;
    c.n_head = 4;
    c.n_head_kv = 2;
    c.head_dim = 4;
    c.n_ff = 24;
    c.rope = arch == "qwen2" ? RopeMode::neox : RopeMode::norm;
    c.rope_base = arch == "qwen2" ? 1e6f : 10000.0f;
    c.rms_eps = 1e-6f;
    c.qkv_bias = arch == "qwen2";
    c.tied_output = arch == "qwen2";
    return c;
}

MicroBatch tiny_batch(Rand & rnd, int32_t n_vocab) {
    MicroBatch b;
    b.n_seq = 2;
    b.seq_len = 7;
    b.length = {7, 4};
    b.tokens.resize(14);
    for (auto & t : b.tokens) t = (int32_t) (rnd.uniform() * n_vocab) % n_vocab;
    b.loss = {0, 0, 1, 1, 0, 1, 1,   // a gap in the middle of the first sequence
              0, 1, 1, 1, 0, 0, 0};  // padding after 4 tokens
    return b;
}

// Two preference pairs in one micro-batch, as a pairs DataPlan lays them out (chosen, then
// rejected): examples 4,5 and 0,1, lengths 7,5 and 6,4, the prompt tokens not targets.
MicroBatch tiny_pair_batch(Rand & rnd, int32_t n_vocab) {
    MicroBatch b;
    b.n_seq = 4;
    b.seq_len = 7;
    b.length = {7, 5, 6, 4};
    b.examples = {4, 5, 0, 1};
    b.tokens.resize(28);
    for (auto & t : b.tokens) t = (int32_t) (rnd.uniform() * n_vocab) % n_vocab;
    b.loss = {0, 0, 0, 1, 1, 1, 1,
              0, 0, 0, 1, 1, 0, 0,
              0, 0, 1, 1, 1, 1, 0,
              0, 0, 1, 1, 0, 0, 0};
    return b;
}

// DPO's whole chain, the objective's own code included: the loss of the pair batch as a
// function of the LoRA parameters, against the gradient backward() makes from the weights
// the objective hands it. The reference sums are random, so h is far from 0 and the
// sigmoid and IPO derivatives are exercised away from their symmetric points.
CheckResult check_dpo(const std::string & name, CpuTransformer<double> & model, Vec & theta, const LoraLayout & layout,
                      const MicroBatch & mb, Rand & rnd, const DpoConfig & config) {
    const PackedBatch pb = pack_micro_batch(mb);
    std::vector<double> reference = rnd.normals(6, 3.0);
    for (auto & r : reference) r -= 8.0;
    DpoObjective objective(reference, config);
    const DropoutSpec none;
    auto loss_and_weights = [&](std::vector<double> * weight) {
        std::vector<double> lp, w;
        model.forward_logp(pb, theta.data(), none, &lp, weight != nullptr);
        objective.begin_step({mb});
        const double l = objective.micro_loss(0, mb, lp, w);
        objective.end_step();
        if (weight) *weight = w;
        return l;
    };
    std::vector<double> w;
    loss_and_weights(&w);
    Vec g((size_t) layout.n_params, 0.0);
    model.backward(w.data(), g.data());
    Checker ch(name, 1e-5, 1e-7);
    ch.check(theta, g, [&] { return loss_and_weights(nullptr); }, 1e-5, 400);
    return ch.done();
}

}  // namespace

std::vector<CheckResult> check_model(uint64_t seed) {
    std::vector<CheckResult> out;
    for (const char * arch : {"llama", "qwen2"}) {
        for (float p : {0.0f, 0.3f}) {
            Rand rnd(seed + (arch[0] == 'q' ? 100 : 0) + (p > 0 ? 7 : 0));
            const ModelConfig c = tiny_config(arch);
            const BaseWeights<double> w = random_weights(rnd, c);
            LoraConfig lc;
            lc.rank = 3;
            lc.alpha = 5.0f;
            lc.dropout = p;
            const LoraLayout layout = make_lora_layout(c, lc);
            // B random (not zero) so that every A receives a gradient.
            Vec theta = rnd.normals((size_t) layout.n_params, 0.3);
            const MicroBatch mb = tiny_batch(rnd, c.n_vocab);
            const PackedBatch pb = pack_micro_batch(mb);
            CpuTransformer<double> model(w, layout, nullptr);
            DropoutSpec dp;
            dp.p = p;
            dp.key = RngKey(seed).with(kStreamDropout).with(3);
            const double scale = 1.0 / (double) pb.loss_rows.size();
            Vec grads((size_t) layout.n_params, 0.0);
            model.run(pb, theta.data(), grads.data(), scale, dp);
            auto f = [&] { return scale * model.run(pb, theta.data(), nullptr, 1.0, dp); };
            Checker ch(std::string("model.") + arch + (p > 0 ? ".dropout" : "") + ".lora_grad", 1e-5, 1e-7);
            ch.check(theta, grads, f, 1e-5, 400);
            out.push_back(ch.done());

            // The objective seam: backward with an arbitrary weight per target is the
            // gradient of sum_i w_i logp_i (what DPO's per-sequence losses produce).
            {
                std::vector<double> logp;
                model.forward_logp(pb, theta.data(), dp, &logp, false);
                const Vec w = rnd.normals(logp.size(), 1.0);
                Vec gw((size_t) layout.n_params, 0.0);
                model.forward_logp(pb, theta.data(), dp, nullptr, true);
                model.backward(w.data(), gw.data());
                auto fw = [&] {
                    std::vector<double> lp;
                    model.forward_logp(pb, theta.data(), dp, &lp, false);
                    double sum = 0;
                    for (size_t i = 0; i < lp.size(); i++) sum += w[i] * lp[i];
                    return sum;
                };
                Checker cw(std::string("model.") + arch + (p > 0 ? ".dropout" : "") + ".weighted_logp_grad", 1e-5, 1e-7);
                cw.check(theta, gw, fw, 1e-5, 400);
                out.push_back(cw.done());
            }

            // DPO (dropout off, as DPO trains): sigmoid and IPO through the objective's code.
            if (p == 0.0f) {
                const MicroBatch pairs = tiny_pair_batch(rnd, c.n_vocab);
                DpoConfig dc;
                dc.beta = 0.5;   // larger than the default 0.1: a curvier loss, a sharper check
                out.push_back(check_dpo(std::string("model.") + arch + ".dpo_grad", model, theta, layout, pairs, rnd, dc));
                dc.loss = DpoLoss::ipo;
                out.push_back(check_dpo(std::string("model.") + arch + ".ipo_grad", model, theta, layout, pairs, rnd, dc));
            }

            // Padding invariance: the same sequences one at a time give the same summed loss
            // and gradient as the padded batch (dropout off: its mask is per batch row).
            if (p == 0.0f) {
                Vec g2((size_t) layout.n_params, 0.0);
                double l2 = 0;
                for (int32_t s = 0; s < mb.n_seq; s++) {
                    MicroBatch one;
                    one.n_seq = 1;
                    one.seq_len = mb.length[(size_t) s];
                    one.length = {one.seq_len};
                    one.tokens.assign(mb.tokens.begin() + s * mb.seq_len, mb.tokens.begin() + s * mb.seq_len + one.seq_len);
                    one.loss.assign(mb.loss.begin() + s * mb.seq_len, mb.loss.begin() + s * mb.seq_len + one.seq_len);
                    l2 += model.run(pack_micro_batch(one), theta.data(), g2.data(), scale, dp);
                }
                const double l1 = model.run(pb, theta.data(), nullptr, 1.0, dp);
                CheckResult r;
                r.name = std::string("model.") + arch + ".padding_invariance";
                r.tolerance = 1e-12;
                r.max_abs_err = std::fabs(l1 - l2);
                for (size_t i = 0; i < grads.size(); i++) r.max_abs_err = std::max(r.max_abs_err, std::fabs(grads[i] - g2[i]));
                r.max_rel_err = r.max_abs_err;
                r.n_checked = (int64_t) grads.size() + 1;
                r.passed = r.max_abs_err <= r.tolerance;
                out.push_back(r);

                // Float engine vs the double one on the same weights.
                const BaseWeights<float> wf = convert_weights<float, double>(w);
                std::vector<float> thf(theta.begin(), theta.end()), gf((size_t) layout.n_params, 0.0f);
                CpuTransformer<float> mf(wf, layout, nullptr);
                const double lf = mf.run(pb, thf.data(), gf.data(), (float) scale, dp);
                double gmax = 0, gerr = 0;
                for (size_t i = 0; i < grads.size(); i++) {
                    gmax = std::max(gmax, std::fabs(grads[i]));
                    gerr = std::max(gerr, std::fabs(grads[i] - (double) gf[i]));
                }
                CheckResult fr;
                fr.name = std::string("model.") + arch + ".float_vs_double";
                fr.tolerance = 1e-4;
                fr.max_abs_err = std::max(std::fabs(lf - l1) / std::fabs(l1), gerr / gmax);
                fr.max_rel_err = fr.max_abs_err;
                fr.n_checked = (int64_t) grads.size() + 1;
                fr.passed = fr.max_rel_err <= fr.tolerance;
                out.push_back(fr);
            }
        }
    }
    return out;
}

std::vector<CheckResult> check_kernels(uint64_t seed, int n_threads) {
    std::vector<CheckResult> out;
    Rand rnd(seed);
    ThreadPool one(1), many(std::max(2, n_threads));
    const int64_t shapes[][3] = {{7, 37, 19}, {13, 130, 67}, {4, 16, 300}, {1, 8, 5}, {9, 260, 3}};
    for (const auto & sh : shapes) {
        const int64_t N = sh[0], I = sh[1], O = sh[2];
        Vec x = rnd.normals(N * I), W = rnd.normals(O * I), dy = rnd.normals(N * O);
        std::vector<float> xf(x.begin(), x.end()), Wf(W.begin(), W.end()), dyf(dy.begin(), dy.end());
        Vec y(N * O), dx(N * I, 0.0), dW(O * I, 0.0);
        ops::matmul_forward_ref(y.data(), x.data(), W.data(), (const double *) nullptr, N, I, O);
        ops::matmul_backward_x_ref(dx.data(), dy.data(), W.data(), N, I, O);
        ops::matmul_backward_w_ref(dW.data(), dy.data(), x.data(), N, I, O);
        std::vector<float> y1(N * O), y2(N * O), dx1(N * I, 0.f), dx2(N * I, 0.f), dW1(O * I, 0.f), dW2(O * I, 0.f);
        ops::matmul_forward<float>(&one, y1.data(), xf.data(), Wf.data(), nullptr, N, I, O);
        ops::matmul_forward<float>(&many, y2.data(), xf.data(), Wf.data(), nullptr, N, I, O);
        ops::matmul_backward_x<float>(&one, dx1.data(), dyf.data(), Wf.data(), N, I, O);
        ops::matmul_backward_x<float>(&many, dx2.data(), dyf.data(), Wf.data(), N, I, O);
        ops::matmul_backward_w<float>(&one, dW1.data(), dyf.data(), xf.data(), N, I, O);
        ops::matmul_backward_w<float>(&many, dW2.data(), dyf.data(), xf.data(), N, I, O);
        auto cmp = [&](const char * what, const Vec & ref, const std::vector<float> & a, const std::vector<float> & b,
                       int64_t len) {
            CheckResult r;
            r.name = std::string("kernel.") + what + "[" + std::to_string(N) + "x" + std::to_string(I) + "x" +
                     std::to_string(O) + "]";
            r.tolerance = 2e-6 * std::sqrt((double) len);
            bool same = true;
            for (size_t i = 0; i < ref.size(); i++) {
                const double e = std::fabs(ref[i] - (double) a[i]);
                r.max_abs_err = std::max(r.max_abs_err, e);
                r.max_rel_err = std::max(r.max_rel_err, e / std::max(1.0, std::fabs(ref[i])));
                same = same && std::memcmp(&a[i], &b[i], sizeof(float)) == 0;
            }
            r.n_checked = (int64_t) ref.size();
            r.passed = same && r.max_rel_err <= r.tolerance;
            if (!same) r.name += " (thread-count dependent!)";
            out.push_back(r);
        };
        cmp("matmul_forward", y, y1, y2, I);
        cmp("matmul_backward_x", dx, dx1, dx2, O);
        cmp("matmul_backward_w", dW, dW1, dW2, N);
    }
    {   // the vocabulary-wide split of matmul_backward_x (O chunks summed in order)
        const int64_t N = 5, I = 24, O = 9000;
        Vec W = rnd.normals(O * I), dy = rnd.normals(N * O);
        std::vector<float> Wf(W.begin(), W.end()), dyf(dy.begin(), dy.end());
        Vec dx(N * I, 0.0);
        ops::matmul_backward_x_ref(dx.data(), dy.data(), W.data(), N, I, O);
        std::vector<float> dx1(N * I, 0.f), dx2(N * I, 0.f), dummy;
        ops::matmul_backward_x<float>(&one, dx1.data(), dyf.data(), Wf.data(), N, I, O);
        ops::matmul_backward_x<float>(&many, dx2.data(), dyf.data(), Wf.data(), N, I, O);
        CheckResult r;
        r.name = "kernel.matmul_backward_x[5x24x9000, split over O]";
        r.tolerance = 2e-6 * std::sqrt((double) O);
        bool same = true;
        for (size_t i = 0; i < dx.size(); i++) {
            r.max_abs_err = std::max(r.max_abs_err, std::fabs(dx[i] - (double) dx1[i]));
            r.max_rel_err = std::max(r.max_rel_err, std::fabs(dx[i] - (double) dx1[i]) / std::max(1.0, std::fabs(dx[i])));
            same = same && std::memcmp(&dx1[i], &dx2[i], sizeof(float)) == 0;
        }
        r.n_checked = (int64_t) dx.size();
        r.passed = same && r.max_rel_err <= r.tolerance;
        out.push_back(r);
    }
    {   // fast_expf against std::exp over the range softmax uses
        CheckResult r;
        r.name = "kernel.fast_expf[-86, 88] (scalar == SIMD)";
        r.tolerance = 5e-7;
        for (int k = 0; k <= 200000; k++) {
            const float x = -86.0f + 174.0f * (float) k / 200000.0f;
            const double ref = std::exp((double) x), got = (double) ops::fast_expf(x);
            r.max_rel_err = std::max(r.max_rel_err, std::fabs(got - ref) / ref);
            r.n_checked++;
        }
        r.max_abs_err = r.max_rel_err;
        r.passed = r.max_rel_err <= r.tolerance;
        // The SIMD version (the softmax's body) equals the scalar one (its tail) bit for bit.
        using VF = ops::Simd<float>::V;
        typedef int32_t VI __attribute__((vector_size(ops::kVecBytes)));
        constexpr int W = ops::Simd<float>::kWidth;
        for (int k = 0; k + W <= 200000; k += W) {
            float xs[W], ys[W];
            for (int l = 0; l < W; l++) xs[l] = -100.0f + 200.0f * (float) (k + l) / 200000.0f;
            ops::Simd<float>::store(ys, ops::fast_expf_v<VF, VI>(ops::Simd<float>::load(xs)));
            for (int l = 0; l < W; l++) {
                const float sc = ops::fast_expf(xs[l]);
                if (std::memcmp(&sc, &ys[l], sizeof sc) != 0) r.passed = false;
            }
        }
        out.push_back(r);
    }
    {   // float cross-entropy (fast exp, one pass) against the double one, vocabulary-sized
        const int64_t V = 151936;
        Vec z = rnd.normals((size_t) V, 3.0);
        std::vector<float> zf(z.begin(), z.end()), dzf((size_t) V);
        Vec dz((size_t) V);
        const double l = ops::cross_entropy<double>(dz.data(), z.data(), V, 1234, 0.5);
        const double lf = ops::cross_entropy<float>(dzf.data(), zf.data(), V, 1234, 0.5f);
        CheckResult r;
        r.name = "kernel.cross_entropy float vs double [V=151936]";
        r.tolerance = 1e-5;
        r.max_abs_err = std::fabs(l - lf);
        double gerr = 0;
        for (int64_t v = 0; v < V; v++) gerr = std::max(gerr, std::fabs(dz[(size_t) v] - (double) dzf[(size_t) v]));
        r.max_rel_err = std::max(r.max_abs_err / std::fabs(l), gerr / 0.5);
        r.n_checked = V + 1;
        r.passed = r.max_rel_err <= r.tolerance;
        out.push_back(r);
    }
    return out;
}

}  // namespace selftune::train
