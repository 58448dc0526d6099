// One factory for every backend: which one a model loads with, and whether CUDA can be used.
#include "train/backend.h"

#ifdef SELFTUNE_TRAIN_CUDA
#include "train/cuda/cuda_backend.h"
#endif

#include <stdexcept>

namespace selftune::train {

const char * base_storage_name(BaseStorage s) {
    return s == BaseStorage::stored ? "stored" : "dense";
}

bool cuda_backend_built() {
#ifdef SELFTUNE_TRAIN_CUDA
    return true;
#else
    return false;
#endif
}

bool cuda_backend_usable(std::string * why) {
#ifdef SELFTUNE_TRAIN_CUDA
    return cuda_device_usable(why);
#else
    if (why) *why = "the addon was built without the CUDA training backend (bun run build:native:cuda)";
    return false;
#endif
}

std::shared_ptr<BaseModel> load_base_model(const std::string & path, const BackendOptions & o) {
    std::string kind = o.kind;
    if (kind == "auto") kind = cuda_backend_usable() ? "cuda" : "cpu";
    if (kind == "cpu") {
        WeightsSource source;
        auto w = load_base_weights(path, &source);
        return make_cpu_base_model(std::move(w), source);
    }
    if (kind == "cuda") {
        std::string why;
        if (!cuda_backend_usable(&why)) throw std::runtime_error("training backend cuda: " + why);
#ifdef SELFTUNE_TRAIN_CUDA
        return load_cuda_base_model(path, o);
#endif
    }
    throw std::invalid_argument("training backend '" + o.kind + "': expected cpu, cuda or auto");
}

}  // namespace selftune::train
