// The CUDA training backend's entry points (host code may include this without CUDA).
// load_base_model (backend.h) dispatches here for kind "cuda" when the addon was built with
// SELFTUNE_TRAIN_CUDA.
#pragma once

#include "train/backend.h"

#include <memory>
#include <string>

namespace selftune::train {

// The base of `path` on device options.device: bf16 (BaseStorage::dense) or the GGUF's own
// blocks (BaseStorage::stored). Throws std::runtime_error naming the file, or why the
// device cannot be used.
std::shared_ptr<BaseModel> load_cuda_base_model(const std::string & path, const BackendOptions & options);

// A CUDA device with this ordinal exists and runs this build's kernels; when not, `why`
// says why (no driver, no device, built for another architecture).
bool cuda_device_usable(std::string * why = nullptr, int device = 0);

}  // namespace selftune::train
