// Host side of the sm_90a TMA path: describes K or V to the tensor memory accelerator. No CUDA types here.
#pragma once
#include "dattn/core/tensor.h"
#include "kernel_params.h"

namespace dattn::cuda::detail {

// Whether K/V tiles may come by TMA on the current device: a Hopper (compute capability 9.x, where the
// sm_90a kernels run) whose driver offers cuTensorMapEncodeTiled. CudaKernelConfig::tma can still turn it off.
bool tma_available();

// Fills `map` for a (batch, rows, heads, head_dim) bf16/fp16 view with head_dim contiguous: 4-D (head_dim,
// rows, heads, batch), 64-element x 64-row boxes, 128-byte swizzle, rows past the end read as zeros.
// Returns false (and leaves the cp.async path to the caller) when TMA cannot describe the layout: a base
// address or stride that is not a multiple of 16 bytes, a stride of 2^40 bytes or more.
bool encode_kv_tma_map(const TensorView& t, TmaDescriptor& map);

}  // namespace dattn::cuda::detail
