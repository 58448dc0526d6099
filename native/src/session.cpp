#include "session.h"

#include "cpu_info.h"
#include "log.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace selftune {

static bool abort_requested(void * data) {
    const auto * flag = static_cast<const std::atomic<bool> *>(data);
    return flag && flag->load(std::memory_order_relaxed);
}

std::shared_ptr<Session> Session::create(std::shared_ptr<ModelHandle> model, const SessionParams & params) {
    if (model->info().vocab_only) throw std::runtime_error("a vocabulary-only model has no weights to run");
    if (params.n_parallel < 1 || params.n_parallel + 1 > llama_max_parallel_sequences()) {
        throw std::runtime_error("parallel must be in [1, " + std::to_string(llama_max_parallel_sequences() - 1) + "]");
    }
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = params.n_ctx;
    cp.n_batch = params.n_batch;
    cp.n_ubatch = std::min(params.n_ubatch, params.n_batch);
    cp.n_seq_max = params.n_parallel + 1;   // + the prefix-cache sequence
    // llama.cpp reserves at least one output row per sequence and asserts on less.
    cp.n_outputs_max = std::max(std::min(params.n_outputs_max, params.n_batch), cp.n_seq_max);
    // The scorer's in-graph log-softmax (score_head.h) is a backend sampler, which llama.cpp
    // limits to this many outputs per sequence per decode (its default: 1).
    cp.n_outputs_max_per_seq = cp.n_outputs_max;
    const int32_t threads = params.n_threads > 0 ? params.n_threads : physical_cores();
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    cp.flash_attn_type = params.flash_attn < 0   ? LLAMA_FLASH_ATTN_TYPE_AUTO
                         : params.flash_attn == 0 ? LLAMA_FLASH_ATTN_TYPE_DISABLED
                                                  : LLAMA_FLASH_ATTN_TYPE_ENABLED;
    // Unified (default): every sequence may use the whole cache, and a shared prefix is
    // stored once. With split caches llama_memory_seq_cp across streams copies only whole
    // sequences (a partial range aborts), so jobs share no prefixes then.
    cp.kv_unified = params.kv_unified;
    cp.op_offload = params.op_offload;
    cp.type_k = params.kv_type;
    cp.type_v = params.kv_type;
    cp.no_perf = true;

    LogCapture capture;
    llama_context * ctx = llama_init_from_model(model->get(), cp);
    if (!ctx) {
        const std::string why = capture.errors();
        throw std::runtime_error("failed to create a context" + (why.empty() ? "" : ": " + why));
    }
    SessionParams eff = params;
    eff.n_ctx = llama_n_ctx(ctx);
    eff.n_ctx_seq = llama_n_ctx_seq(ctx);
    eff.n_batch = llama_n_batch(ctx);
    eff.n_ubatch = llama_n_ubatch(ctx);
    eff.n_outputs_max = std::min(params.n_outputs_max, eff.n_batch);
    eff.n_threads = threads;
    return std::shared_ptr<Session>(new Session(std::move(model), ctx, eff));
}

Session::Session(std::shared_ptr<ModelHandle> model, llama_context * ctx, const SessionParams & params)
    : model_(std::move(model)), ctx_(ctx), params_(params) {}

Session::~Session() {
    llama_free(ctx_);
}

Session::Lease::Lease(Session & s, std::unique_lock<std::mutex> lock, const std::atomic<bool> * cancel)
    : s_(&s), lock_(std::move(lock)) {
    llama_set_abort_callback(s_->ctx_, abort_requested, const_cast<std::atomic<bool> *>(cancel));
}

Session::Lease::~Lease() {
    if (lock_.owns_lock()) llama_set_abort_callback(s_->ctx_, nullptr, nullptr);
}

Session::Lease Session::acquire(JobContext & job) {
    std::unique_lock<std::mutex> lock(mutex_);
    job.check_cancelled();
    return Lease(*this, std::move(lock), job.cancel_flag());
}

int32_t Session::extend_prefix(const std::vector<llama_token> & tokens, int32_t to, Batch & batch, JobContext & job) {
    int32_t calls = 0;
    for (int32_t i = (int32_t) prefix_tokens_.size(); i < to;) {
        job.check_cancelled();
        const int32_t n = std::min(to - i, batch.capacity());
        batch.clear();
        for (int32_t k = 0; k < n; k++) batch.add(tokens[(size_t) (i + k)], i + k, prefix_seq, false);
        if (decode(batch.get()) != 0) {
            throw std::runtime_error("the KV cache is full while caching a shared prefix; increase contextSize");
        }
        prefix_tokens_.insert(prefix_tokens_.end(), tokens.begin() + i, tokens.begin() + i + n);
        calls++;
        i += n;
    }
    return calls;
}

void Session::clear_prefix() {
    llama_memory_seq_rm(memory(), prefix_seq, -1, -1);
    prefix_tokens_.clear();
}

void Session::clear_work_seqs() {
    for (uint32_t i = 0; i < params_.n_parallel; i++) llama_memory_seq_rm(memory(), work_seq(i), -1, -1);
}

void Session::clear_all() {
    llama_memory_clear(memory(), false);
    prefix_tokens_.clear();
}

void Session::reset() {
    llama_memory_clear(memory(), true);
    prefix_tokens_.clear();
}

void Session::set_adapters(const std::vector<AdapterUse> & adapters) {
    bool same = adapters.size() == adapters_.size();
    for (size_t i = 0; same && i < adapters.size(); i++) {
        same = adapters[i].adapter == adapters_[i].adapter && adapters[i].scale == adapters_[i].scale;
    }
    if (same) return;

    std::vector<llama_adapter_lora *> ptrs;
    std::vector<float> scales;
    for (const AdapterUse & a : adapters) {
        if (a.adapter->model() != model_) throw std::runtime_error("adapter " + a.adapter->path() + " belongs to another model");
        ptrs.push_back(a.adapter->get());
        scales.push_back(a.scale);
    }
    LogCapture capture;
    if (llama_set_adapters_lora(ctx_, ptrs.data(), ptrs.size(), scales.data()) != 0) {
        const std::string why = capture.errors();
        throw std::runtime_error("failed to apply adapters" + (why.empty() ? "" : ": " + why));
    }
    adapters_ = adapters;
    clear_all();
}

int Session::decode(const llama_batch & batch) {
    if (batch.n_tokens <= 0) return 0;   // llama.cpp asserts on an empty batch
    LogCapture capture;
    const int32_t rc = llama_decode(ctx_, batch);
    if (rc == 0 || rc == 1) return rc;
    if (rc == 2) throw Cancelled();
    const std::string why = capture.errors();
    throw std::runtime_error("llama_decode failed (" + std::to_string(rc) + ")" + (why.empty() ? "" : ": " + why));
}

}  // namespace selftune
