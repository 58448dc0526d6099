#include "train/cuda/base_model.h"

#include "train/cuda/gguf_tensors.h"
#include "train/cuda/kernels.cuh"
#include "train/cuda/status.h"

#include "ggml.h"

#include <algorithm>
#include <stdexcept>

namespace selftune::train::cuda {

// Reads tensors one at a time and puts each on the device in its final form.
struct BaseLoader {
    CudaBaseModel & m;
    const GgufTensorFile & f;
    cudaStream_t stream;
    DeviceBuffer staging;   // the raw blocks of a tensor being dequantized on the device
    uint64_t n_params = 0;

    void * keep(size_t bytes, const char * what) {
        m.tensors_.emplace_back(bytes, what);
        m.bytes_ += bytes;
        return m.tensors_.back().get();
    }

    void * upload(const void * host, size_t bytes, const char * what) {
        void * d = keep(bytes, what);
        check_cuda(cudaMemcpyAsync(d, host, bytes, cudaMemcpyHostToDevice, stream), "upload");
        // The host copy is freed when the caller returns: the copy must be done by then.
        check_cuda(cudaStreamSynchronize(stream), "upload");
        return d;
    }

    const float * vector_f32(const std::string & name, int64_t n) {
        const GgufTensor t = f.read(name, n);
        n_params += (uint64_t) n;
        const std::vector<float> v = tensor_to_f32(t, f.path());
        return static_cast<const float *>(upload(v.data(), v.size() * sizeof(float), "norm/bias"));
    }

    // The host's bf16 of any type ggml can dequantize.
    BaseLinear host_bf16(const GgufTensor & t) {
        const std::vector<uint16_t> h = f32_to_bf16_bits(tensor_to_f32(t, f.path()));
        return {upload(h.data(), h.size() * sizeof(uint16_t), "matrix"), GGML_TYPE_BF16, nullptr, t.ne0, t.ne1};
    }

    BaseLinear matrix(const GgufTensor & t) {
        const bool device_decodes = t.type == GGML_TYPE_BF16 || dequant_supported(t.type);
        if (!device_decodes) return host_bf16(t);
        if (t.type == GGML_TYPE_BF16 || m.storage_ == BaseStorage::stored) {
            return {upload(t.data.data(), t.data.size(), "matrix"), t.type, nullptr, t.ne0, t.ne1};
        }
        staging.reserve(t.data.size(), "dequantization staging");
        check_cuda(cudaMemcpyAsync(staging.get(), t.data.data(), t.data.size(), cudaMemcpyHostToDevice, stream),
                   "upload");
        bf16 * w = static_cast<bf16 *>(keep((size_t) t.elements() * sizeof(bf16), "matrix"));
        dequantize_bf16(w, staging.get(), t.type, t.ne1, t.ne0, stream);
        check_cuda(cudaGetLastError(), "dequantize_bf16");
        check_cuda(cudaStreamSynchronize(stream), "dequantize_bf16");
        return {w, GGML_TYPE_BF16, nullptr, t.ne0, t.ne1};
    }

    BaseLinear matrix(const std::string & name, int64_t n_in, int64_t n_out) {
        n_params += (uint64_t) (n_in * n_out);
        return matrix(f.read(name, n_in, n_out));
    }
};

std::shared_ptr<CudaBaseModel> CudaBaseModel::load(const std::string & path, const BackendOptions & options) {
    auto m = std::make_shared<CudaBaseModel>();
    m->config_ = read_model_config(path);   // validates the file and the architecture
    m->storage_ = options.storage;
    m->ordinal_ = options.device;
    check_cuda(cudaSetDevice(options.device), "cudaSetDevice");
    const ModelConfig & c = m->config_;
    GgufTensorFile f(path);

    cudaStream_t stream = nullptr;
    check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    struct StreamFree {
        cudaStream_t s;
        ~StreamFree() { cudaStreamDestroy(s); }
    } stream_free{stream};
    BaseLoader ld{*m, f, stream, {}};

    const int64_t D = c.n_embd, Q = c.q_dim(), KV = c.kv_dim(), F = c.n_ff, V = c.n_vocab;
    {
        GgufTensor te = f.read("token_embd.weight", D, V);
        ld.n_params += (uint64_t) (D * V);
        if (dequant_supported(te.type)) {
            m->tok_embd = ld.upload(te.data.data(), te.data.size(), "token_embd");
            m->tok_embd_type = te.type;
        } else {
            const std::vector<float> v = tensor_to_f32(te, path);
            m->tok_embd = ld.upload(v.data(), v.size() * sizeof(float), "token_embd");
            m->tok_embd_type = GGML_TYPE_F32;
        }
        if (c.tied_output) {
            if (options.storage == BaseStorage::stored) {
                m->output = {m->tok_embd, m->tok_embd_type, nullptr, D, V};
            } else {
                m->output = ld.matrix(te);
            }
        }
    }
    m->layers.resize((size_t) c.n_layer);
    for (int32_t il = 0; il < c.n_layer; il++) {
        const std::string b = "blk." + std::to_string(il) + ".";
        DeviceLayer & L = m->layers[(size_t) il];
        L.attn_norm = ld.vector_f32(b + "attn_norm.weight", D);
        L.ffn_norm = ld.vector_f32(b + "ffn_norm.weight", D);
        const int64_t in[kNumTargets] = {D, D, D, Q, D, D, F};
        const int64_t out[kNumTargets] = {Q, KV, KV, D, F, F, D};
        for (int t = 0; t < kNumTargets; t++) L.proj[t] = ld.matrix(lora_base_tensor_name(il, t), in[t], out[t]);
        if (c.qkv_bias) {
            L.proj[kQ].bias = ld.vector_f32(b + "attn_q.bias", Q);
            L.proj[kK].bias = ld.vector_f32(b + "attn_k.bias", KV);
            L.proj[kV].bias = ld.vector_f32(b + "attn_v.bias", KV);
        } else if (f.has(b + "attn_q.bias")) {
            throw std::runtime_error(path + ": attention biases are not supported for " + c.arch);
        }
    }
    m->output_norm = ld.vector_f32("output_norm.weight", D);
    if (!c.tied_output) m->output = ld.matrix("output.weight", D, V);
    if (f.has("output.bias")) throw std::runtime_error(path + ": an output bias is not supported");
    ld.staging.release();

    auto stored = [&](const BaseLinear & w) {
        if (w.type != GGML_TYPE_BF16) m->max_stored_weight = std::max(m->max_stored_weight, w.n_in * w.n_out);
    };
    stored(m->output);
    for (const DeviceLayer & L : m->layers) {
        for (const BaseLinear & w : L.proj) stored(w);
    }

    m->source_.path = path;
    m->source_.n_params = ld.n_params;
    const int32_t qt = f.type_of("blk.0.attn_q.weight");
    m->source_.file_type = qt >= 0 ? ggml_type_label(qt) : "";

    cudaDeviceProp prop{};
    check_cuda(cudaGetDeviceProperties(&prop, options.device), "cudaGetDeviceProperties");
    m->device_ = std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + "), " +
                 (options.storage == BaseStorage::stored ? m->source_.file_type + " base (stored)" : "bf16 base");
    return m;
}

std::unique_ptr<Backend> CudaBaseModel::new_session(const LoraLayout & layout, const SessionOptions & options) {
    return make_cuda_session(std::static_pointer_cast<CudaBaseModel>(shared_from_this()), layout, options);
}

}  // namespace selftune::train::cuda
