// Token embedding lookup: y[n] = E[id[n]]. Its backward scatters into the table:
// dE[id[n]] += dy[n]. The training engine never needs dE (embeddings are frozen and LoRA
// does not target them); the pair exists so the op set is complete and gradient-checked.
#pragma once

#include <cstdint>
#include <cstring>

namespace selftune::train::ops {

template <typename T>
void embedding_forward(T * y, const int32_t * ids, const T * E, int64_t N, int64_t D) {
    for (int64_t n = 0; n < N; n++) std::memcpy(y + n * D, E + (int64_t) ids[n] * D, sizeof(T) * (size_t) D);
}

template <typename T>
void embedding_backward(T * dE, const int32_t * ids, const T * dy, int64_t N, int64_t D) {
    // Rows in order: a token repeated in the batch accumulates deterministically.
    for (int64_t n = 0; n < N; n++) {
        T * d = dE + (int64_t) ids[n] * D;
        for (int64_t k = 0; k < D; k++) d[k] += dy[n * D + k];
    }
}

}  // namespace selftune::train::ops
