// Model: a loaded llama_model (weights + vocabulary) and its JS wrapper.
//
// ModelHandle owns the llama_model. Everything that depends on it — contexts, adapters,
// running jobs — holds a shared_ptr to the handle, so the model is freed only after the
// last of them, whatever order JS disposes things in.
#pragma once

#include "job.h"
#include "model_check.h"

#include "llama.h"

#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace selftune {

struct SpecialToken {
    int32_t     id;
    std::string text;
    uint32_t    attr;   // llama_token_attr bits
    bool        eog;
};

// What the loader and provenance need to know about a model; computed once at load.
struct ModelInfo {
    std::string architecture;
    std::string description;
    std::string file_type;
    std::string vocab_type;
    std::string tokenizer_model;   // tokenizer.ggml.model
    std::string tokenizer_pre;     // tokenizer.ggml.pre
    uint64_t    n_params = 0;
    uint64_t    size_bytes = 0;
    int32_t     n_vocab = 0;
    int32_t     n_ctx_train = 0;
    int32_t     n_embd = 0;
    int32_t     n_layer = 0;
    int32_t     n_head = 0;
    int32_t     n_head_kv = 0;
    int32_t     bos = -1, eos = -1, eot = -1, sep = -1, pad = -1, nl = -1;
    bool        add_bos = false;
    bool        add_eos = false;
    bool        chat_template_present = false;
    bool        vocab_only = false;
    std::vector<SpecialToken> special;   // control, user-defined, unknown and EOG tokens
};

struct ModelLoadParams {
    int32_t n_gpu_layers = -1;   // -1: all
    bool    vocab_only = false;
    bool    use_mmap = true;
};

class ModelHandle {
  public:
    // Validates the file (model_check.h) and loads it; throws std::runtime_error on failure.
    static std::shared_ptr<ModelHandle> load(const std::string & path, const ModelLoadParams & params,
                                             JobContext & job);
    // What load would throw for this file, without reading its weights: the same checks,
    // then llama.cpp's own load of the metadata and tensor table (no_alloc). For
    // checkGguf / `model info`, so that they and the loader give one verdict on every file,
    // architectures whose tensor table model_check does not know included.
    static void check_loads(const std::string & path);
    ~ModelHandle();
    ModelHandle(const ModelHandle &) = delete;
    ModelHandle & operator=(const ModelHandle &) = delete;

    llama_model * get() const { return model_; }
    const llama_vocab * vocab() const { return llama_model_get_vocab(model_); }
    const ModelInfo & info() const { return info_; }
    const std::string & path() const { return path_; }
    // Whether the output layer (and so the logits) lives on a GPU: all layers offloaded
    // on a build with a GPU device.
    bool output_on_gpu() const { return output_on_gpu_; }
    // What the validator read from the file: the tensor shapes an adapter must fit.
    const ModelSettings & settings() const { return settings_; }

  private:
    ModelHandle(llama_model * model, std::string path, bool vocab_only);
    llama_model * model_;
    std::string path_;
    ModelInfo info_;
    bool output_on_gpu_ = false;
    ModelSettings settings_;
};

class Model : public Napi::ObjectWrap<Model> {
  public:
    static Napi::Function define(Napi::Env env);
    // loadModel(path, {gpuLayers?, vocabOnly?, mmap?}, onProgress?, cancel?) -> Promise<Model>
    static Napi::Value load(const Napi::CallbackInfo & info);
    // The handle of a Model passed from JS; throws a JS error if it isn't one or is disposed.
    static std::shared_ptr<ModelHandle> handle_of(const Napi::Value & v);

    explicit Model(const Napi::CallbackInfo & info);
    const std::shared_ptr<ModelHandle> & handle(Napi::Env env) const;

  private:
    Napi::Value info(const Napi::CallbackInfo & info);
    Napi::Value path(const Napi::CallbackInfo & info);
    Napi::Value disposed(const Napi::CallbackInfo & info);
    Napi::Value tokenize(const Napi::CallbackInfo & info);
    Napi::Value detokenize(const Napi::CallbackInfo & info);
    Napi::Value token_piece(const Napi::CallbackInfo & info);
    Napi::Value token_bytes(const Napi::CallbackInfo & info);
    Napi::Value dispose(const Napi::CallbackInfo & info);

    std::shared_ptr<ModelHandle> handle_;
    Napi::ObjectReference info_cache_;
};

// Shared by Model and the scorer (string prompts): tokenize with explicit flags.
std::vector<llama_token> tokenize_text(const llama_vocab * vocab, const std::string & text, bool add_special,
                                       bool parse_special);

}  // namespace selftune
