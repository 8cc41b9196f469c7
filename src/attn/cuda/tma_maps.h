// Host side of the sm_90a TMA path: describes K or V to the tensor memory accelerator. No CUDA types here.
#pragma once
#include "dattn/core/tensor.h"
#include "kernel_params.h"

namespace dattn::cuda::detail {

// Whether the K/V tiles of this call may come by TMA: the current device is a Hopper (compute capability
// 9.x, where the sm_90a kernels run), the driver offers cuTensorMapEncodeTiled, and DATTN_CUDA_TMA is not
// "0" (read per call, so tests and benchmarks can compare both paths; a value other than 0, 1 or empty is
// an error naming it).
bool tma_enabled();

// Whether TMA calls run the warp-specialised kernels (ws_kernels.cuh): DATTN_CUDA_WS unset, empty or "1";
// "0" keeps the one-warpgroup kernels (to compare); any other value is an error naming it.
bool warp_specialization_enabled();

// Fills `map` for a (batch, rows, heads, head_dim) bf16/fp16 view with head_dim contiguous: 4-D (head_dim,
// rows, heads, batch), 64-element x 64-row boxes, 128-byte swizzle, rows past the end read as zeros.
// Returns false (and leaves the cp.async path to the caller) when TMA cannot describe the layout: a base
// address or stride that is not a multiple of 16 bytes, a stride of 2^40 bytes or more.
bool encode_kv_tma_map(const TensorView& t, TmaDescriptor& map);

}  // namespace dattn::cuda::detail
