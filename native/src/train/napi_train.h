// The training engine's N-API surface. addon.cpp's init calls register_train once; the
// functions it adds (all named train*) are wrapped by native/train.ts, the only caller.
//
// Handles are type-tagged Napi::External values rather than ObjectWrap classes, so the
// engine needs no slot in the addon's per-env instance data: a wrong or foreign handle is
// a TypeError, never a crash.
#pragma once

#include <napi.h>

namespace selftune {

void register_train(Napi::Env env, Napi::Object exports);

}  // namespace selftune
