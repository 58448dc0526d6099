// The CPU backend: the reference implementation of backend.h on host memory, driving
// CpuTransformer<float> over a thread pool. The base is dequantized to f32 at load.
#include "train/backend.h"
#include "train/cpu/transformer.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace selftune::train {

namespace {

class CpuBackend final : public Backend {
  public:
    CpuBackend(std::shared_ptr<const BaseModel> owner, const BaseWeights<float> & weights, const LoraLayout & layout,
               int n_threads)
        : owner_(std::move(owner)),
          weights_(weights),
          layout_(layout),
          pool_(std::max(1, n_threads)),
          model_(weights_, layout_, &pool_),
          params_((size_t) layout_.n_params, 0.0f),
          grads_((size_t) layout_.n_params, 0.0f),
          m_((size_t) layout_.n_params, 0.0f),
          v_((size_t) layout_.n_params, 0.0f) {}

    std::string name() const override { return "cpu"; }
    std::string device() const override { return "CPU, " + std::to_string(pool_.n_threads()) + " threads"; }
    const ModelConfig & model_config() const override { return weights_.config; }
    const LoraLayout & layout() const override { return layout_; }
    MemoryStats memory() const override { return {owner_->bytes(), 0}; }

    void read_params(float * dst) const override { std::copy(params_.begin(), params_.end(), dst); }
    void write_params(const float * src) override { std::copy_n(src, params_.size(), params_.begin()); }
    void read_moments(float * m, float * v) const override {
        std::copy(m_.begin(), m_.end(), m);
        std::copy(v_.begin(), v_.end(), v);
    }
    void write_moments(const float * m, const float * v) override {
        std::copy_n(m, m_.size(), m_.begin());
        std::copy_n(v, v_.size(), v_.begin());
    }
    void read_grads(float * dst) const override { std::copy(grads_.begin(), grads_.end(), dst); }

    void zero_grad() override { std::fill(grads_.begin(), grads_.end(), 0.0f); }

    ForwardResult forward(const MicroBatch & batch, const ForwardOptions & o, std::vector<double> & logp) override {
        validate_micro_batch(batch, weights_.config.n_vocab);
        const PackedBatch pb = pack_micro_batch(batch);
        ForwardResult r;
        r.n_tokens = pb.n_rows;
        r.n_targets = (int64_t) pb.loss_rows.size();
        pending_backward_ = false;
        if (r.n_targets == 0) {   // nothing to score or learn from: skip the compute
            logp.clear();
            pending_backward_ = o.for_backward;
            pending_targets_ = 0;
            return r;
        }
        model_.forward_logp(pb, o.use_lora ? params_.data() : nullptr, o.dropout, &logp, o.for_backward);
        pending_backward_ = o.for_backward;
        pending_targets_ = r.n_targets;
        return r;
    }

    void backward(const std::vector<double> & weight) override {
        if (!pending_backward_) throw std::logic_error("backward() needs a forward run with for_backward");
        pending_backward_ = false;
        if ((int64_t) weight.size() != pending_targets_) {
            throw std::invalid_argument("backward(): " + std::to_string(weight.size()) + " weights for " +
                                        std::to_string(pending_targets_) + " targets");
        }
        if (pending_targets_ == 0) return;
        model_.backward(weight.data(), grads_.data());
    }

    double grad_norm_sq() const override {
        double s = 0;
        for (float g : grads_) s += (double) g * (double) g;
        return s;
    }

    void adamw_step(const AdamWStep & step) override {
        // Elementwise, so any split is deterministic; chunks keep both cores busy on the
        // ~10M parameters of a 0.5B model at rank 16.
        const int64_t n = (int64_t) params_.size();
        pool_.parallel_range(n, 1 << 14, [&](int64_t a, int64_t b) {
            adamw_update(params_.data() + a, grads_.data() + a, m_.data() + a, v_.data() + a, b - a, step);
        });
    }

    void logits(const std::vector<int32_t> & tokens, bool use_lora, bool last_only, std::vector<float> & out,
                bool llama_parity) override {
        if (tokens.empty()) throw std::invalid_argument("logits: no tokens");
        for (int32_t t : tokens) {
            if (t < 0 || t >= weights_.config.n_vocab) throw std::invalid_argument("logits: token id out of range");
        }
        pending_backward_ = false;
        model_.set_llama_parity(llama_parity);
        model_.logits(pack_sequence(tokens, false), use_lora ? params_.data() : nullptr, out, last_only);
        model_.set_llama_parity(false);
    }

  private:
    std::shared_ptr<const BaseModel> owner_;   // keeps weights_ alive
    const BaseWeights<float> & weights_;
    LoraLayout layout_;
    ThreadPool pool_;
    CpuTransformer<float> model_;
    std::vector<float> params_, grads_, m_, v_;
    bool pending_backward_ = false;
    int64_t pending_targets_ = 0;
};

class CpuBaseModel final : public BaseModel {
  public:
    CpuBaseModel(std::shared_ptr<const BaseWeights<float>> w, WeightsSource source)
        : weights_(std::move(w)), source_(std::move(source)) {
        bytes_ = weights_->tok_embd.size() + weights_->output.size() + weights_->output_norm.size();
        for (const auto & l : weights_->layers) {
            for (const auto * v : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.bq, &l.bk, &l.bv, &l.wo, &l.ffn_norm,
                                   &l.w_gate, &l.w_up, &l.w_down}) {
                bytes_ += v->size();
            }
        }
        bytes_ *= sizeof(float);
    }

    std::string backend() const override { return "cpu"; }
    std::string device() const override {
        return "CPU (" + std::to_string(std::max(1u, std::thread::hardware_concurrency())) + " logical cores), f32 base";
    }
    BaseStorage storage() const override { return BaseStorage::dense; }
    const ModelConfig & config() const override { return weights_->config; }
    const WeightsSource & source() const override { return source_; }
    uint64_t bytes() const override { return bytes_; }
    const BaseWeights<float> & weights() const { return *weights_; }

    std::unique_ptr<Backend> new_session(const LoraLayout & layout, const SessionOptions & o) override {
        return std::make_unique<CpuBackend>(shared_from_this(), *weights_, layout, std::max(1, o.n_threads));
    }

  private:
    std::shared_ptr<const BaseWeights<float>> weights_;
    WeightsSource source_;
    uint64_t bytes_ = 0;
};

}  // namespace

std::shared_ptr<BaseModel> make_cpu_base_model(std::shared_ptr<const BaseWeights<float>> weights,
                                               const WeightsSource & source) {
    return std::make_shared<CpuBaseModel>(std::move(weights), source);
}

}  // namespace selftune::train
