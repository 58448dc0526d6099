// What the trainer minimizes, written once above every backend.
//
// A backend's forward gives log p of each loss target; an objective turns those into the
// step's loss and the weights w_i = d loss / d logp_i that the backend's backward takes.
// SFT's token-mean cross-entropy is loss = -(1/T) sum_i logp_i over the T targets of the
// whole optimizer step (all its micro-batches), so w_i = -1/T and a step's gradient does
// not depend on how it is split into micro-batches. DPO (per-sequence sums of the same
// log-probs against a cached reference) implements the same interface.
#pragma once

#include "train/batch.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace selftune::train {

// Named per-step values an objective reports beside the loss (e.g. DPO's reward margin).
using Metrics = std::vector<std::pair<std::string, double>>;

class Objective {
  public:
    virtual ~Objective() = default;

    virtual std::string name() const = 0;
    // Hash of the objective and its settings: part of a run's identity (checkpoints).
    virtual uint64_t fingerprint() const = 0;

    // Called with every micro-batch of an optimizer step before the first forward. Returns
    // false when the step has nothing to learn from (no loss targets): the trainer then
    // skips the forward and backward and makes no update.
    virtual bool begin_step(const std::vector<MicroBatch> & step) = 0;
    // One micro-batch (index `micro` of the step): fills weight[i] = d loss / d logp[i] and
    // returns the micro-batch's share of the step loss.
    virtual double micro_loss(size_t micro, const MicroBatch & batch, const std::vector<double> & logp,
                              std::vector<double> & weight) = 0;
    // After the last micro-batch: the step's extra metrics (may be empty).
    virtual Metrics end_step() { return {}; }
    // Whether the trainer applies the session's LoRA dropout. DPO turns it off (as TRL's
    // disable_dropout does): its reference is computed without dropout, and a policy equal
    // to the reference must reproduce the reference's log-probs exactly at step 0.
    virtual bool uses_dropout() const { return true; }
};

// SFT: token-mean cross-entropy over the step's loss targets (response tokens only: the
// data's loss mask says which).
class TokenMeanCrossEntropy final : public Objective {
  public:
    std::string name() const override { return "sft.token_mean_cross_entropy"; }
    uint64_t fingerprint() const override;
    bool begin_step(const std::vector<MicroBatch> & step) override;
    double micro_loss(size_t micro, const MicroBatch & batch, const std::vector<double> & logp,
                      std::vector<double> & weight) override;

  private:
    int64_t step_targets_ = 0;
};

// Sum of log p over each sequence's loss targets, in the backends' order (sequence, then
// position); counts[s] = targets of sequence s when asked. The policy's sums in training
// and the cached reference sums both come from here: the same additions in the same order,
// so a policy equal to the reference gives bit-equal sums and a step-0 loss of exactly log 2.
std::vector<double> sequence_logp_sums(const MicroBatch & batch, const std::vector<double> & logp,
                                       std::vector<int64_t> * counts = nullptr);

enum class DpoLoss {
    sigmoid,   // -log sigmoid(beta h): DPO
    ipo,       // (h - 1/(2 beta))^2 on per-token mean log-probs: IPO (Azar et al. eq. 17, TRL's form)
};
const char * dpo_loss_name(DpoLoss l);   // "sigmoid" | "ipo"

struct DpoConfig {
    double beta = 0.1;
    DpoLoss loss = DpoLoss::sigmoid;
};

// DPO over preference pairs laid out by a pairs DataPlan (examples 2i chosen, 2i+1 rejected,
// side by side in one micro-batch). Per pair, with S = a sequence's summed target log-probs
// (IPO: their mean) under the policy and R the same under the frozen reference:
//   h = (S_c - S_r) - (R_c - R_r),   loss = mean over the step's pairs of l(h),
// and every target token of a sequence gets the weight d loss / d S of its sequence (IPO:
// divided by its target count). Metrics: rewards/chosen = beta (S_c - R_c),
// rewards/rejected = beta (S_r - R_r), rewards/margins = their difference,
// rewards/accuracies = [margin > 0], each the mean over the step's pairs.
class DpoObjective final : public Objective {
  public:
    // reference[e] = R of example e (sequence_logp_sums under the reference: summed, never
    // averaged, for either loss), the whole dataset's.
    DpoObjective(std::vector<double> reference, const DpoConfig & config);

    std::string name() const override;
    uint64_t fingerprint() const override;   // the loss, beta and every reference sum
    bool uses_dropout() const override { return false; }
    bool begin_step(const std::vector<MicroBatch> & step) override;
    double micro_loss(size_t micro, const MicroBatch & batch, const std::vector<double> & logp,
                      std::vector<double> & weight) override;
    Metrics end_step() override;

  private:
    std::vector<double> reference_;
    DpoConfig config_;
    int64_t step_pairs_ = 0;
    double chosen_ = 0, rejected_ = 0, accurate_ = 0;   // sums over the step's pairs so far
};

}  // namespace selftune::train
