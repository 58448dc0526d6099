// A llama/qwen2 GGUF's tensors as they lie in the file: raw bytes, ggml type, shape. The
// CUDA backend uploads them as they are (stored storage) or dequantizes them on the device;
// hyper-parameters and their validation come from read_model_config (weights.h).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

struct gguf_context;

namespace selftune::train::cuda {

struct GgufTensor {
    std::string name;
    int32_t type = 0;             // ggml_type
    int64_t ne0 = 0, ne1 = 1;     // ggml shape: ne1 rows of ne0 values
    std::vector<uint8_t> data;    // ne1 rows of ggml_row_size(type, ne0) bytes

    int64_t elements() const { return ne0 * ne1; }
};

class GgufTensorFile {
  public:
    explicit GgufTensorFile(const std::string & path);   // throws std::runtime_error naming the file
    ~GgufTensorFile();
    GgufTensorFile(const GgufTensorFile &) = delete;
    GgufTensorFile & operator=(const GgufTensorFile &) = delete;

    bool has(const std::string & name) const;
    int32_t type_of(const std::string & name) const;   // -1 when absent
    // The tensor, which must have ggml shape [ne0, ne1]; throws naming the file and tensor.
    GgufTensor read(const std::string & name, int64_t ne0, int64_t ne1 = 1) const;

    const std::string & path() const { return path_; }

  private:
    std::string path_;
    gguf_context * ctx_ = nullptr;
    FILE * file_ = nullptr;
    size_t data_offset_ = 0;
};

// ggml's dequantization on the host: for types the device kernels do not handle, and for
// the small f32 tensors (norms, biases) whatever their type. Throws when ggml has no
// conversion for the type.
std::vector<float> tensor_to_f32(const GgufTensor & t, const std::string & path);
// Round to nearest even, as __float2bfloat16_rn does on the device.
std::vector<uint16_t> f32_to_bf16_bits(const std::vector<float> & v);
const char * ggml_type_label(int32_t type);   // "q4_K", "bf16", ...

}  // namespace selftune::train::cuda
