// The matrix products of the training step, row-major, through cuBLAS: bf16 operands,
// f32 accumulation, bf16 or f32 output. Weights are stored as ggml stores them, W[out][in]
// row-major, so every product is one of three shapes:
//
//   gemm_xwt:   y[N x O]  = alpha * x[N x I] W[O x I]^T + beta * y     (forward)
//   gemm_dyw:   dx[N x I] = alpha * dy[N x O] W[O x I]  + beta * dx    (input gradient)
//   gemm_dytx:  dW[O x I] = alpha * dy[N x O]^T x[N x I] + beta * dW   (LoRA gradient, f32)
//
// beta = 1 with an f32 output accumulates: the residual add of the o and down projections,
// gradient accumulation over micro-batches. cuBLAS is deterministic for a given shape,
// device and workspace, which a Blas owns for its session.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace selftune::train::cuda {

using bf16 = __nv_bfloat16;

enum class OutType { bf16, f32 };

// A cuBLAS handle bound to one stream and one workspace.
class Blas {
  public:
    Blas(cudaStream_t stream, void * workspace, size_t workspace_bytes);
    ~Blas();
    Blas(const Blas &) = delete;
    Blas & operator=(const Blas &) = delete;

    cublasHandle_t handle() const { return handle_; }

    // cuBLAS's advice for Hopper: 32 MiB lets it pick its fastest kernels.
    static constexpr size_t kWorkspaceBytes = 32u << 20;

  private:
    cublasHandle_t handle_ = nullptr;
};

void gemm_xwt(const Blas & b, void * y, OutType yt, const bf16 * x, const bf16 * W, int64_t N, int64_t I, int64_t O,
              float alpha = 1.0f, float beta = 0.0f);
void gemm_dyw(const Blas & b, void * dx, OutType dxt, const bf16 * dy, const bf16 * W, int64_t N, int64_t I, int64_t O,
              float alpha = 1.0f, float beta = 0.0f);
void gemm_dytx(const Blas & b, float * dW, const bf16 * dy, const bf16 * x, int64_t N, int64_t I, int64_t O,
               float alpha = 1.0f, float beta = 0.0f);

}  // namespace selftune::train::cuda
