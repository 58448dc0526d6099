// A right-padded micro-batch packed into rows, the layout every backend computes on: padding
// never reaches a kernel, and attention needs only each sequence's first row.
#pragma once

#include "train/batch.h"

#include <cstdint>
#include <vector>

namespace selftune::train {

// Sequences back to back without padding: row r is token pos[r] of its sequence.
struct PackedBatch {
    int64_t n_rows = 0;
    int32_t max_len = 0;              // the longest sequence
    std::vector<int32_t> tokens, pos;
    std::vector<int64_t> seq_start;   // n_seq + 1 row offsets
    // Rows whose output is scored, and the token each is scored against.
    std::vector<int64_t> loss_rows;
    std::vector<int32_t> loss_targets;
};

PackedBatch pack_micro_batch(const MicroBatch & b);
// One sequence, every position scored against the next token (for logits / log-probs).
PackedBatch pack_sequence(const std::vector<int32_t> & tokens, bool score_all);

}  // namespace selftune::train
