// The cuda backend's check for NaN / Inf in q, k, v (the same refusal as the CPU backends').
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace dattn::cuda::detail {

// Row-major flat index of the first NaN or Inf of a 4-D 16-bit (bf16 / fp16) device view with
// head_dim contiguous, or -1. exponent_mask: 0x7f80 (bf16) or 0x7c00 (fp16). Synchronises the stream.
int64_t find_non_finite_16bit(const void* data, const int64_t shape[4], const int64_t stride[4], uint16_t exponent_mask,
                              cudaStream_t stream);

}  // namespace dattn::cuda::detail
