#include "train/cuda/status.h"

#include <stdexcept>
#include <string>

namespace selftune::train::cuda {

void check_cuda(cudaError_t e, const char * what) {
    if (e == cudaSuccess) return;
    // Clear a non-sticky error so that the next call does not report this one again.
    cudaGetLastError();
    throw std::runtime_error(std::string("CUDA ") + what + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) +
                             ")");
}

void check_cublas(cublasStatus_t s, const char * what) {
    if (s == CUBLAS_STATUS_SUCCESS) return;
    throw std::runtime_error(std::string("cuBLAS ") + what + ": " + cublasGetStatusString(s));
}

}  // namespace selftune::train::cuda
