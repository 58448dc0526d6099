// CancelSource: the JS handle on a job's cancel flag (AbortSignal is mapped onto it in
// native/index.ts). One source may be passed to several jobs.
#pragma once

#include "job.h"

#include <napi.h>

namespace selftune {

class CancelSource : public Napi::ObjectWrap<CancelSource> {
  public:
    static Napi::Function define(Napi::Env env);
    explicit CancelSource(const Napi::CallbackInfo & info);

    const CancelFlag & flag() const { return flag_; }

    // The flag of a CancelSource passed from JS, or null for undefined/null.
    static CancelFlag from_value(const Napi::Value & v);

  private:
    Napi::Value cancel(const Napi::CallbackInfo & info);
    Napi::Value cancelled(const Napi::CallbackInfo & info);

    CancelFlag flag_;
};

}  // namespace selftune
