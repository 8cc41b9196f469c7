#include "device_memory.h"

#include "dattn/core/error.h"

#ifdef DATTN_WITH_CUDA
#include <cuda_runtime.h>

namespace dattn::detail {
static void check(cudaError_t e, const char* what, size_t bytes) {
  if (e != cudaSuccess) fail("{} of {} bytes failed: {}", what, bytes, cudaGetErrorString(e));
}
void* device_alloc(size_t bytes) {
  void* p = nullptr;
  if (bytes) check(cudaMalloc(&p, bytes), "cudaMalloc", bytes);
  return p;
}
void device_free(void* p) {
  if (p) cudaFree(p);
}
void copy_to_host(void* dst, const void* src, size_t bytes) {
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy to host", bytes);
}
void copy_to_device(void* dst, const void* src, size_t bytes) {
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to device", bytes);
}
void synchronize() { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize", 0); }
}  // namespace dattn::detail
#else
namespace dattn::detail {
void* device_alloc(size_t bytes) { fail("cannot allocate {} bytes on cuda: dattn was built without CUDA", bytes); }
void device_free(void*) {}
void copy_to_host(void*, const void*, size_t) { fail("dattn was built without CUDA"); }
void copy_to_device(void*, const void*, size_t) { fail("dattn was built without CUDA"); }
void synchronize() {}
}  // namespace dattn::detail
#endif
