#include "train/trainer.h"

#include "train/checkpoint.h"
#include "train/rng.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace selftune::train {

namespace {

uint64_t hf(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

Schedule make_schedule(const TrainConfig & c, int64_t total) {
    Schedule s = c.schedule;
    s.total_steps = total;
    if (s.warmup_steps < 0) s.warmup_steps = (int64_t) std::ceil((double) c.warmup_ratio * (double) total);
    s.warmup_steps = std::min(s.warmup_steps, total);
    return s;
}

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

Trainer::Trainer(Backend & backend, Objective & objective, const Dataset & data, const TrainConfig & config)
    : backend_(backend), objective_(objective), data_(data), config_(config), plan_(data, config.plan),
      schedule_(make_schedule(config, config.max_steps >= 0 ? std::min(config.max_steps, plan_.total_steps())
                                                             : plan_.total_steps())) {
    total_steps_ = schedule_.total_steps;
    if (total_steps_ < 1) throw std::invalid_argument("maxSteps must be >= 1");
    if (!(schedule_.lr > 0.0f)) throw std::invalid_argument("learning rate must be > 0");
    const PlanConfig & p = config_.plan;
    const LoraConfig & l = backend_.layout().config;
    const ModelConfig & m = backend_.model_config();
    const AdamWConfig & a = config_.adamw;
    uint64_t h = mix64(0x52756e);   // "Run"
    for (uint64_t v : {data_.fingerprint(), (uint64_t) p.epochs, (uint64_t) p.micro_batch, (uint64_t) p.grad_accum,
                       (uint64_t) p.bucket_window, (uint64_t) p.max_length, p.seed, hf(schedule_.lr),
                       hf(schedule_.min_lr_ratio), (uint64_t) schedule_.warmup_steps, (uint64_t) schedule_.decay,
                       hf(a.beta1), hf(a.beta2), hf(a.eps), hf(a.weight_decay), hf(config_.max_grad_norm), config_.seed,
                       (uint64_t) l.rank, hf(l.alpha), hf(l.dropout), (uint64_t) l.targets, (uint64_t) m.n_vocab,
                       (uint64_t) m.n_embd, (uint64_t) m.n_layer, (uint64_t) m.n_ff, (uint64_t) total_steps_, objective_.fingerprint()}) {
        h = hash_combine(h, v);
    }
    // Only when set, so that runs from before the flag keep their fingerprints (checkpoints).
    if (p.pairs) h = hash_combine(h, mix64(0x5061697273));   // "Pairs"
    fingerprint_ = h;
}

void Trainer::save_checkpoint(const std::string & path) const {
    CheckpointState s;
    s.fingerprint = fingerprint_;
    s.step = step_;
    s.updates = updates_;
    s.tokens_seen = tokens_seen_;
    s.loss_tokens_seen = loss_tokens_seen_;
    s.seconds = seconds_;
    s.lora = backend_.layout().config;
    s.history = history_;
    const size_t n = (size_t) backend_.layout().n_params;
    s.params.resize(n);
    s.m.resize(n);
    s.v.resize(n);
    backend_.read_params(s.params.data());
    backend_.read_moments(s.m.data(), s.v.data());
    write_checkpoint(path, s);
}

void Trainer::resume(const std::string & path) {
    CheckpointState s = read_checkpoint(path);
    if (s.fingerprint != fingerprint_) {
        throw std::runtime_error(path + ": checkpoint belongs to a different run (data, plan, optimizer or LoRA "
                                        "configuration changed)");
    }
    if ((int64_t) s.params.size() != backend_.layout().n_params) throw std::runtime_error(path + ": parameter count differs");
    if (s.step < 0 || s.step > total_steps_) throw std::runtime_error(path + ": step out of range");
    backend_.write_params(s.params.data());
    backend_.write_moments(s.m.data(), s.v.data());
    step_ = s.step;
    updates_ = s.updates;
    tokens_seen_ = s.tokens_seen;
    loss_tokens_seen_ = s.loss_tokens_seen;
    seconds_ = s.seconds;
    history_ = std::move(s.history);
}

TrainResult Trainer::run(const std::function<void(const TrainProgress &)> & on_step,
                         const std::function<bool()> & cancelled) {
    TrainResult res;
    res.start_step = step_;
    res.total_steps = total_steps_;
    const double t0 = now_seconds();
    int64_t call_tokens = 0, call_steps = 0;
    const float dropout = objective_.uses_dropout() ? backend_.layout().config.dropout : 0.0f;
    auto checkpoint = [&] {
        if (config_.checkpoint_path.empty()) return;
        save_checkpoint(config_.checkpoint_path);
        res.checkpoint = config_.checkpoint_path;
    };

    while (step_ < total_steps_) {
        if (config_.stop_after_steps >= 0 && call_steps >= config_.stop_after_steps) break;
        const double ts = now_seconds();
        std::vector<MicroBatch> mbs;
        int64_t n_loss = 0;
        for (const auto & idx : plan_.step_batches(step_)) {
            mbs.push_back(plan_.make_micro_batch(idx));
            n_loss += mbs.back().n_loss();
        }
        StepRecord rec;
        rec.step = step_;
        rec.epoch = plan_.epoch_of(step_);
        rec.lr = lr_at(schedule_, step_);
        rec.loss_tokens = n_loss;
        bool aborted = false;
        if (objective_.begin_step(mbs)) {
            backend_.zero_grad();
            double loss = 0;
            std::vector<double> logp, weight;
            ForwardOptions fo;
            fo.for_backward = true;
            fo.dropout.p = dropout;
            for (size_t i = 0; i < mbs.size(); i++) {
                // Between micro-batches: a cancelled step leaves parameters as the last
                // completed step left them (the partial gradient is simply dropped).
                if (cancelled && cancelled()) {
                    aborted = true;
                    break;
                }
                fo.dropout.key = RngKey(config_.seed).with(kStreamDropout).with((uint64_t) step_).with((uint64_t) i);
                const ForwardResult r = backend_.forward(mbs[i], fo, logp);
                rec.tokens += r.n_tokens;
                // A micro-batch without targets still has a loss share (a DPO pair whose
                // responses were cut away scores log 2) but nothing to back-propagate.
                loss += objective_.micro_loss(i, mbs[i], logp, weight);
                if (r.n_targets > 0) backend_.backward(weight);
            }
            if (!aborted) {
                rec.loss = loss;
                rec.metrics = objective_.end_step();
                rec.grad_norm = std::sqrt(backend_.grad_norm_sq());
                AdamWStep st;
                st.config = config_.adamw;
                st.lr = rec.lr;
                st.t = ++updates_;
                st.grad_mult = clip_multiplier(rec.grad_norm, config_.max_grad_norm);
                backend_.adamw_step(st);
            }
        } else {
            rec.loss = std::numeric_limits<double>::quiet_NaN();
            for (const auto & mb : mbs) rec.tokens += mb.n_tokens();
            aborted = cancelled && cancelled();
        }
        if (aborted) {
            res.cancelled = true;
            break;
        }
        rec.seconds = now_seconds() - ts;
        step_++;
        call_steps++;
        call_tokens += rec.tokens;
        tokens_seen_ += rec.tokens;
        loss_tokens_seen_ += rec.loss_tokens;
        seconds_ += rec.seconds;
        history_.push_back(rec);
        res.records.push_back(rec);
        bool checkpointed = false;
        if (config_.checkpoint_every > 0 && step_ % config_.checkpoint_every == 0 && step_ < total_steps_ &&
            !config_.checkpoint_path.empty()) {
            checkpoint();
            checkpointed = true;
        }
        if (on_step) {
            const double elapsed = now_seconds() - t0;
            TrainProgress p{&rec, total_steps_, elapsed, elapsed > 0 ? (double) call_tokens / elapsed : 0.0,
                            (double) (total_steps_ - step_) * elapsed / (double) call_steps, checkpointed};
            on_step(p);
        }
    }
    res.end_step = step_;
    res.completed = step_ == total_steps_;
    res.tokens_seen = tokens_seen_;
    res.loss_tokens_seen = loss_tokens_seen_;
    res.seconds = seconds_;
    // Stopping early (cancel or stop_after_steps) leaves a checkpoint to resume from.
    if (!res.completed) checkpoint();
    return res;
}

}  // namespace selftune::train
