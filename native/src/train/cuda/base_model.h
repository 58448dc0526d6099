// The frozen base on one CUDA device, as the CUDA sessions read it.
//
//   norms, biases          f32
//   token embedding        as stored in the GGUF (the embedding kernel reads its blocks),
//                          so the residual stream starts from the file's exact values
//   projections, LM head   bf16 (dense), or the GGUF's blocks (stored: dequantized into a
//                          session's scratch right before each use)
//
// A tied LM head reads token_embd: a bf16 copy of it when dense, the table itself when
// stored. Types the device kernels cannot decode are converted on the host once (to f32 for
// the embedding, to bf16 for a matrix), whatever the storage.
#pragma once

#include "train/backend.h"
#include "train/cuda/device_buffer.h"
#include "train/cuda/lora_linear.cuh"

#include <memory>
#include <string>
#include <vector>

namespace selftune::train::cuda {

struct DeviceLayer {
    const float * attn_norm = nullptr;
    const float * ffn_norm = nullptr;
    BaseLinear proj[kNumTargets];   // LoraTarget order: q k v o gate up down
};

class CudaBaseModel final : public BaseModel {
  public:
    static std::shared_ptr<CudaBaseModel> load(const std::string & path, const BackendOptions & options);

    std::string backend() const override { return "cuda"; }
    std::string device() const override { return device_; }
    BaseStorage storage() const override { return storage_; }
    const ModelConfig & config() const override { return config_; }
    const WeightsSource & source() const override { return source_; }
    uint64_t bytes() const override { return bytes_; }
    std::unique_ptr<Backend> new_session(const LoraLayout & layout, const SessionOptions & options) override;

    int ordinal() const { return ordinal_; }

    const void * tok_embd = nullptr;
    int32_t tok_embd_type = 0;
    const float * output_norm = nullptr;
    BaseLinear output;                   // [n_vocab x n_embd]
    std::vector<DeviceLayer> layers;
    int64_t max_stored_weight = 0;       // elements of the largest matrix not held as bf16

  private:
    friend struct BaseLoader;
    ModelConfig config_;
    WeightsSource source_;
    BaseStorage storage_ = BaseStorage::dense;
    int ordinal_ = 0;
    std::string device_;
    uint64_t bytes_ = 0;
    std::vector<DeviceBuffer> tensors_;
};

// session.cu
std::unique_ptr<Backend> make_cuda_session(std::shared_ptr<CudaBaseModel> base, const LoraLayout & layout,
                                           const SessionOptions & options);

}  // namespace selftune::train::cuda
