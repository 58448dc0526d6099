// Runs heavy work on its own thread, never on the JS thread, and settles a Promise when
// done. Progress goes back through a thread-safe function; cancellation is a shared
// flag the work polls (and hands to llama.cpp's abort callback).
//
// Own std::thread rather than the libuv pool: Bun's pool has 2 workers, and a
// minutes-long scoring job must not starve everything else that uses it.
#pragma once

#include <napi.h>

#include <atomic>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

namespace selftune {

using CancelFlag = std::shared_ptr<std::atomic<bool>>;

// Thrown by work that noticed cancellation; rejects with an AbortError.
struct Cancelled : std::runtime_error {
    Cancelled() : std::runtime_error("the operation was aborted") {}
};

// Builds the JS result on the JS thread, from data the worker produced.
using Finish = std::function<Napi::Value(Napi::Env)>;
using ProgressBuilder = std::function<Napi::Value(Napi::Env)>;

class JobContext {
  public:
    JobContext(CancelFlag cancel, Napi::ThreadSafeFunction tsfn, bool has_progress);

    bool cancelled() const { return cancel_ && cancel_->load(std::memory_order_relaxed); }
    void check_cancelled() const {
        if (cancelled()) throw Cancelled();
    }
    // The raw flag, e.g. for llama_set_abort_callback. May be null.
    const std::atomic<bool> * cancel_flag() const { return cancel_.get(); }

    // Calls the job's progress callback with build(env), on the JS thread. Never blocks
    // the worker.
    void progress(ProgressBuilder build);

  private:
    CancelFlag cancel_;
    Napi::ThreadSafeFunction tsfn_;
    bool has_progress_;
};

// Starts `work` on a new thread and returns a Promise settled with the value its
// Finish builds, or rejected with an Error carrying the exception's message.
// `on_progress` may be undefined; `cancel` may be null.
Napi::Promise run_job(Napi::Env env, const char * name, Napi::Value on_progress, CancelFlag cancel,
                      std::function<Finish(JobContext &)> work);

// An Error with name "AbortError" and code "ABORT_ERR", like DOM's AbortSignal gives.
Napi::Error abort_error(Napi::Env env, const std::string & message);

}  // namespace selftune
