// Moving the scored rows of a packed batch in and out of a compact block: the final norm,
// the LM head and the cross-entropy run only over loss rows (a prompt row needs no logits).
// Each row index appears once, so the scatter needs no atomics.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace selftune::train::cuda {

// dst[j, :] = src[rows[j], :]   (f32 rows of D values, j < M)
void gather_rows(float * dst, const float * src, const int32_t * rows, int64_t M, int64_t D, cudaStream_t stream);
// dst[rows[j], :] = src[j, :]
void scatter_rows(float * dst, const float * src, const int32_t * rows, int64_t M, int64_t D, cudaStream_t stream);

}  // namespace selftune::train::cuda
