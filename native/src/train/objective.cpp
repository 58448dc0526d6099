#include "train/objective.h"

#include "train/rng.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace selftune::train {

uint64_t TokenMeanCrossEntropy::fingerprint() const {
    return mix64(0x53465443);   // "SFTC"
}

bool TokenMeanCrossEntropy::begin_step(const std::vector<MicroBatch> & step) {
    step_targets_ = 0;
    for (const MicroBatch & mb : step) step_targets_ += mb.n_loss();
    return step_targets_ > 0;
}

double TokenMeanCrossEntropy::micro_loss(size_t, const MicroBatch &, const std::vector<double> & logp,
                                         std::vector<double> & weight) {
    if (step_targets_ <= 0) throw std::logic_error("micro_loss before begin_step");
    // In float, as the gradient scale always was: the weight the backends receive is the
    // float 1/T, so results do not move with this refactoring.
    const double w = -(double) (1.0f / (float) step_targets_);
    double sum = 0;
    weight.assign(logp.size(), w);
    for (double lp : logp) sum -= lp;
    return sum / (double) step_targets_;
}

}  // namespace selftune::train

namespace selftune::train {

std::vector<double> sequence_logp_sums(const MicroBatch & b, const std::vector<double> & logp,
                                       std::vector<int64_t> * counts) {
    std::vector<double> sums((size_t) b.n_seq, 0.0);
    if (counts) counts->assign((size_t) b.n_seq, 0);
    size_t k = 0;
    for (int32_t s = 0; s < b.n_seq; s++) {
        for (int32_t j = 1; j < b.length[(size_t) s]; j++) {
            if (!b.loss[(size_t) s * b.seq_len + j]) continue;
            if (k >= logp.size()) throw std::logic_error("fewer log-probs than loss targets");
            sums[(size_t) s] += logp[k++];
            if (counts) (*counts)[(size_t) s]++;
        }
    }
    if (k != logp.size()) throw std::logic_error("more log-probs than loss targets");
    return sums;
}

const char * dpo_loss_name(DpoLoss l) {
    return l == DpoLoss::ipo ? "ipo" : "sigmoid";
}

namespace {

uint64_t bits(double d) {
    uint64_t u;
    std::memcpy(&u, &d, sizeof u);
    return u;
}

// log(1 + e^x) without overflow for large |x|.
double softplus(double x) {
    return std::max(x, 0.0) + std::log1p(std::exp(-std::fabs(x)));
}

double sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
    const double e = std::exp(x);
    return e / (1.0 + e);
}

}  // namespace

DpoObjective::DpoObjective(std::vector<double> reference, const DpoConfig & config)
    : reference_(std::move(reference)), config_(config) {
    if (!(config_.beta > 0) || !std::isfinite(config_.beta)) throw std::invalid_argument("DPO beta must be > 0");
    for (size_t i = 0; i < reference_.size(); i++) {
        if (!std::isfinite(reference_[i])) {
            throw std::invalid_argument("DPO reference log-prob of example " + std::to_string(i) + " is not finite");
        }
    }
}

std::string DpoObjective::name() const {
    return std::string("dpo.") + dpo_loss_name(config_.loss);
}

uint64_t DpoObjective::fingerprint() const {
    uint64_t h = mix64(0x44504f);   // "DPO"
    h = hash_combine(h, (uint64_t) config_.loss);
    h = hash_combine(h, bits(config_.beta));
    h = hash_combine(h, (uint64_t) reference_.size());
    for (double r : reference_) h = hash_combine(h, bits(r));
    return h;
}

bool DpoObjective::begin_step(const std::vector<MicroBatch> & step) {
    step_pairs_ = 0;
    chosen_ = rejected_ = accurate_ = 0;
    for (const MicroBatch & mb : step) {
        if (mb.examples.size() != (size_t) mb.n_seq || mb.n_seq % 2 != 0) {
            throw std::invalid_argument("DPO needs micro-batches of whole pairs from a pairs data plan");
        }
        for (int32_t s = 0; s < mb.n_seq; s += 2) {
            const int64_t c = mb.examples[(size_t) s], r = mb.examples[(size_t) s + 1];
            if (c < 0 || c % 2 != 0 || r != c + 1) {
                throw std::invalid_argument("DPO: micro-batch sequence " + std::to_string(s) +
                                            " is not a pair (chosen 2i, rejected 2i+1)");
            }
            if ((size_t) r >= reference_.size()) {
                throw std::invalid_argument("DPO: no reference log-prob for example " + std::to_string(r) +
                                            " (the reference has " + std::to_string(reference_.size()) + ")");
            }
        }
        step_pairs_ += mb.n_seq / 2;
    }
    return step_pairs_ > 0;
}

double DpoObjective::micro_loss(size_t, const MicroBatch & b, const std::vector<double> & logp,
                                std::vector<double> & weight) {
    if (step_pairs_ <= 0) throw std::logic_error("micro_loss before begin_step");
    std::vector<int64_t> counts;
    const std::vector<double> sums = sequence_logp_sums(b, logp, &counts);
    std::vector<double> seq_weight((size_t) b.n_seq, 0.0);
    const double beta = config_.beta, n = (double) step_pairs_;
    const bool ipo = config_.loss == DpoLoss::ipo;
    double loss = 0;
    for (int32_t s = 0; s < b.n_seq; s += 2) {
        const size_t c = (size_t) s, r = (size_t) s + 1;
        // IPO compares per-token means; an example with no target left (cut by maxLength)
        // has mean 0, like its sum.
        const double nc = ipo ? (double) std::max<int64_t>(1, counts[c]) : 1.0;
        const double nr = ipo ? (double) std::max<int64_t>(1, counts[r]) : 1.0;
        const double pc = sums[c] / nc, pr = sums[r] / nr;
        const double rc = reference_[(size_t) b.examples[c]] / nc, rr = reference_[(size_t) b.examples[r]] / nr;
        const double h = (pc - pr) - (rc - rr);
        double l, dl_dh;
        if (ipo) {
            const double d = h - 1.0 / (2.0 * beta);
            l = d * d;
            dl_dh = 2.0 * d;
        } else {
            l = softplus(-beta * h);
            dl_dh = -beta * sigmoid(-beta * h);
        }
        loss += l / n;
        seq_weight[c] = dl_dh / (n * nc);
        seq_weight[r] = -dl_dh / (n * nr);
        const double reward_c = beta * (pc - rc), reward_r = beta * (pr - rr);
        chosen_ += reward_c;
        rejected_ += reward_r;
        accurate_ += reward_c > reward_r ? 1.0 : 0.0;
    }
    weight.resize(logp.size());
    size_t k = 0;
    for (int32_t s = 0; s < b.n_seq; s++) {
        for (int64_t t = 0; t < counts[(size_t) s]; t++) weight[k++] = seq_weight[(size_t) s];
    }
    return loss;
}

Metrics DpoObjective::end_step() {
    const double n = (double) step_pairs_;
    return {{"rewards/chosen", chosen_ / n},
            {"rewards/rejected", rejected_ / n},
            {"rewards/margins", (chosen_ - rejected_) / n},
            {"rewards/accuracies", accurate_ / n}};
}

}  // namespace selftune::train
