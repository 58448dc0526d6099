// Device memory of the training backend. Every allocation goes through device_alloc, so
// that memory() can report the high-water mark of what this backend held (the base, each
// session's buffers, cuBLAS workspaces) rather than the whole device's, which other
// libraries in the process (llama.cpp's inference) share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

namespace selftune::train::cuda {

void * device_alloc(size_t bytes, const char * what);   // throws; 0 bytes gives nullptr
void device_free(void * p, size_t bytes);
uint64_t device_bytes_in_use();
uint64_t device_bytes_peak();
// The high-water mark restarts from what is in use now: a newly loaded base reports its
// own peak, not an earlier, larger model's of the same process.
void device_bytes_reset_peak();

// An owned allocation that only grows: reserve() reallocates (dropping the contents) when
// asked for more than it holds, so a warm session allocates nothing per step.
class DeviceBuffer {
  public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(size_t bytes, const char * what = "buffer") { reserve(bytes, what); }
    ~DeviceBuffer() { release(); }
    DeviceBuffer(const DeviceBuffer &) = delete;
    DeviceBuffer & operator=(const DeviceBuffer &) = delete;
    DeviceBuffer(DeviceBuffer && o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    DeviceBuffer & operator=(DeviceBuffer && o) noexcept {
        if (this != &o) {
            release();
            p_ = std::exchange(o.p_, nullptr);
            n_ = std::exchange(o.n_, 0);
        }
        return *this;
    }

    // True when it reallocated.
    bool reserve(size_t bytes, const char * what = "buffer");
    void release();

    void * get() const { return p_; }
    template <typename T>
    T * as() const { return static_cast<T *>(p_); }
    size_t bytes() const { return n_; }

  private:
    void * p_ = nullptr;
    size_t n_ = 0;
};

// Pinned host memory for uploads and read-backs (a pageable copy would stage through the
// driver's own bounce buffer and synchronize). Grows like DeviceBuffer.
class PinnedBuffer {
  public:
    PinnedBuffer() = default;
    ~PinnedBuffer() { release(); }
    PinnedBuffer(const PinnedBuffer &) = delete;
    PinnedBuffer & operator=(const PinnedBuffer &) = delete;

    void reserve(size_t bytes);
    void release();
    template <typename T>
    T * as() const { return static_cast<T *>(p_); }

  private:
    void * p_ = nullptr;
    size_t n_ = 0;
};

}  // namespace selftune::train::cuda
