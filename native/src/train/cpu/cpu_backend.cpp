// The CPU backend: the reference implementation of backend.h on host memory, driving
// CpuTransformer<float> over a thread pool.
#include "train/backend.h"

#include <algorithm>
#include <cstring>

namespace selftune::train {

namespace {

class CpuBackend final : public Backend {
  public:
    CpuBackend(std::shared_ptr<const BaseWeights<float>> weights, const LoraLayout & layout, int n_threads)
        : weights_(std::move(weights)),
          layout_(layout),
          pool_(std::max(1, n_threads)),
          model_(*weights_, layout_, &pool_),
          params_((size_t) layout_.n_params, 0.0f),
          grads_((size_t) layout_.n_params, 0.0f),
          m_((size_t) layout_.n_params, 0.0f),
          v_((size_t) layout_.n_params, 0.0f) {}

    std::string name() const override { return "cpu"; }
    std::string device() const override { return "CPU, " + std::to_string(pool_.n_threads()) + " threads"; }
    const ModelConfig & model_config() const override { return weights_->config; }
    const LoraLayout & layout() const override { return layout_; }

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

    MicroResult accumulate(const MicroBatch & batch, float grad_scale, const DropoutSpec & dropout) override {
        validate_micro_batch(batch, weights_->config.n_vocab);
        const PackedBatch pb = pack_micro_batch(batch);
        MicroResult r;
        r.n_tokens = pb.n_rows;
        r.n_loss = (int64_t) pb.loss_rows.size();
        if (r.n_loss == 0) return r;   // nothing to learn from; skip the compute
        r.loss_sum = model_.run(pb, params_.data(), grads_.data(), grad_scale, dropout);
        return r;
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

    MicroResult evaluate(const MicroBatch & batch, bool use_lora, std::vector<double> * logprobs) override {
        validate_micro_batch(batch, weights_->config.n_vocab);
        const PackedBatch pb = pack_micro_batch(batch);
        MicroResult r;
        r.n_tokens = pb.n_rows;
        r.n_loss = (int64_t) pb.loss_rows.size();
        if (r.n_loss == 0) {
            if (logprobs) logprobs->clear();
            return r;
        }
        r.loss_sum = model_.run(pb, use_lora ? params_.data() : nullptr, nullptr, 1.0f, DropoutSpec{}, logprobs);
        return r;
    }

    void logits(const std::vector<int32_t> & tokens, bool use_lora, bool last_only, std::vector<float> & out,
                bool llama_parity) override {
        if (tokens.empty()) throw std::invalid_argument("logits: no tokens");
        for (int32_t t : tokens) {
            if (t < 0 || t >= weights_->config.n_vocab) throw std::invalid_argument("logits: token id out of range");
        }
        model_.set_llama_parity(llama_parity);
        model_.logits(pack_sequence(tokens, false), use_lora ? params_.data() : nullptr, out, last_only);
        model_.set_llama_parity(false);
    }

  private:
    std::shared_ptr<const BaseWeights<float>> weights_;
    LoraLayout layout_;
    ThreadPool pool_;
    CpuTransformer<float> model_;
    std::vector<float> params_, grads_, m_, v_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(std::shared_ptr<const BaseWeights<float>> weights, const LoraLayout & layout,
                                          int n_threads) {
    return std::make_unique<CpuBackend>(std::move(weights), layout, n_threads);
}

}  // namespace selftune::train
