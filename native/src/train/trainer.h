// The training loop, backend- and objective-agnostic: the data plan, micro-batches with
// gradient accumulation, clipping, the schedule, AdamW, checkpoints, progress and
// cancellation. Per micro-batch: backend forward (log-probs of the targets) -> objective
// (loss share, weights d loss / d logp) -> backend backward (LoRA gradient).
#pragma once

#include "train/backend.h"
#include "train/data_plan.h"
#include "train/objective.h"
#include "train/optimizer.h"
#include "train/schedule.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace selftune::train {

struct TrainConfig {
    PlanConfig plan;
    Schedule schedule;            // total_steps is set from the plan
    float warmup_ratio = 0.03f;   // used when schedule.warmup_steps < 0
    AdamWConfig adamw;
    float max_grad_norm = 1.0f;   // <= 0: no clipping
    uint64_t seed = 0;            // dropout masks (plan.seed orders the data)
    std::string checkpoint_path;  // empty: no checkpoints
    int64_t checkpoint_every = 0; // steps; 0: only when stopping early or cancelled
    int64_t stop_after_steps = -1;   // stop after this many steps in this call (-1: run to the end)
    int64_t max_steps = -1;          // cap on the plan's steps (-1: all): the schedule spans the cap
};

struct StepRecord {
    int64_t step = 0;          // 0-based optimizer step
    int32_t epoch = 0;
    double loss = 0;           // the objective's step loss: SFT the mean over its loss targets,
                               // DPO the mean over its pairs (NaN when it had nothing to learn)
    int64_t loss_tokens = 0;
    int64_t tokens = 0;        // real tokens processed in the step
    float lr = 0;
    double grad_norm = 0;      // before clipping
    double seconds = 0;        // wall time of the step
    Metrics metrics;           // the objective's extra values (empty for SFT)
};

struct TrainProgress {
    const StepRecord * record;
    int64_t total_steps;
    double elapsed;            // seconds in this call
    double tokens_per_second;  // real tokens / elapsed, this call
    double eta;                // seconds to the end of the plan at this call's pace
    bool checkpointed;         // a checkpoint holding this step was just written
};

struct TrainResult {
    std::vector<StepRecord> records;   // the steps run in this call
    int64_t start_step = 0, end_step = 0, total_steps = 0;
    int64_t tokens_seen = 0, loss_tokens_seen = 0;   // over the whole run, resumed parts included
    double seconds = 0;                // training time over the whole run
    bool completed = false;            // end_step == total_steps
    bool cancelled = false;
    std::string checkpoint;            // last checkpoint written, if any
};

class Trainer {
  public:
    Trainer(Backend & backend, Objective & objective, const Dataset & data, const TrainConfig & config);

    // Identity of the run: data, plan, schedule, optimizer, LoRA and model configuration.
    // A checkpoint resumes only a run with the same fingerprint.
    uint64_t fingerprint() const { return fingerprint_; }
    const DataPlan & plan() const { return plan_; }
    int64_t total_steps() const { return total_steps_; }
    const Schedule & schedule() const { return schedule_; }

    // Loads parameters, optimizer state, step and counters. Throws on a mismatch.
    void resume(const std::string & path);
    void save_checkpoint(const std::string & path) const;

    TrainResult run(const std::function<void(const TrainProgress &)> & on_step,
                    const std::function<bool()> & cancelled);

    const std::vector<StepRecord> & history() const { return history_; }

  private:
    Backend & backend_;
    Objective & objective_;
    const Dataset & data_;
    TrainConfig config_;
    DataPlan plan_;
    Schedule schedule_;
    uint64_t fingerprint_ = 0;
    int64_t total_steps_ = 0;   // the plan's, or max_steps when smaller

    int64_t step_ = 0;      // next step to run
    int64_t updates_ = 0;   // AdamW updates done (steps with no loss target update nothing)
    int64_t tokens_seen_ = 0, loss_tokens_seen_ = 0;
    double seconds_ = 0;
    std::vector<StepRecord> history_;
};

}  // namespace selftune::train
