// One instantiation per file keeps each nvcc job small.
#include <map>
#include <mutex>

#include "launch_kernels.cuh"
namespace dattn::cuda::detail {
template void launch_dense_rows<ElemType::bf16, 128>(AnchorOutput, const AttentionKernelParams&, cudaStream_t);

// Here because it needs a kernel symbol (see launch.h).
bool hopper_kernels_loaded() {
  int device = 0;
  check_cuda(cudaGetDevice(&device), "querying the current device");
  static std::mutex mutex;
  static std::map<int, bool> cache;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto [it, inserted] = cache.try_emplace(device, false);
  if (inserted) {
    cudaFuncAttributes attributes{};
    const cudaError_t status =
        cudaFuncGetAttributes(&attributes, dense_rows_ws_kernel<__nv_bfloat16, 128, AnchorOutput::dense_rows>);
    if (status != cudaSuccess) cache.erase(it);
    check_cuda(status, "querying which binary of the attention kernels the device runs");
    it->second = attributes.ptxVersion >= 90;
  }
  return it->second;
}
}  // namespace dattn::cuda::detail
