// train/packed_batch.h's packing with the 32-bit indices the kernels take: row r is token
// pos[r] of its sequence, and the loss targets come out in batch order (sequence, then
// position), exactly as on the CPU backend.
#pragma once

#include "train/batch.h"

#include <cstdint>
#include <vector>

namespace selftune::train::cuda {

struct PackedRows {
    int64_t n_rows = 0;
    int32_t n_seq = 0;
    int32_t max_len = 0;
    std::vector<int32_t> tokens, pos;
    std::vector<int32_t> seq_start;   // n_seq + 1 row offsets
    std::vector<int32_t> loss_rows;   // the row whose output predicts each target
    std::vector<int32_t> targets;
};

PackedRows pack_rows(const MicroBatch & b);

}  // namespace selftune::train::cuda
