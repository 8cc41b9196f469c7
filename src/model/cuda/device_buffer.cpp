#include "device_buffer.h"

#include "dattn/core/error.h"

namespace dattn::model::cuda_detail {

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) fail("cuda session: {} failed: {} ({})", what, cudaGetErrorString(status), int(status));
}

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    fail("cuda session: {} failed: {} ({})", what, cublasGetStatusString(status), int(status));
}

DeviceBuffer::DeviceBuffer(size_t bytes, const char* what) : bytes_(bytes) {
  if (bytes == 0) return;
  const cudaError_t status = cudaMalloc(&data_, bytes);
  if (status != cudaSuccess) {
    cudaGetLastError();  // an out-of-memory status is not sticky; clear it for the next call
    size_t free = 0, total = 0;
    cudaMemGetInfo(&free, &total);
    fail("cuda session: allocating {} ({:.2f} GiB) failed: {}; {:.2f} GiB of {:.2f} GiB free on the device", what,
         double(bytes) / double(1ull << 30), cudaGetErrorString(status), double(free) / double(1ull << 30),
         double(total) / double(1ull << 30));
  }
  check_cuda(cudaMemset(data_, 0, bytes), what);
  // cudaMemset runs on the legacy default stream, which the session's non-blocking stream does not wait
  // for: without this sync a busy GPU could run the zeroing after the first kernels that write the buffer
  // (seen on an H200 shared with another process: garbage logits from a fresh session)
  check_cuda(cudaDeviceSynchronize(), what);
}

DeviceBuffer::~DeviceBuffer() {
  if (data_) cudaFree(data_);
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (data_) cudaFree(data_);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = other.bytes_;
  }
  return *this;
}

uint64_t device_bytes_in_use() {
  size_t free = 0, total = 0;
  check_cuda(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
  return uint64_t(total - free);
}

}  // namespace dattn::model::cuda_detail
