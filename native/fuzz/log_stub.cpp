// The fuzz target's stand-in for native/src/log.cpp, which routes llama.cpp's logger (not
// linked into the fuzzer): ggml's log lines are dropped, so LogCapture has nothing to report.
#include "log.h"

#include "ggml.h"

namespace selftune {

LogCapture::LogCapture() : prev_(nullptr) {
    ggml_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
}
LogCapture::~LogCapture() = default;
std::string LogCapture::errors() const { return ""; }

}  // namespace selftune
