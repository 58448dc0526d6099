#include "job.h"

#include <cstdio>
#include <thread>

namespace selftune {

JobContext::JobContext(CancelFlag cancel, Napi::ThreadSafeFunction tsfn, bool has_progress)
    : cancel_(std::move(cancel)), tsfn_(std::move(tsfn)), has_progress_(has_progress) {}

void JobContext::progress(ProgressBuilder build) {
    if (!has_progress_) return;
    tsfn_.NonBlockingCall([build = std::move(build)](Napi::Env env, Napi::Function fn) {
        if (env == nullptr) return;
        try {
            fn.Call({build(env)});
        } catch (const Napi::Error & e) {
            // A throwing progress callback must not fail the job, nor vanish silently.
            fprintf(stderr, "[selftune] progress callback threw: %s\n", e.Message().c_str());
        }
    });
}

Napi::Error abort_error(Napi::Env env, const std::string & message) {
    Napi::Error err = Napi::Error::New(env, message);
    err.Set("name", Napi::String::New(env, "AbortError"));
    err.Set("code", Napi::String::New(env, "ABORT_ERR"));
    return err;
}

Napi::Promise run_job(Napi::Env env, const char * name, Napi::Value on_progress, CancelFlag cancel,
                      std::function<Finish(JobContext &)> work) {
    auto deferred = std::make_shared<Napi::Promise::Deferred>(env);
    const bool has_progress = on_progress.IsFunction();
    Napi::Function fn = has_progress ? on_progress.As<Napi::Function>()
                                     : Napi::Function::New(env, [](const Napi::CallbackInfo &) {});
    Napi::ThreadSafeFunction tsfn = Napi::ThreadSafeFunction::New(env, fn, name, 0, 1);

    std::thread([tsfn, deferred, cancel, has_progress, work = std::move(work)]() mutable {
        JobContext ctx(cancel, tsfn, has_progress);
        Finish finish;
        std::string error;
        bool aborted = false;
        try {
            finish = work(ctx);
        } catch (const Cancelled & e) {
            aborted = true;
            error = e.what();
        } catch (const std::exception & e) {
            error = e.what();
            if (error.empty()) error = "native error";
        } catch (...) {
            error = "unknown native error";
        }
        tsfn.BlockingCall([deferred, finish = std::move(finish), error, aborted](Napi::Env env, Napi::Function) {
            if (env == nullptr) return;
            Napi::HandleScope scope(env);
            if (!error.empty()) {
                deferred->Reject(aborted ? abort_error(env, error).Value() : Napi::Error::New(env, error).Value());
                return;
            }
            try {
                deferred->Resolve(finish ? finish(env) : env.Undefined());
            } catch (const Napi::Error & e) {
                deferred->Reject(e.Value());
            } catch (const std::exception & e) {
                deferred->Reject(Napi::Error::New(env, e.what()).Value());
            }
        });
        tsfn.Release();
    }).detach();

    return deferred->Promise();
}

}  // namespace selftune
