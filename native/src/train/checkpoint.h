// Checkpoint files: everything a run needs to continue exactly where it stopped.
//
// Binary, little-endian, written to a temporary file and renamed into place (a crash never
// leaves a torn checkpoint under the final name); a trailing hash catches truncation:
//   "STCKPT01"  u32 version
//   u64 fingerprint   i64 step, updates, tokens_seen, loss_tokens_seen   f64 seconds
//   i32 rank  f32 alpha  f32 dropout  u32 targets   i64 n_params
//   i64 n_history, then per step: i64 step, i32 epoch, f64 loss, i64 loss_tokens,
//       i64 tokens, f32 lr, f64 grad_norm, f64 seconds
//   f32 params[n], f32 m[n], f32 v[n]      (LoRA layout order)
//   u64 hash of every byte before it
#pragma once

#include "train/lora.h"
#include "train/trainer.h"

#include <cstdint>
#include <string>
#include <vector>

namespace selftune::train {

struct CheckpointState {
    uint64_t fingerprint = 0;
    int64_t step = 0, updates = 0, tokens_seen = 0, loss_tokens_seen = 0;
    double seconds = 0;
    LoraConfig lora;
    std::vector<StepRecord> history;
    std::vector<float> params, m, v;
};

void write_checkpoint(const std::string & path, const CheckpointState & s);
// Throws std::runtime_error naming the file on a bad magic, version, size or hash.
CheckpointState read_checkpoint(const std::string & path);

}  // namespace selftune::train
