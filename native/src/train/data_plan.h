// The training data and the order it is visited in.
//
// Order is a pure function of (seed, step): no iterator state exists, so the "data
// position" a checkpoint must carry is just the optimizer step. For each epoch:
//   1. shuffle all examples (seeded by seed and epoch);
//   2. length bucketing: cut the shuffled order into windows of `bucket_window` steps'
//      worth of examples, sort each window by length (ties keep shuffled order), cut it
//      into steps, and shuffle the steps within the window; so a step holds examples of
//      similar length (little padding) while windows keep the epoch's mix random;
//   3. inside a step, examples sorted by length are split into micro-batches of
//      `micro_batch` (grad_accum of them per step; the epoch's last step may be short).
// bucket_window = 1 turns cross-step bucketing off (plain shuffled batches).
//
// pairs: the data is preference pairs, examples 2i (chosen) and 2i+1 (rejected). Every rule
// above then applies to pairs instead of examples (a pair's length is its longer member's,
// micro_batch counts pairs), and a pair expands to its two examples, chosen first, side by
// side in one micro-batch: DPO's loss couples the two, so they must share a forward/backward.
#pragma once

#include "train/batch.h"

#include <cstdint>
#include <vector>

namespace selftune::train {

// Examples stored flat: example i is tokens[offsets[i] .. offsets[i+1]) with its loss mask.
struct Dataset {
    std::vector<int32_t> tokens;
    std::vector<uint8_t> loss;
    std::vector<int64_t> offsets;   // n + 1

    int64_t size() const { return offsets.empty() ? 0 : (int64_t) offsets.size() - 1; }
    int64_t length(int64_t i) const { return offsets[(size_t) i + 1] - offsets[(size_t) i]; }
    uint64_t fingerprint() const;   // hash of tokens, masks and boundaries
};

struct PlanConfig {
    int32_t epochs = 3;
    int32_t micro_batch = 4;
    int32_t grad_accum = 2;
    int32_t bucket_window = 8;   // steps per bucketing window
    int32_t max_length = 1024;   // longer examples are cut to this many tokens (counted)
    int32_t pad_id = 0;          // any valid id: padded positions are never computed on
    uint64_t seed = 0;
    bool pairs = false;          // preference pairs (2i chosen, 2i+1 rejected): units of pairs
};

class DataPlan {
  public:
    DataPlan(const Dataset & data, const PlanConfig & config);

    int64_t steps_per_epoch() const { return steps_per_epoch_; }
    int64_t total_steps() const { return steps_per_epoch_ * config_.epochs; }
    int64_t n_truncated() const { return n_truncated_; }
    int32_t epoch_of(int64_t step) const { return (int32_t) (step / steps_per_epoch_); }

    // Example indices of each micro-batch of optimizer step `step` (0-based, global).
    std::vector<std::vector<int64_t>> step_batches(int64_t step) const;
    MicroBatch make_micro_batch(const std::vector<int64_t> & examples) const;

  private:
    // A unit is what the plan orders: an example, or a pair of them.
    int64_t n_units() const { return config_.pairs ? data_.size() / 2 : data_.size(); }
    int64_t unit_length(int64_t u) const;
    std::vector<int64_t> epoch_steps_order(int32_t epoch, std::vector<int64_t> & step_start) const;

    const Dataset & data_;
    PlanConfig config_;
    int64_t steps_per_epoch_ = 0;
    int64_t n_truncated_ = 0;
    // The last epoch's order, cached: steps ask for it in sequence.
    mutable int32_t cached_epoch_ = -1;
    mutable std::vector<int64_t> cached_order_, cached_step_start_;
};

}  // namespace selftune::train
