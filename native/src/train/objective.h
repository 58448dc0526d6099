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

}  // namespace selftune::train
