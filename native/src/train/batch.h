// A micro-batch as every backend receives it: n_seq sequences right-padded to one length.
//
// Padding is what a device backend wants (fixed shapes); the CPU backend skips padded
// positions entirely, which is exact: attention is causal and padding sits after the real
// tokens, so no real position ever sees a padded one, and padded positions carry no loss.
//
// loss[s * seq_len + j] = 1 marks token j of sequence s as a loss target: the model's
// output at position j-1 is scored against it. Token 0 can never be a target (nothing
// precedes it); validate_micro_batch rejects that.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace selftune::train {

struct MicroBatch {
    int32_t n_seq = 0;
    int32_t seq_len = 0;             // padded length
    std::vector<int32_t> tokens;     // [n_seq x seq_len]
    std::vector<uint8_t> loss;       // [n_seq x seq_len]
    std::vector<int32_t> length;     // [n_seq], 1..seq_len real tokens
    // Dataset index of each sequence, when it came from a DataPlan (objectives that look up
    // per-example inputs, e.g. DPO's reference sums, need it; backends ignore it).
    std::vector<int64_t> examples;

    int64_t n_loss() const {
        int64_t n = 0;
        for (int32_t s = 0; s < n_seq; s++) {
            for (int32_t j = 1; j < length[(size_t) s]; j++) n += loss[(size_t) s * seq_len + j] ? 1 : 0;
        }
        return n;
    }
    int64_t n_tokens() const {
        int64_t n = 0;
        for (int32_t l : length) n += l;
        return n;
    }
};

inline void validate_micro_batch(const MicroBatch & b, int32_t n_vocab) {
    const size_t cells = (size_t) b.n_seq * (size_t) b.seq_len;
    if (b.n_seq < 1 || b.seq_len < 1 || b.tokens.size() != cells || b.loss.size() != cells ||
        b.length.size() != (size_t) b.n_seq) {
        throw std::invalid_argument("micro-batch: inconsistent sizes");
    }
    for (int32_t s = 0; s < b.n_seq; s++) {
        const int32_t L = b.length[(size_t) s];
        if (L < 1 || L > b.seq_len) throw std::invalid_argument("micro-batch: sequence length out of range");
        for (int32_t j = 0; j < L; j++) {
            const int32_t t = b.tokens[(size_t) s * b.seq_len + j];
            if (t < 0 || t >= n_vocab) {
                throw std::invalid_argument("micro-batch: token id " + std::to_string(t) + " out of range");
            }
        }
        if (b.loss[(size_t) s * b.seq_len] != 0) {
            throw std::invalid_argument("micro-batch: the first token of a sequence cannot be a loss target");
        }
    }
}

}  // namespace selftune::train
