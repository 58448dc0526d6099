#include "train/cuda/gguf_tensors.h"

#include "ggml.h"
#include "gguf.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

namespace selftune::train::cuda {

GgufTensorFile::GgufTensorFile(const std::string & path) : path_(path) {
    gguf_init_params p = {/*no_alloc*/ true, /*ctx*/ nullptr};
    ctx_ = gguf_init_from_file(path.c_str(), p);
    if (!ctx_) throw std::runtime_error(path + ": not a readable GGUF file");
    file_ = fopen(path.c_str(), "rb");
    if (!file_) {
        gguf_free(ctx_);
        throw std::runtime_error(path + ": cannot open");
    }
    data_offset_ = gguf_get_data_offset(ctx_);
}

GgufTensorFile::~GgufTensorFile() {
    if (file_) fclose(file_);
    if (ctx_) gguf_free(ctx_);
}

bool GgufTensorFile::has(const std::string & name) const { return gguf_find_tensor(ctx_, name.c_str()) >= 0; }

int32_t GgufTensorFile::type_of(const std::string & name) const {
    const int64_t id = gguf_find_tensor(ctx_, name.c_str());
    return id < 0 ? -1 : (int32_t) gguf_get_tensor_type(ctx_, id);
}

GgufTensor GgufTensorFile::read(const std::string & name, int64_t ne0, int64_t ne1) const {
    const int64_t id = gguf_find_tensor(ctx_, name.c_str());
    if (id < 0) throw std::runtime_error(path_ + ": missing tensor " + name);
    const int64_t * ne = gguf_get_tensor_ne(ctx_, id);
    if (ne[0] != ne0 || ne[1] != ne1 || ne[2] != 1 || ne[3] != 1) {
        throw std::runtime_error(path_ + ": tensor " + name + " has shape [" + std::to_string(ne[0]) + ", " +
                                 std::to_string(ne[1]) + "], expected [" + std::to_string(ne0) + ", " +
                                 std::to_string(ne1) + "]");
    }
    GgufTensor t;
    t.name = name;
    t.type = (int32_t) gguf_get_tensor_type(ctx_, id);
    t.ne0 = ne0;
    t.ne1 = ne1;
    if (ne0 % ggml_blck_size((ggml_type) t.type) != 0) {
        throw std::runtime_error(path_ + ": tensor " + name + " rows are not whole " + ggml_type_name((ggml_type) t.type) +
                                 " blocks");
    }
    const size_t bytes = gguf_get_tensor_size(ctx_, id);
    t.data.resize(bytes);
    if (fseeko(file_, (off_t) (data_offset_ + gguf_get_tensor_offset(ctx_, id)), SEEK_SET) != 0 ||
        fread(t.data.data(), 1, bytes, file_) != bytes) {
        throw std::runtime_error(path_ + ": cannot read tensor " + name);
    }
    return t;
}

std::vector<float> tensor_to_f32(const GgufTensor & t, const std::string & path) {
    const ggml_type type = (ggml_type) t.type;
    std::vector<float> out((size_t) t.elements());
    const size_t row_bytes = ggml_row_size(type, t.ne0);
    if (type == GGML_TYPE_F32) {
        std::memcpy(out.data(), t.data.data(), out.size() * sizeof(float));
        return out;
    }
    const ggml_type_traits * tr = ggml_get_type_traits(type);
    if (!tr || !tr->to_float) {
        throw std::runtime_error(path + ": tensor " + t.name + " has type " + ggml_type_name(type) +
                                 ", which cannot be dequantized");
    }
    for (int64_t r = 0; r < t.ne1; r++) tr->to_float(t.data.data() + r * row_bytes, out.data() + r * t.ne0, t.ne0);
    return out;
}

std::vector<uint16_t> f32_to_bf16_bits(const std::vector<float> & v) {
    std::vector<uint16_t> out(v.size());
    for (size_t i = 0; i < v.size(); i++) {
        uint32_t u;
        std::memcpy(&u, &v[i], sizeof u);
        if (std::isnan(v[i])) {
            out[i] = (uint16_t) ((u >> 16) | 0x40);   // stay a (quiet) NaN
        } else {
            u += 0x7fffu + ((u >> 16) & 1u);
            out[i] = (uint16_t) (u >> 16);
        }
    }
    return out;
}

const char * ggml_type_label(int32_t type) { return ggml_type_name((ggml_type) type); }

}  // namespace selftune::train::cuda
