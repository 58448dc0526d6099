// Routes llama.cpp/ggml log output through one quiet callback.
//
// llama.cpp's logger is process-wide (llama_log_set), so the level is too: it lives in
// log.cpp as the one piece of global state in the addon, set from JS via setLogLevel().
#pragma once

#include <string>

namespace selftune {

enum class LogLevel { none = 0, error = 1, warn = 2, info = 3, debug = 4 };

void log_install();                        // call once per process (idempotent)
void log_set_level(LogLevel level);
LogLevel log_get_level();
bool log_level_from_string(const std::string & s, LogLevel & out);
const char * log_level_name(LogLevel level);

// Error lines llama.cpp logs on the calling thread, captured regardless of the level (and
// not printed below level info, since they reach the user in the thrown Error), so
// that a failed call can tell the user why (e.g. "tensor 'x' data is not within the
// file bounds"). Scope: construct before the call, read after.
class LogCapture {
  public:
    LogCapture();
    ~LogCapture();
    std::string errors() const;   // the captured error lines, trimmed and joined with "; "
  private:
    LogCapture * prev_;
};

}  // namespace selftune
