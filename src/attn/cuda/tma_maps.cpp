#include "tma_maps.h"

#include <cuda.h>
#include <cuda_runtime.h>
#include <cudaTypedefs.h>


#include "cuda_check.h"
#include "dattn/core/error.h"

namespace dattn::cuda::detail {
namespace {

static_assert(sizeof(CUtensorMap) == sizeof(TmaDescriptor) && alignof(CUtensorMap) == alignof(TmaDescriptor));

// Through the runtime's entry-point query, so the library needs no link against libcuda.
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 encoder = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found) !=
            cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
      cudaGetLastError();
      return PFN_cuTensorMapEncodeTiled_v12000{};
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  return encoder;
}

bool current_device_is_hopper() {
  return current_device_attribute(cudaDevAttrComputeCapabilityMajor, "querying the compute capability") == 9;
}

}  // namespace

bool tma_available() { return current_device_is_hopper() && tensor_map_encoder() != nullptr; }

bool encode_kv_tma_map(const TensorView& t, TmaDescriptor& map) {
  const PFN_cuTensorMapEncodeTiled_v12000 encode = tensor_map_encoder();
  if (!encode || t.stride[3] != 1 || (t.dtype != DType::bf16 && t.dtype != DType::f16)) return false;
  constexpr uint64_t kElemBytes = 2, kMaxStride = uint64_t(1) << 40;
  if (reinterpret_cast<uintptr_t>(t.data) % 16 != 0) return false;
  const cuuint64_t dims[4] = {cuuint64_t(t.shape[3]), cuuint64_t(t.shape[1]), cuuint64_t(t.shape[2]),
                              cuuint64_t(t.shape[0])};
  // byte strides of rows, heads, batch; a dimension of size 1 is never stepped (its view stride may be
  // anything), so it gets the stride a packed layout would have
  const int64_t element_strides[3] = {t.stride[1], t.stride[2], t.stride[0]};
  cuuint64_t strides[3];
  uint64_t packed = dims[0] * kElemBytes;
  for (int i = 0; i < 3; ++i) {
    const bool stepped = dims[i + 1] > 1;
    const uint64_t bytes =
        stepped ? (element_strides[i] > 0 ? uint64_t(element_strides[i]) * kElemBytes : 0) : (packed + 15) / 16 * 16;
    if (bytes == 0 || bytes % 16 != 0 || bytes >= kMaxStride) return false;
    strides[i] = bytes;
    packed = bytes * dims[i + 1];
  }
  const cuuint32_t box[4] = {64, 64, 1, 1};
  const cuuint32_t box_steps[4] = {1, 1, 1, 1};
  CUtensorMap encoded;
  const CUresult status = encode(
      &encoded, t.dtype == DType::bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 4,
      t.data, dims, strides, box, box_steps, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (status != CUDA_SUCCESS) return false;
  std::memcpy(&map, &encoded, sizeof map);
  return true;
}

}  // namespace dattn::cuda::detail
