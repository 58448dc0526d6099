// A CUDA training session: the LoRA state and the activations of one micro-batch on the
// device, and the forward / backward of backend.h over the base (base_model.h).
//
// Step order mirrors CpuTransformer::run: embedding, per layer {norm, q k v (+bias), RoPE,
// attention, o (+residual), norm, gate up, SwiGLU, down (+residual)}, final norm and the
// LM head over the loss rows only; backward the reverse, layer 0 without an input gradient.
//
// Buffers: one allocation for the LoRA state, one for everything sized by the batch
// (carved in fixed order, 256-byte aligned), grown only when a batch needs more, so a warm
// session allocates nothing per step. Precision per tensor:
//   f32   residual stream and its gradient, norm outputs' 1/rms, attention lse, logits of a
//         chunk, LoRA masters, gradients, moments, every input gradient fed to a GEMM as C
//   bf16  every GEMM operand: norm outputs, q k v, attention output, gate up and SwiGLU,
//         u = A x, LoRA copies, the gradients that are next multiplied (dy, dq, dg, ...)
#include "train/cuda/base_model.h"
#include "train/cuda/gemm.cuh"
#include "train/cuda/kernels.cuh"
#include "train/cuda/lora_linear.cuh"
#include "train/cuda/packed_rows.h"
#include "train/cuda/rows.cuh"
#include "train/cuda/status.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace selftune::train::cuda {

namespace {

constexpr size_t kAlign = 256;
// Rows of logits per LM-head chunk: [rows x n_vocab] f32 stays within this.
constexpr int64_t kLogitsChunkBytes = 128ll << 20;

int64_t logits_chunk_rows(int64_t n_vocab, int64_t loss_rows) {
    const int64_t c = std::max<int64_t>(16, kLogitsChunkBytes / (n_vocab * (int64_t) sizeof(float)));
    return std::max<int64_t>(1, std::min(c, loss_rows));
}

// Offsets into one allocation, laid out twice: sizes with a null base, then pointers.
class Carver {
  public:
    explicit Carver(char * base) : base_(base) {}
    template <typename T>
    T * take(int64_t n) {
        off_ = (off_ + kAlign - 1) / kAlign * kAlign;
        T * p = base_ ? reinterpret_cast<T *>(base_ + off_) : nullptr;
        off_ += (size_t) std::max<int64_t>(n, 0) * sizeof(T);
        return p;
    }
    size_t size() const { return off_; }

  private:
    char * base_;
    size_t off_ = 0;
};

// What a batch needs room for; the session keeps the elementwise maximum seen.
struct Capacity {
    int64_t rows = 0;        // packed tokens
    int64_t loss_rows = 0;   // scored rows
    int32_t act_sets = 0;    // layers whose activations are all kept (n_layer, or 1 reused)
    int32_t resids = 0;      // residual-stream buffers (n_layer + 1 kept, or 2 ping-ponged)
    bool backward = false;   // gradient buffers

    bool covers(const Capacity & o) const {
        return rows >= o.rows && loss_rows >= o.loss_rows && act_sets >= o.act_sets && resids >= o.resids &&
               (backward || !o.backward);
    }
    Capacity max(const Capacity & o) const {
        return {std::max(rows, o.rows), std::max(loss_rows, o.loss_rows), std::max(act_sets, o.act_sets),
                std::max(resids, o.resids), backward || o.backward};
    }
};

// One layer's activations. Kept per layer for backward: what is costly to recompute (the
// q/k/v/gate/up products, attention's output and lse, the norms' 1/rms, the adapters' u).
// Shared by every layer and recomputed in backward (selective recomputation): the norm
// outputs xn1/xn2 and h = silu(g) u (elementwise from kept values), and x_mid = x_in + o(att)
// (one of seven products). They are 30% of a layer's bytes (7b: 66 of 173 KB a token),
// which is what brings the 7b shape under 0.6x of PEFT's peak memory.
struct LayerActs {
    bf16 *q, *k, *v, *att, *g, *u;
    float *r1, *lse, *r2;
    bf16 * lora_u[kNumTargets];
    // Shared (the same buffers in every LayerActs):
    bf16 *xn1, *xn2, *h;
    float * x_mid;
};

// Pointers into the batch-sized allocation.
struct Work {
    int32_t *tokens, *pos, *seq_start, *loss_rows, *targets;
    std::vector<float *> resid;
    std::vector<LayerActs> acts;
    // LM head, over the loss rows
    float *xo, *rf, *lse, *logp, *weight, *logits, *dxnf, *dxo;
    bf16 *xnf, *dlogits;
    int64_t chunk = 0;
    // backward
    float *dres, *dxn, *dh, *datt;
    bf16 *dy, *dg, *du, *dq, *dk, *dv;
    void * attn_scratch;
    LinearScratch lin;
};

class CudaSession final : public Backend {
  public:
    CudaSession(std::shared_ptr<CudaBaseModel> base, const LoraLayout & layout, const SessionOptions & options)
        : base_(std::move(base)), c_(base_->config()), layout_(layout), options_(options) {
        check_layout();
        select();
        check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
        try {
            blas_ws_.reserve(Blas::kWorkspaceBytes, "cuBLAS workspace");
            blas_ = std::make_unique<Blas>(stream_, blas_ws_.get(), blas_ws_.bytes());
            Carver probe(nullptr);
            carve_state(probe);
            state_.reserve(probe.size(), "LoRA state");
            Carver c(state_.as<char>());
            carve_state(c);
            check_cuda(cudaMemsetAsync(state_.get(), 0, probe.size(), stream_), "cudaMemset");
            refresh_bf16();
            if (base_->max_stored_weight > 0) {
                weight_scratch_.reserve((size_t) base_->max_stored_weight * sizeof(bf16), "weight scratch");
            }
            sync();
        } catch (...) {
            destroy();
            throw;
        }
    }

    ~CudaSession() override { destroy(); }

    std::string name() const override { return "cuda"; }
    std::string device() const override { return base_->device(); }
    const ModelConfig & model_config() const override { return c_; }
    const LoraLayout & layout() const override { return layout_; }
    MemoryStats memory() const override { return {base_->bytes(), device_bytes_peak()}; }

    void read_params(float * dst) const override { download(dst, params_); }
    void write_params(const float * src) override {
        select();
        upload(params_, src);
        refresh_bf16();
        sync();
    }
    void read_moments(float * m, float * v) const override {
        download(m, m_);
        download(v, v_);
    }
    void write_moments(const float * m, const float * v) override {
        select();
        upload(m_, m);
        upload(v_, v);
        sync();
    }
    void read_grads(float * dst) const override { download(dst, grads_); }

    void zero_grad() override {
        select();
        check_cuda(cudaMemsetAsync(grads_, 0, n_bytes(), stream_), "cudaMemset");
    }

    ForwardResult forward(const MicroBatch & batch, const ForwardOptions & o, std::vector<double> & logp) override {
        select();
        validate_micro_batch(batch, c_.n_vocab);
        last_ = Last{};
        PackedRows p = pack_rows(batch);
        ForwardResult r;
        r.n_targets = (int64_t) p.loss_rows.size();
        r.n_tokens = p.n_rows;
        logp.clear();
        if (r.n_targets == 0) {   // nothing scored: nothing to compute
            last_.valid = o.for_backward;
            return r;
        }
        const int32_t L = c_.n_layer;
        const bool per_layer = o.for_backward && !options_.checkpoint_activations;
        ensure({p.n_rows, r.n_targets, per_layer ? L : 1, o.for_backward ? L + 1 : 2, o.for_backward});
        upload_rows(p);

        last_.rows = p.n_rows;
        last_.n_seq = p.n_seq;
        last_.max_len = p.max_len;
        last_.loss = r.n_targets;
        last_.lora = o.use_lora;
        last_.dropout = o.dropout;
        if (!o.use_lora) last_.dropout.p = 0.0f;
        last_.per_layer = per_layer;
        last_.keep_resid = o.for_backward;

        run_layers();
        head_forward(r.n_targets, nullptr);

        float * host = pinned_.as<float>() + pin_logp_;
        check_cuda(cudaMemcpyAsync(host, w_.logp, (size_t) r.n_targets * sizeof(float), cudaMemcpyDeviceToHost,
                                   stream_),
                   "read log-probs");
        sync();
        logp.assign(host, host + r.n_targets);
        last_.valid = o.for_backward;
        return r;
    }

    void backward(const std::vector<double> & weight) override {
        select();
        if (!last_.valid) throw std::logic_error("backward: the last forward was not run with for_backward");
        if ((int64_t) weight.size() != last_.loss) {
            throw std::invalid_argument("backward: " + std::to_string(weight.size()) + " weights for " +
                                        std::to_string(last_.loss) + " targets");
        }
        last_.valid = false;   // one backward per forward, as the CPU backend
        // The base alone has no LoRA gradient (as the CPU reference: nothing to add).
        if (last_.loss == 0 || !last_.lora) return;
        float * host = pinned_.as<float>() + pin_weight_;
        for (size_t i = 0; i < weight.size(); i++) host[i] = (float) weight[i];
        check_cuda(cudaMemcpyAsync(w_.weight, host, weight.size() * sizeof(float), cudaMemcpyHostToDevice, stream_),
                   "upload weights");
        head_backward();
        for (int32_t l = c_.n_layer - 1; l >= 0; l--) {
            const LayerActs & A = acts(l);
            if (last_.per_layer) recompute_shared(l, A, resid(l));
            else layer_forward(l, A, resid(l), nullptr);   // the checkpoint's recompute
            layer_backward(l, A, resid(l));
        }
        // Errors of the queued work surface here rather than at the caller's next call.
        check_cuda(cudaGetLastError(), "backward");
    }

    double grad_norm_sq() const override {
        select();
        sum_squares(sumsq_, grads_, layout_.n_params, sumsq_scratch_, stream_);
        check_cuda(cudaGetLastError(), "sum_squares");
        double h = 0;
        check_cuda(cudaMemcpyAsync(&h, sumsq_, sizeof h, cudaMemcpyDeviceToHost, stream_), "read sum of squares");
        sync();
        return h;
    }

    void adamw_step(const AdamWStep & s) override {
        select();
        const AdamWConfig & a = s.config;
        adamw(params_, grads_, m_, v_, layout_.n_params, s.lr, a.beta1, a.beta2, a.eps, a.weight_decay, s.t,
              s.grad_mult, stream_);
        check_cuda(cudaGetLastError(), "adamw");
        refresh_bf16();
    }

    void logits(const std::vector<int32_t> & tokens, bool use_lora, bool last_only, std::vector<float> & out,
                bool /*llama_parity*/) override {
        select();
        if (tokens.empty()) throw std::invalid_argument("logits: no tokens");
        for (int32_t t : tokens) {
            if (t < 0 || t >= c_.n_vocab) throw std::invalid_argument("logits: token id out of range");
        }
        last_ = Last{};
        MicroBatch b;
        b.n_seq = 1;
        b.seq_len = (int32_t) tokens.size();
        b.tokens = tokens;
        b.length = {b.seq_len};
        b.loss.assign(tokens.size(), 0);
        PackedRows p = pack_rows(b);
        // The rows to score stand in the loss-row list; their targets are never read.
        const int32_t first = last_only ? (int32_t) p.n_rows - 1 : 0;
        for (int32_t r = first; r < (int32_t) p.n_rows; r++) {
            p.loss_rows.push_back(r);
            p.targets.push_back(0);
        }
        const int64_t M = (int64_t) p.loss_rows.size();
        ensure({p.n_rows, M, 1, 2, false});
        upload_rows(p);
        last_.rows = p.n_rows;
        last_.n_seq = 1;
        last_.max_len = p.max_len;
        last_.lora = use_lora;
        run_layers();
        out.resize((size_t) (M * c_.n_vocab));
        head_forward(M, out.data());
        sync();
    }

  private:
    struct Last {
        bool valid = false;   // backward may follow
        int64_t rows = 0, loss = 0;
        int32_t n_seq = 0, max_len = 0;
        bool lora = false;
        DropoutSpec dropout;
        bool per_layer = false;    // every layer's activations kept (else recomputed)
        bool keep_resid = false;   // every layer's input kept (else two buffers alternate)
    };

    // ---- setup ------------------------------------------------------------------------

    void check_layout() const {
        if ((int32_t) layout_.slot_of.size() != c_.n_layer) {
            throw std::invalid_argument("LoRA layout does not match the model's layer count");
        }
        for (const LoraSlot & s : layout_.slots) {
            const BaseLinear & w = base_->layers[(size_t) s.layer].proj[s.target];
            if (s.n_in != w.n_in || s.n_out != w.n_out) {
                throw std::invalid_argument("LoRA layout does not match the model's projection shapes");
            }
        }
    }

    void select() const { check_cuda(cudaSetDevice(base_->ordinal()), "cudaSetDevice"); }

    void destroy() {
        if (stream_) cudaStreamSynchronize(stream_);
        blas_.reset();
        if (stream_) cudaStreamDestroy(stream_);
        stream_ = nullptr;
    }

    void sync() const { check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }

    size_t n_bytes() const { return (size_t) layout_.n_params * sizeof(float); }

    void carve_state(Carver & c) {
        const int64_t n = layout_.n_params;
        params_ = c.take<float>(n);
        grads_ = c.take<float>(n);
        m_ = c.take<float>(n);
        v_ = c.take<float>(n);
        params_bf_ = c.take<bf16>(n);
        sumsq_ = c.take<double>(1);
        sumsq_scratch_ = c.take<double>(sum_squares_scratch(n));
    }

    void refresh_bf16() {
        cast_f32_to_bf16(params_bf_, params_, layout_.n_params, stream_);
        check_cuda(cudaGetLastError(), "cast_f32_to_bf16");
    }

    void download(float * dst, const float * src) const {
        select();
        check_cuda(cudaMemcpyAsync(dst, src, n_bytes(), cudaMemcpyDeviceToHost, stream_), "read LoRA state");
        sync();
    }
    void upload(float * dst, const float * src) {
        check_cuda(cudaMemcpyAsync(dst, src, n_bytes(), cudaMemcpyHostToDevice, stream_), "write LoRA state");
    }

    // ---- batch-sized buffers -------------------------------------------------------------

    void carve_work(Carver & c, const Capacity & k, Work & w) const {
        const int64_t N = k.rows, M = k.loss_rows, D = c_.n_embd, Qd = c_.q_dim(), KVd = c_.kv_dim(), F = c_.n_ff;
        const int64_t H = c_.n_head, V = c_.n_vocab, r = layout_.config.rank;
        const int64_t max_in = std::max({D, Qd, F}), max_out = std::max({Qd, KVd, D, F});
        w.tokens = c.take<int32_t>(N);
        w.pos = c.take<int32_t>(N);
        w.seq_start = c.take<int32_t>(N + 1);
        w.loss_rows = c.take<int32_t>(M);
        w.targets = c.take<int32_t>(M);
        w.resid.assign((size_t) k.resids, nullptr);
        for (float *& p : w.resid) p = c.take<float>(N * D);
        w.acts.assign((size_t) k.act_sets, LayerActs{});
        bf16 * xn1 = c.take<bf16>(N * D);
        bf16 * xn2 = c.take<bf16>(N * D);
        bf16 * h = c.take<bf16>(N * F);
        float * x_mid = c.take<float>(N * D);
        for (LayerActs & a : w.acts) {
            a.r1 = c.take<float>(N);
            a.q = c.take<bf16>(N * Qd);
            a.k = c.take<bf16>(N * KVd);
            a.v = c.take<bf16>(N * KVd);
            a.att = c.take<bf16>(N * Qd);
            a.lse = c.take<float>(N * H);
            a.r2 = c.take<float>(N);
            a.g = c.take<bf16>(N * F);
            a.u = c.take<bf16>(N * F);
            for (bf16 *& u : a.lora_u) u = c.take<bf16>(N * r);
            a.xn1 = xn1;
            a.xn2 = xn2;
            a.h = h;
            a.x_mid = x_mid;
        }
        w.chunk = logits_chunk_rows(V, M);
        w.xo = c.take<float>(M * D);
        w.xnf = c.take<bf16>(M * D);
        w.rf = c.take<float>(M);
        w.lse = c.take<float>(M);
        w.logp = c.take<float>(M);
        w.weight = c.take<float>(M);
        w.logits = c.take<float>(w.chunk * V);
        w.lin.x_drop = c.take<bf16>(N * max_in);
        w.lin.y32 = c.take<float>(N * max_out);
        w.lin.weight = weight_scratch_.as<bf16>();
        if (k.backward) {
            w.dlogits = c.take<bf16>(w.chunk * V);
            w.dxnf = c.take<float>(M * D);
            w.dxo = c.take<float>(M * D);
            w.dres = c.take<float>(N * D);
            w.dxn = c.take<float>(N * D);
            w.dh = c.take<float>(N * F);
            w.datt = c.take<float>(N * Qd);
            w.dy = c.take<bf16>(N * std::max(D, Qd));
            w.dg = c.take<bf16>(N * F);
            w.du = c.take<bf16>(N * F);
            w.dq = c.take<bf16>(N * Qd);
            w.dk = c.take<bf16>(N * KVd);
            w.dv = c.take<bf16>(N * KVd);
            w.attn_scratch = c.take<char>((int64_t) attention_backward_scratch(N, c_.n_head, c_.n_head_kv, c_.head_dim));
            w.lin.gu = c.take<bf16>(N * r);
            w.lin.dx_drop = c.take<float>(N * max_in);
        }
    }

    void ensure(const Capacity & want) {
        if (cap_.covers(want)) return;
        // The pinned staging moves too: no copy may still be reading or writing it.
        sync();
        const Capacity k = cap_.max(want);
        Work w;
        Carver probe(nullptr);
        carve_work(probe, k, w);
        work_.reserve(probe.size(), "activations");
        Carver c(work_.as<char>());
        carve_work(c, k, w);
        w_ = std::move(w);
        cap_ = k;
        // Pinned staging: the rows' ints, then the weights, then the log-probs (regions apart,
        // so that a backward's upload never shares bytes with the next forward's).
        const int64_t ints = 3 * k.rows + 1 + 2 * k.loss_rows;
        pin_weight_ = ints;
        pin_logp_ = ints + k.loss_rows;
        pinned_.reserve((size_t) (ints + 2 * k.loss_rows) * 4);
    }

    void upload_rows(const PackedRows & p) {
        int32_t * h = pinned_.as<int32_t>();
        auto put = [&](int32_t * dst, const std::vector<int32_t> & v, int64_t & at) {
            std::memcpy(h + at, v.data(), v.size() * sizeof(int32_t));
            check_cuda(cudaMemcpyAsync(dst, h + at, v.size() * sizeof(int32_t), cudaMemcpyHostToDevice, stream_),
                       "upload batch");
            at += (int64_t) v.size();
        };
        int64_t at = 0;
        put(w_.tokens, p.tokens, at);
        put(w_.pos, p.pos, at);
        put(w_.seq_start, p.seq_start, at);
        put(w_.loss_rows, p.loss_rows, at);
        put(w_.targets, p.targets, at);
    }

    float * resid(int32_t l) const { return w_.resid[(size_t) (last_.keep_resid ? l : l % 2)]; }
    const LayerActs & acts(int32_t l) const { return w_.acts[(size_t) (last_.per_layer ? l : 0)]; }

    // ---- forward -----------------------------------------------------------------------

    // The adapter of (layer, target) for the last forward, or null.
    const LoraLinear * adapter(int32_t l, int t, LoraLinear & out) const {
        if (!last_.lora) return nullptr;
        const int32_t slot = layout_.slot_of[(size_t) l][(size_t) t];
        if (slot < 0) return nullptr;
        const LoraSlot & s = layout_.slots[(size_t) slot];
        out.A = params_bf_ + s.a_offset;
        out.B = params_bf_ + s.b_offset;
        out.dA = grads_ + s.a_offset;
        out.dB = grads_ + s.b_offset;
        out.rank = layout_.config.rank;
        out.scale = layout_.config.scale();
        out.dropout_p = last_.dropout.p;
        out.dropout_key = last_.dropout.key.with((uint64_t) slot).h;
        return &out;
    }

    LinearContext linear_context() const { return {*blas_, w_.lin, stream_}; }

    void run_layers() {
        const int64_t N = last_.rows, D = c_.n_embd;
        embedding_forward(resid(0), w_.tokens, base_->tok_embd, base_->tok_embd_type, N, D, stream_);
        for (int32_t l = 0; l < c_.n_layer; l++) layer_forward(l, acts(l), resid(l), resid(l + 1));
        check_cuda(cudaGetLastError(), "forward");
    }

    // x_out null: the recompute of a checkpointed layer, whose output is already kept.
    void layer_forward(int32_t l, const LayerActs & A, const float * x_in, float * x_out) {
        const DeviceLayer & W = base_->layers[(size_t) l];
        const LinearContext lc = linear_context();
        const int64_t N = last_.rows, D = c_.n_embd, F = c_.n_ff;
        const int H = c_.n_head, Hkv = c_.n_head_kv, hd = c_.head_dim;
        const int mode = c_.rope == RopeMode::neox ? 1 : 0;
        LoraLinear ad;

        rmsnorm_forward(A.xn1, A.r1, x_in, W.attn_norm, N, D, c_.rms_eps, stream_);
        lora_linear_forward(lc, A.q, A.xn1, N, W.proj[kQ], adapter(l, kQ, ad), A.lora_u[kQ]);
        lora_linear_forward(lc, A.k, A.xn1, N, W.proj[kK], adapter(l, kK, ad), A.lora_u[kK]);
        lora_linear_forward(lc, A.v, A.xn1, N, W.proj[kV], adapter(l, kV, ad), A.lora_u[kV]);
        rope(A.q, w_.pos, N, H, hd, mode, c_.rope_base, false, stream_);
        rope(A.k, w_.pos, N, Hkv, hd, mode, c_.rope_base, false, stream_);
        attention_forward(A.att, A.lse, A.q, A.k, A.v, w_.seq_start, last_.n_seq, last_.max_len, N, H, Hkv, hd,
                          stream_);

        check_cuda(cudaMemcpyAsync(A.x_mid, x_in, (size_t) (N * D) * sizeof(float), cudaMemcpyDeviceToDevice, stream_),
                   "residual copy");
        lora_linear_forward_add(lc, A.x_mid, A.att, N, W.proj[kO], adapter(l, kO, ad), A.lora_u[kO]);

        rmsnorm_forward(A.xn2, A.r2, A.x_mid, W.ffn_norm, N, D, c_.rms_eps, stream_);
        lora_linear_forward(lc, A.g, A.xn2, N, W.proj[kGate], adapter(l, kGate, ad), A.lora_u[kGate]);
        lora_linear_forward(lc, A.u, A.xn2, N, W.proj[kUp], adapter(l, kUp, ad), A.lora_u[kUp]);
        swiglu_forward(A.h, A.g, A.u, N * F, stream_);
        if (x_out) {
            check_cuda(cudaMemcpyAsync(x_out, A.x_mid, (size_t) (N * D) * sizeof(float), cudaMemcpyDeviceToDevice,
                                       stream_),
                       "residual copy");
        }
        lora_linear_forward_add(lc, x_out, A.h, N, W.proj[kDown], adapter(l, kDown, ad), A.lora_u[kDown]);
    }

    // The shared activations of layer l from what it kept (see LayerActs): the same kernels
    // on the same inputs as its forward, so the same values bit for bit.
    void recompute_shared(int32_t l, const LayerActs & A, const float * x_in) {
        const DeviceLayer & W = base_->layers[(size_t) l];
        const LinearContext lc = linear_context();
        const int64_t N = last_.rows, D = c_.n_embd, F = c_.n_ff;
        LoraLinear ad;
        rmsnorm_forward(A.xn1, A.r1, x_in, W.attn_norm, N, D, c_.rms_eps, stream_);
        check_cuda(cudaMemcpyAsync(A.x_mid, x_in, (size_t) (N * D) * sizeof(float), cudaMemcpyDeviceToDevice, stream_),
                   "residual copy");
        lora_linear_forward_add(lc, A.x_mid, A.att, N, W.proj[kO], adapter(l, kO, ad), A.lora_u[kO]);
        rmsnorm_forward(A.xn2, A.r2, A.x_mid, W.ffn_norm, N, D, c_.rms_eps, stream_);
        swiglu_forward(A.h, A.g, A.u, N * F, stream_);
    }

    // Final norm and LM head over the M rows listed in w_.loss_rows. logits_out null: the
    // cross-entropy's log-probs (w_.logp) and lse for backward; else the logits themselves.
    void head_forward(int64_t M, float * logits_out) {
        const int64_t D = c_.n_embd, V = c_.n_vocab;
        gather_rows(w_.xo, resid(c_.n_layer), w_.loss_rows, M, D, stream_);
        rmsnorm_forward(w_.xnf, w_.rf, w_.xo, base_->output_norm, M, D, c_.rms_eps, stream_);
        const bf16 * W = base_weight_bf16(linear_context(), base_->output);
        for (int64_t c0 = 0; c0 < M; c0 += w_.chunk) {
            const int64_t m = std::min(w_.chunk, M - c0);
            gemm_xwt(*blas_, w_.logits, OutType::f32, w_.xnf + c0 * D, W, m, D, V);
            if (logits_out) {
                check_cuda(cudaMemcpyAsync(logits_out + c0 * V, w_.logits, (size_t) (m * V) * sizeof(float),
                                           cudaMemcpyDeviceToHost, stream_),
                           "read logits");
            } else {
                cross_entropy_forward(w_.logp + c0, w_.lse + c0, w_.logits, w_.targets + c0, m, V, stream_);
            }
        }
        check_cuda(cudaGetLastError(), "LM head");
    }

    // ---- backward ----------------------------------------------------------------------

    // d(sum weight * logp) through the LM head and the final norm into w_.dres, [N x D].
    void head_backward() {
        const int64_t M = last_.loss, N = last_.rows, D = c_.n_embd, V = c_.n_vocab;
        const bf16 * W = base_weight_bf16(linear_context(), base_->output);
        for (int64_t c0 = 0; c0 < M; c0 += w_.chunk) {
            const int64_t m = std::min(w_.chunk, M - c0);
            // The logits are recomputed rather than kept: [M x V] f32 would dwarf the rest.
            gemm_xwt(*blas_, w_.logits, OutType::f32, w_.xnf + c0 * D, W, m, D, V);
            cross_entropy_backward(w_.dlogits, w_.logits, w_.lse + c0, w_.targets + c0, w_.weight + c0, m, V, stream_);
            gemm_dyw(*blas_, w_.dxnf + c0 * D, OutType::f32, w_.dlogits, W, m, D, V);
        }
        check_cuda(cudaMemsetAsync(w_.dxo, 0, (size_t) (M * D) * sizeof(float), stream_), "cudaMemset");
        rmsnorm_backward(w_.dxo, w_.dxnf, w_.xo, w_.rf, base_->output_norm, M, D, stream_);
        check_cuda(cudaMemsetAsync(w_.dres, 0, (size_t) (N * D) * sizeof(float), stream_), "cudaMemset");
        scatter_rows(w_.dres, w_.dxo, w_.loss_rows, M, D, stream_);
    }

    // In: w_.dres = gradient of the layer's output. Out: of its input (unless layer 0).
    void layer_backward(int32_t l, const LayerActs & A, const float * x_in) {
        const DeviceLayer & W = base_->layers[(size_t) l];
        const LinearContext lc = linear_context();
        const int64_t N = last_.rows, D = c_.n_embd, Qd = c_.q_dim(), F = c_.n_ff;
        const int H = c_.n_head, Hkv = c_.n_head_kv, hd = c_.head_dim;
        const int mode = c_.rope == RopeMode::neox ? 1 : 0;
        LoraLinear ad;

        // FFN block: out = x_mid + down(silu(gate(xn2)) * up(xn2)), xn2 = norm(x_mid)
        cast_f32_to_bf16(w_.dy, w_.dres, N * D, stream_);
        lora_linear_backward(lc, w_.dh, false, w_.dy, A.h, N, W.proj[kDown], adapter(l, kDown, ad), A.lora_u[kDown]);
        swiglu_backward(w_.dg, w_.du, w_.dh, A.g, A.u, N * F, stream_);
        lora_linear_backward(lc, w_.dxn, false, w_.dg, A.xn2, N, W.proj[kGate], adapter(l, kGate, ad),
                             A.lora_u[kGate]);
        lora_linear_backward(lc, w_.dxn, true, w_.du, A.xn2, N, W.proj[kUp], adapter(l, kUp, ad), A.lora_u[kUp]);
        // The residual passes dres through; the norm adds its share: dres becomes d x_mid.
        rmsnorm_backward(w_.dres, w_.dxn, A.x_mid, A.r2, W.ffn_norm, N, D, stream_);

        // Attention block: x_mid = x_in + o(attn(rope(q(xn1)), rope(k(xn1)), v(xn1))), xn1 = norm(x_in)
        cast_f32_to_bf16(w_.dy, w_.dres, N * D, stream_);
        lora_linear_backward(lc, w_.datt, false, w_.dy, A.att, N, W.proj[kO], adapter(l, kO, ad), A.lora_u[kO]);
        cast_f32_to_bf16(w_.dy, w_.datt, N * Qd, stream_);
        attention_backward(w_.dq, w_.dk, w_.dv, w_.dy, A.att, A.lse, A.q, A.k, A.v, w_.seq_start, last_.n_seq,
                           last_.max_len, N, H, Hkv, hd, w_.attn_scratch, stream_);
        rope(w_.dq, w_.pos, N, H, hd, mode, c_.rope_base, true, stream_);
        rope(w_.dk, w_.pos, N, Hkv, hd, mode, c_.rope_base, true, stream_);

        // Below layer 0 there is only the frozen embedding: no input gradient needed.
        const bool need_dx = l > 0;
        float * dxn = need_dx ? w_.dxn : nullptr;
        lora_linear_backward(lc, dxn, false, w_.dq, A.xn1, N, W.proj[kQ], adapter(l, kQ, ad), A.lora_u[kQ]);
        lora_linear_backward(lc, dxn, true, w_.dk, A.xn1, N, W.proj[kK], adapter(l, kK, ad), A.lora_u[kK]);
        lora_linear_backward(lc, dxn, true, w_.dv, A.xn1, N, W.proj[kV], adapter(l, kV, ad), A.lora_u[kV]);
        if (need_dx) rmsnorm_backward(w_.dres, w_.dxn, x_in, A.r1, W.attn_norm, N, D, stream_);
    }

    std::shared_ptr<CudaBaseModel> base_;
    const ModelConfig & c_;
    LoraLayout layout_;
    SessionOptions options_;

    cudaStream_t stream_ = nullptr;
    DeviceBuffer blas_ws_;
    std::unique_ptr<Blas> blas_;

    DeviceBuffer state_;   // LoRA parameters, gradient, moments, bf16 copy, sum-of-squares scratch
    float *params_ = nullptr, *grads_ = nullptr, *m_ = nullptr, *v_ = nullptr;
    bf16 * params_bf_ = nullptr;
    double *sumsq_ = nullptr, *sumsq_scratch_ = nullptr;

    DeviceBuffer weight_scratch_;   // one stored matrix dequantized (stored storage only)
    DeviceBuffer work_;
    Capacity cap_;
    Work w_{};
    PinnedBuffer pinned_;
    int64_t pin_weight_ = 0, pin_logp_ = 0;   // offsets (in 4-byte words) into pinned_

    Last last_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_session(std::shared_ptr<CudaBaseModel> base, const LoraLayout & layout,
                                           const SessionOptions & options) {
    return std::make_unique<CudaSession>(std::move(base), layout, options);
}

}  // namespace selftune::train::cuda
