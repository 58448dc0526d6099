#include "train/cuda/device_buffer.h"

#include "train/cuda/status.h"

#include <atomic>
#include <string>

namespace selftune::train::cuda {

namespace {
std::atomic<uint64_t> g_in_use{0};
std::atomic<uint64_t> g_peak{0};
}  // namespace

void * device_alloc(size_t bytes, const char * what) {
    if (bytes == 0) return nullptr;
    void * p = nullptr;
    check_cuda(cudaMalloc(&p, bytes), (std::string("cudaMalloc ") + std::to_string(bytes) + " bytes for " + what).c_str());
    const uint64_t now = g_in_use.fetch_add(bytes) + bytes;
    uint64_t peak = g_peak.load();
    while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
    }
    return p;
}

void device_free(void * p, size_t bytes) {
    if (!p) return;
    // A free only fails on a corrupted context; nothing useful to do about it in a destructor.
    cudaFree(p);
    g_in_use.fetch_sub(bytes);
}

uint64_t device_bytes_in_use() { return g_in_use.load(); }
uint64_t device_bytes_peak() { return g_peak.load(); }

void device_bytes_reset_peak() { g_peak.store(device_bytes_in_use()); }

bool DeviceBuffer::reserve(size_t bytes, const char * what) {
    if (bytes <= n_) return false;
    release();
    p_ = device_alloc(bytes, what);
    n_ = bytes;
    return true;
}

void DeviceBuffer::release() {
    device_free(p_, n_);
    p_ = nullptr;
    n_ = 0;
}

void PinnedBuffer::reserve(size_t bytes) {
    if (bytes <= n_) return;
    release();
    check_cuda(cudaMallocHost(&p_, bytes), "cudaMallocHost");
    n_ = bytes;
}

void PinnedBuffer::release() {
    if (p_) cudaFreeHost(p_);
    p_ = nullptr;
    n_ = 0;
}

}  // namespace selftune::train::cuda
