#include "train/cuda/cuda_backend.h"
#include "train/cuda/device_buffer.h"

#include "train/cuda/base_model.h"

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace selftune::train {

namespace {

// Compiled into this build like every kernel: when the device cannot run it, it cannot run
// any of them (a binary built for another architecture).
__global__ void probe_kernel() {}

}  // namespace

bool cuda_device_usable(std::string * why, int device) {
    auto no = [&](const std::string & reason) {
        if (why) *why = reason;
        return false;
    };
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return no(std::string("no usable CUDA driver: ") + cudaGetErrorString(e));
    }
    if (n == 0) return no("no CUDA device");
    if (device < 0 || device >= n) {
        return no("CUDA device " + std::to_string(device) + " does not exist (" + std::to_string(n) + " present)");
    }
    int previous = 0;
    cudaGetDevice(&previous);
    e = cudaSetDevice(device);
    cudaFuncAttributes attr{};
    if (e == cudaSuccess) e = cudaFuncGetAttributes(&attr, probe_kernel);
    if (e != cudaSuccess) {
        cudaGetLastError();
        cudaDeviceProp prop{};
        std::string what = "CUDA device " + std::to_string(device);
        if (cudaGetDeviceProperties(&prop, device) == cudaSuccess) {
            what += " (" + std::string(prop.name) + ", sm_" + std::to_string(prop.major) + std::to_string(prop.minor) +
                    ")";
        }
        cudaSetDevice(previous);
        return no(what + " cannot run this build's kernels: " + cudaGetErrorString(e) +
                  " (rebuild with SELFTUNE_CUDA_ARCH set for this device)");
    }
    cudaSetDevice(previous);
    if (why) why->clear();
    return true;
}

std::shared_ptr<BaseModel> load_cuda_base_model(const std::string & path, const BackendOptions & options) {
    std::string why;
    if (!cuda_device_usable(&why, options.device)) throw std::runtime_error("the CUDA training backend: " + why);
    cuda::device_bytes_reset_peak();
    return cuda::CudaBaseModel::load(path, options);
}

}  // namespace selftune::train
