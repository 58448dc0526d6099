// Errors of the CUDA runtime and cuBLAS as exceptions: the backend runs inside a Node
// process, where aborting on a failed call would take the whole host down with it.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

namespace selftune::train::cuda {

// Throws std::runtime_error("CUDA <what>: <the runtime's message>") unless e is cudaSuccess.
void check_cuda(cudaError_t e, const char * what);
void check_cublas(cublasStatus_t s, const char * what);

}  // namespace selftune::train::cuda
