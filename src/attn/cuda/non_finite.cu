#include "cuda_check.h"
#include "non_finite.h"

namespace dattn::cuda::detail {
namespace {

struct View4 {
  const uint16_t* data;
  int64_t shape[4], stride[4];
};

// Grid-stride over the flat row-major index; the smallest bad index wins through atomicMin.
__global__ void find_non_finite_kernel(View4 v, uint16_t exponent_mask, unsigned long long* first_bad) {
  const int64_t total = v.shape[0] * v.shape[1] * v.shape[2] * v.shape[3];
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t rest = i;
    const int64_t c = rest % v.shape[3];
    rest /= v.shape[3];
    const int64_t h = rest % v.shape[2];
    rest /= v.shape[2];
    const int64_t r = rest % v.shape[1];
    const int64_t b = rest / v.shape[1];
    const uint16_t bits = v.data[b * v.stride[0] + r * v.stride[1] + h * v.stride[2] + c * v.stride[3]];
    if ((bits & exponent_mask) == exponent_mask) atomicMin(first_bad, static_cast<unsigned long long>(i));
  }
}

}  // namespace

int64_t find_non_finite_16bit(const void* data, const int64_t shape[4], const int64_t stride[4], uint16_t exponent_mask,
                              cudaStream_t stream) {
  View4 v{static_cast<const uint16_t*>(data), {}, {}};
  for (int i = 0; i < 4; ++i) {
    v.shape[i] = shape[i];
    v.stride[i] = stride[i];
  }
  const unsigned long long none = ~0ull;
  unsigned long long* device_result = nullptr;
  check_cuda(cudaMallocAsync(reinterpret_cast<void**>(&device_result), sizeof(none), stream), "cudaMallocAsync (finite check)");
  check_cuda(cudaMemcpyAsync(device_result, &none, sizeof(none), cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync");
  find_non_finite_kernel<<<1024, 256, 0, stream>>>(v, exponent_mask, device_result);
  check_cuda(cudaGetLastError(), "finite-check kernel launch");
  unsigned long long result = none;
  check_cuda(cudaMemcpyAsync(&result, device_result, sizeof(result), cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync");
  check_cuda(cudaFreeAsync(device_result, stream), "cudaFreeAsync");
  check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize (finite check)");
  return result == none ? -1 : static_cast<int64_t>(result);
}

}  // namespace dattn::cuda::detail
