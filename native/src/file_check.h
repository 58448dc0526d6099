// checkGguf(path) -> { kind, architecture, tensorCount }: the verdict every loader would
// give on a GGUF file, for `selftune model info` (native/gguf/commands.ts), so that the
// description and the loaders agree on what is broken. Throws a JS Error with the same
// message loadModel / loadAdapter / the training engine would throw.
#pragma once

#include <napi.h>

namespace selftune {

Napi::Value check_gguf_file(const Napi::CallbackInfo & info);

}  // namespace selftune
