#include <algorithm>

#include "cuda_check.h"
#include "non_finite.h"

namespace dattn::cuda::detail {
namespace {

struct View4 {
  const uint16_t* data;
  int64_t shape[4], stride[4];
};

// A warp per (batch, row, head) row, grid-stride over the rows: the index arithmetic is per row, the loads
// per lane are consecutive. The smallest bad flat index (row * head_dim + channel) wins through atomicMin.
__global__ void find_non_finite_kernel(View4 v, uint16_t exponent_mask, unsigned long long* first_bad) {
  const int64_t rows = v.shape[0] * v.shape[1] * v.shape[2];
  const int64_t warps_per_block = blockDim.x / 32, lane = threadIdx.x % 32;
  const int64_t warps = int64_t(gridDim.x) * warps_per_block;
  for (int64_t row = int64_t(blockIdx.x) * warps_per_block + threadIdx.x / 32; row < rows; row += warps) {
    const int64_t h = row % v.shape[2], bs = row / v.shape[2];
    const int64_t s = bs % v.shape[1], b = bs / v.shape[1];
    const uint16_t* p = v.data + b * v.stride[0] + s * v.stride[1] + h * v.stride[2];
    for (int64_t c = lane; c < v.shape[3]; c += 32)
      if ((p[c * v.stride[3]] & exponent_mask) == exponent_mask)
        atomicMin(first_bad, static_cast<unsigned long long>(row * v.shape[3] + c));
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
  constexpr int kThreads = 256, kWarps = kThreads / 32;
  const int64_t rows = shape[0] * shape[1] * shape[2];
  const int blocks = int(std::min<int64_t>((rows + kWarps - 1) / kWarps, 4096));
  find_non_finite_kernel<<<blocks, kThreads, 0, stream>>>(v, exponent_mask, device_result);
  check_cuda(cudaGetLastError(), "finite-check kernel launch");
  unsigned long long result = none;
  check_cuda(cudaMemcpyAsync(&result, device_result, sizeof(result), cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync");
  check_cuda(cudaFreeAsync(device_result, stream), "cudaFreeAsync");
  check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize (finite check)");
  return result == none ? -1 : static_cast<int64_t>(result);
}

}  // namespace dattn::cuda::detail
