// Device memory owned by the model runtime and the error checks of the CUDA runtime and cuBLAS calls.
// Private header of dattn_model_cuda (host code only).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <utility>

namespace dattn::model::cuda_detail {

// Throw dattn::Error naming the step and the CUDA / cuBLAS status.
void check_cuda(cudaError_t status, const char* what);
void check_cublas(cublasStatus_t status, const char* what);

// One cudaMalloc'd block, zero-filled so that padding lanes (head_dim padded to the kernel's) read 0.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(size_t bytes, const char* what);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept : data_(std::exchange(other.data_, nullptr)), bytes_(other.bytes_) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// Device memory in use (all processes): total - free of cudaMemGetInfo.
uint64_t device_bytes_in_use();

}  // namespace dattn::model::cuda_detail
