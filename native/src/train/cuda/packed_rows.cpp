#include "train/cuda/packed_rows.h"

#include <algorithm>
#include <climits>
#include <stdexcept>

namespace selftune::train::cuda {

PackedRows pack_rows(const MicroBatch & b) {
    if (b.n_tokens() > INT_MAX) throw std::invalid_argument("micro-batch: more rows than the CUDA backend indexes");
    PackedRows p;
    p.n_seq = b.n_seq;
    p.seq_start.push_back(0);
    for (int32_t s = 0; s < b.n_seq; s++) {
        const int32_t L = b.length[(size_t) s];
        const size_t base = (size_t) s * (size_t) b.seq_len;
        const int32_t row0 = (int32_t) p.n_rows;
        for (int32_t j = 0; j < L; j++) {
            p.tokens.push_back(b.tokens[base + (size_t) j]);
            p.pos.push_back(j);
            // Token j is predicted by row j-1 of the same sequence.
            if (j > 0 && b.loss[base + (size_t) j]) {
                p.loss_rows.push_back(row0 + j - 1);
                p.targets.push_back(b.tokens[base + (size_t) j]);
            }
        }
        p.n_rows += L;
        p.max_len = std::max(p.max_len, L);
        p.seq_start.push_back((int32_t) p.n_rows);
    }
    return p;
}

}  // namespace selftune::train::cuda
