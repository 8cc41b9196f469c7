// x W^T for a handful of rows (a decode step's batch), memory-bound instead of packing-bound.
#pragma once
#include <cstdint>

namespace dattn::model::cpu_ops {

// Rows up to this many take small_batch_linear. Against OpenBLAS sgemm over a model's worth of weights on
// one core (bench/cpu_linear, docs/BENCHMARKS.md): 2.05x at 2 rows, 1.60x at 8, 1.32x at 16, even at 24,
// slower at 32.
inline constexpr int64_t kSmallBatchMaxRows = 16;

// out[r * out_stride + j] (+)= sum_i x[r * k + i] * w[j * k + i] for r < rows, j < features; one thread.
// accumulate=false never reads out (as sgemm with beta 0).
void small_batch_linear(const float* x, const float* w, int64_t rows, int64_t features, int64_t k, float* out,
                        int64_t out_stride, bool accumulate);

}  // namespace dattn::model::cpu_ops
