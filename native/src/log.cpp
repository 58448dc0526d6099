#include "log.h"

#include "llama.h"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>

namespace selftune {

static std::atomic<int> g_level{(int) LogLevel::error};

struct CaptureState {
    LogCapture * active = nullptr;
    std::string errors;
    ggml_log_level last = GGML_LOG_LEVEL_NONE;  // CONT lines continue the previous message
};
static thread_local CaptureState t_capture;

static int rank_of(ggml_log_level level) {
    switch (level) {
        case GGML_LOG_LEVEL_ERROR: return (int) LogLevel::error;
        case GGML_LOG_LEVEL_WARN:  return (int) LogLevel::warn;
        case GGML_LOG_LEVEL_INFO:  return (int) LogLevel::info;
        case GGML_LOG_LEVEL_DEBUG: return (int) LogLevel::debug;
        default:                   return (int) LogLevel::debug;
    }
}

static void on_log(ggml_log_level level, const char * text, void * /*user*/) {
    if (level == GGML_LOG_LEVEL_CONT) {
        level = t_capture.last;
    } else {
        t_capture.last = level;
    }
    const int threshold = g_level.load(std::memory_order_relaxed);
    bool captured = false;
    if (t_capture.active && level == GGML_LOG_LEVEL_ERROR) {
        if (t_capture.errors.size() < 4096) t_capture.errors += text;
        captured = true;
    }
    // A captured error reaches the user inside the JS Error; print it too only when
    // they asked for verbose logs.
    if (rank_of(level) <= threshold && (!captured || threshold >= (int) LogLevel::info)) {
        // Serialised so lines from parallel jobs don't interleave mid-line.
        static std::mutex mu;
        std::lock_guard<std::mutex> lock(mu);
        fputs("[llama.cpp] ", stderr);
        fputs(text, stderr);
        fflush(stderr);
    }
}

void log_install() {
    llama_log_set(on_log, nullptr);
}

void log_set_level(LogLevel level) { g_level.store((int) level); }
LogLevel log_get_level() { return (LogLevel) g_level.load(); }

bool log_level_from_string(const std::string & s, LogLevel & out) {
    if (s == "none" || s == "off" || s == "silent") { out = LogLevel::none;  return true; }
    if (s == "error")                               { out = LogLevel::error; return true; }
    if (s == "warn" || s == "warning")              { out = LogLevel::warn;  return true; }
    if (s == "info")                                { out = LogLevel::info;  return true; }
    if (s == "debug")                               { out = LogLevel::debug; return true; }
    return false;
}

const char * log_level_name(LogLevel level) {
    switch (level) {
        case LogLevel::none:  return "none";
        case LogLevel::error: return "error";
        case LogLevel::warn:  return "warn";
        case LogLevel::info:  return "info";
        case LogLevel::debug: return "debug";
    }
    return "error";
}

LogCapture::LogCapture() : prev_(t_capture.active) {
    if (!prev_) t_capture.errors.clear();
    t_capture.active = this;
}

LogCapture::~LogCapture() {
    t_capture.active = prev_;
}

std::string LogCapture::errors() const {
    std::string out;
    size_t start = 0;
    const std::string & all = t_capture.errors;
    while (start < all.size()) {
        size_t end = all.find('\n', start);
        if (end == std::string::npos) end = all.size();
        std::string line = all.substr(start, end - start);
        while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
        if (!line.empty()) {
            if (!out.empty()) out += "; ";
            out += line;
        }
        start = end + 1;
    }
    return out;
}

}  // namespace selftune
