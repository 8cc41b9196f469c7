// Stream-ordered device scratch (cudaMallocAsync / cudaFreeAsync on the call's stream), freed after the
// kernels that use it, also when a later step throws. Host code of the cuda backend only.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "cuda_check.h"

namespace dattn::cuda::detail {

template <typename T>
class DeviceScratch {
 public:
  DeviceScratch() = default;
  DeviceScratch(size_t count, cudaStream_t stream, const char* what) : stream_(stream), count_(count) {
    if (count) check_cuda(cudaMallocAsync(reinterpret_cast<void**>(&data_), count * sizeof(T), stream), what);
  }
  ~DeviceScratch() { release(); }
  DeviceScratch(DeviceScratch&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), stream_(other.stream_), count_(std::exchange(other.count_, 0)) {}
  DeviceScratch& operator=(DeviceScratch&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      stream_ = other.stream_;
      count_ = std::exchange(other.count_, 0);
    }
    return *this;
  }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;

  T* data() const { return data_; }
  // A host copy (waits for the stream).
  std::vector<T> to_host() const {
    std::vector<T> host(count_);
    if (count_) {
      check_cuda(cudaMemcpyAsync(host.data(), data_, count_ * sizeof(T), cudaMemcpyDeviceToHost, stream_),
                 "copying results to the host");
      check_cuda(cudaStreamSynchronize(stream_), "copying results to the host");
    }
    return host;
  }

 private:
  void release() {
    if (data_) cudaFreeAsync(data_, stream_);
    data_ = nullptr;
  }
  T* data_ = nullptr;
  cudaStream_t stream_ = nullptr;
  size_t count_ = 0;
};

}  // namespace dattn::cuda::detail
