#include "train/cuda/gemm.cuh"

#include "train/cuda/status.h"

#include <climits>
#include <stdexcept>

namespace selftune::train::cuda {

Blas::Blas(cudaStream_t stream, void * workspace, size_t workspace_bytes) {
    check_cublas(cublasCreate(&handle_), "cublasCreate");
    try {
        check_cublas(cublasSetStream(handle_, stream), "cublasSetStream");
        check_cublas(cublasSetWorkspace(handle_, workspace, workspace_bytes), "cublasSetWorkspace");
        // Split-K reductions in f32 even for a bf16 output: a bf16 partial sum would lose
        // the accuracy the f32 accumulation is there for.
        check_cublas(cublasSetMathMode(handle_, (cublasMath_t) (CUBLAS_DEFAULT_MATH |
                                                                CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)),
                     "cublasSetMathMode");
    } catch (...) {
        cublasDestroy(handle_);
        throw;
    }
}

Blas::~Blas() {
    if (handle_) cublasDestroy(handle_);
}

namespace {

int to_int(int64_t v, const char * what) {
    if (v < 0 || v > INT_MAX) throw std::invalid_argument(std::string("gemm: ") + what + " out of cuBLAS's int range");
    return (int) v;
}

cudaDataType_t data_type(OutType t) { return t == OutType::bf16 ? CUDA_R_16BF : CUDA_R_32F; }

// Column-major C[m x n] = alpha op(A) op(B) + beta C. A row-major matrix [r x c] is the
// column-major [c x r] with leading dimension c: every row-major product below is this
// call on the transposes.
void gemm(const Blas & b, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n, int64_t k,
          const bf16 * A, int64_t lda, const bf16 * B, int64_t ldb, void * C, cudaDataType_t ct, int64_t ldc,
          float alpha, float beta) {
    if (m == 0 || n == 0) return;
    check_cublas(cublasGemmEx(b.handle(), ta, tb, to_int(m, "m"), to_int(n, "n"), to_int(k, "k"), &alpha, A,
                              CUDA_R_16BF, to_int(lda, "lda"), B, CUDA_R_16BF, to_int(ldb, "ldb"), &beta, C, ct,
                              to_int(ldc, "ldc"), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx");
}

}  // namespace

void gemm_xwt(const Blas & b, void * y, OutType yt, const bf16 * x, const bf16 * W, int64_t N, int64_t I, int64_t O,
              float alpha, float beta) {
    // y^T [O x N] = W [O x I] x^T:  A = W (col-major [I x O], transposed), B = x^T ([I x N]).
    gemm(b, CUBLAS_OP_T, CUBLAS_OP_N, O, N, I, W, I, x, I, y, data_type(yt), O, alpha, beta);
}

void gemm_dyw(const Blas & b, void * dx, OutType dxt, const bf16 * dy, const bf16 * W, int64_t N, int64_t I, int64_t O,
              float alpha, float beta) {
    // dx^T [I x N] = W^T [I x O] dy^T [O x N]:  W is col-major [I x O] as it lies.
    gemm(b, CUBLAS_OP_N, CUBLAS_OP_N, I, N, O, W, I, dy, O, dx, data_type(dxt), I, alpha, beta);
}

void gemm_dytx(const Blas & b, float * dW, const bf16 * dy, const bf16 * x, int64_t N, int64_t I, int64_t O,
               float alpha, float beta) {
    // dW^T [I x O] = x^T [I x N] (dy^T [O x N])^T.
    gemm(b, CUBLAS_OP_N, CUBLAS_OP_T, I, O, N, x, I, dy, O, dW, CUDA_R_32F, I, alpha, beta);
}

}  // namespace selftune::train::cuda
