// x W^T for a handful of rows (a decode step's batch), memory-bound instead of packing-bound.
#pragma once
#include <cstdint>

namespace dattn::model::cpu_ops {

// Rows up to this many take small_batch_linear (measured against OpenBLAS sgemm on the 2-core development
// VM: faster up to 8 rows, even at 16; docs/BENCHMARKS.md).
inline constexpr int64_t kSmallBatchMaxRows = 8;

// out[r * out_stride + j] (+)= sum_i x[r * k + i] * w[j * k + i] for r < rows, j < features; one thread.
// accumulate=false never reads out (as sgemm with beta 0).
void small_batch_linear(const float* x, const float* w, int64_t rows, int64_t features, int64_t k, float* out,
                        int64_t out_stride, bool accumulate);

}  // namespace dattn::model::cpu_ops
