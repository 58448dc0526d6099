// Session: one llama_context (KV cache, batch limits, threads, applied adapters) over a
// model. It is the unit every inference job runs on — scoring today, the generator next.
//
// Sequence layout: seq 0 caches a shared prompt prefix (prefix_tokens() says which
// tokens it holds); seqs 1..n_parallel are work sequences a job may use freely and must
// leave empty. The KV cache is unified, so copying the prefix into a work sequence
// (llama_memory_seq_cp) shares cells instead of copying them.
//
// One job at a time: a job takes a Lease for its whole run; others wait for it.
#pragma once

#include "adapter.h"
#include "batch.h"
#include "job.h"
#include "model.h"

#include "llama.h"

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace selftune {

struct SessionParams {
    uint32_t n_ctx = 4096;          // KV cells shared by all sequences
    uint32_t n_ctx_seq = 0;         // (effective) cells one sequence can use: n_ctx when unified
    uint32_t n_batch = 2048;        // tokens per llama_decode
    uint32_t n_ubatch = 512;        // tokens per compute graph
    uint32_t n_parallel = 8;        // work sequences
    uint32_t n_outputs_max = 512;   // logit rows per llama_decode (bounds host memory)
    int32_t  n_threads = 0;         // 0: physical cores
    int32_t  flash_attn = -1;       // -1 auto, 0 off, 1 on
    ggml_type kv_type = GGML_TYPE_F16;  // K and V cache element type
    bool     kv_unified = true;     // one cache for all sequences (see session.cpp)
    bool     op_offload = true;     // large-batch ops of CPU-resident layers may run on a GPU
};

struct AdapterUse {
    std::shared_ptr<AdapterHandle> adapter;
    float scale = 1.0f;
};

class Session {
  public:
    static constexpr llama_seq_id prefix_seq = 0;

    // Creates the llama_context; throws std::runtime_error (e.g. out of memory).
    static std::shared_ptr<Session> create(std::shared_ptr<ModelHandle> model, const SessionParams & params);
    ~Session();
    Session(const Session &) = delete;
    Session & operator=(const Session &) = delete;

    class Lease {
      public:
        Lease(Session & s, std::unique_lock<std::mutex> lock, const std::atomic<bool> * cancel);
        ~Lease();
        Lease(Lease &&) = default;
      private:
        Session * s_;
        std::unique_lock<std::mutex> lock_;
    };
    // Waits for the session, then routes the job's cancel flag into llama_decode.
    Lease acquire(JobContext & job);

    llama_context * ctx() const { return ctx_; }
    llama_memory_t memory() const { return llama_get_memory(ctx_); }
    const std::shared_ptr<ModelHandle> & model() const { return model_; }
    // Effective values, as llama.cpp settled them.
    const SessionParams & params() const { return params_; }
    int32_t n_vocab() const { return model_->info().n_vocab; }

    uint32_t n_work_seqs() const { return params_.n_parallel; }
    llama_seq_id work_seq(uint32_t i) const { return (llama_seq_id) (1 + i); }

    std::vector<llama_token> & prefix_tokens() { return prefix_tokens_; }
    // Decodes tokens[prefix_tokens().size(), to) into the prefix sequence, a batch at a
    // time through `batch`, and appends them to prefix_tokens(). Returns the decode calls
    // made. Throws when the KV cache has no room (or Cancelled).
    int32_t extend_prefix(const std::vector<llama_token> & tokens, int32_t to, Batch & batch, JobContext & job);
    void clear_prefix();
    void clear_work_seqs();
    void clear_all();
    // clear_all, and the cache's cells zeroed: the state of a context just created, so what
    // a call computes next does not depend on what this context ran before.
    void reset();

    // Applies adapters to the following decodes. A different set drops all cached KV,
    // which was computed with other weights.
    void set_adapters(const std::vector<AdapterUse> & adapters);

    // llama_decode. Returns 0, or 1 when the KV cache has no room for the batch (state
    // unchanged, caller may retry smaller). Throws Cancelled on abort and
    // std::runtime_error on any other failure.
    int decode(const llama_batch & batch);

  private:
    Session(std::shared_ptr<ModelHandle> model, llama_context * ctx, const SessionParams & params);

    std::shared_ptr<ModelHandle> model_;
    std::vector<AdapterUse> adapters_;   // kept alive while applied; freed after ctx_
    llama_context * ctx_;
    SessionParams params_;
    std::vector<llama_token> prefix_tokens_;
    std::mutex mutex_;
};

}  // namespace selftune
