#include "train/packed_batch.h"

#include <algorithm>

namespace selftune::train {

PackedBatch pack_micro_batch(const MicroBatch & b) {
    PackedBatch p;
    p.seq_start.push_back(0);
    for (int32_t s = 0; s < b.n_seq; s++) {
        const int32_t L = b.length[(size_t) s];
        const size_t base = (size_t) s * (size_t) b.seq_len;
        const int64_t row0 = p.n_rows;
        for (int32_t j = 0; j < L; j++) {
            p.tokens.push_back(b.tokens[base + (size_t) j]);
            p.pos.push_back(j);
            // Token j is predicted by row j-1 of the same sequence.
            if (j > 0 && b.loss[base + (size_t) j]) {
                p.loss_rows.push_back(row0 + j - 1);
                p.loss_targets.push_back(b.tokens[base + (size_t) j]);
            }
        }
        p.n_rows += L;
        p.max_len = std::max(p.max_len, L);
        p.seq_start.push_back(p.n_rows);
    }
    return p;
}

PackedBatch pack_sequence(const std::vector<int32_t> & tokens, bool score_all) {
    MicroBatch b;
    b.n_seq = 1;
    b.seq_len = (int32_t) tokens.size();
    b.tokens = tokens;
    b.length = {(int32_t) tokens.size()};
    b.loss.assign(tokens.size(), score_all ? 1 : 0);
    if (!b.loss.empty()) b.loss[0] = 0;
    return pack_micro_batch(b);
}

}  // namespace selftune::train
