// Register-blocked AVX2/FMA micro-kernels: a panel of ROWS x 16 outputs held in 2*ROWS ymm registers
// (ROWS <= 6: 12 accumulators + 2 loaded B vectors + 1 broadcast = 15 of the 16 registers).
// Every B operand and C output is a row-major fp32 matrix with 16 contiguous, 32-byte aligned columns;
// the A operand is broadcast one scalar at a time, so it may be laid out with any strides.
//
// The attention tile uses them in the "transposed" orientation (see docs/CPU_KERNELS.md):
//   scores  S^T (keys x M)   = K (keys x d) . Q^T (d x M)        -> scores_panel
//   output  O^T (d x M)     = alpha * O^T + V^T (d x keys) . P^T (keys x M)  -> accumulate_panel
// where M is the tile's (query row, head) count, so per-row softmax statistics are plain vectors.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace dattn::cpu {

constexpr int kPanelRows = 6;    // register block height (A rows)
constexpr int kPanelCols = 16;   // register block width (two ymm of fp32)

// c[i][0:16] = sum_k a[i * a_row_stride + k] * b[k * ldb + 0:16]   for i < ROWS
template <int ROWS>
inline void scores_panel(const float* __restrict a, int64_t a_row_stride, const float* __restrict b, int64_t ldb,
                         float* __restrict c, int64_t ldc, int64_t depth) {
  __m256 lo[ROWS], hi[ROWS];
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; ++i) lo[i] = hi[i] = _mm256_setzero_ps();
  for (int64_t k = 0; k < depth; ++k) {
    const __m256 b_lo = _mm256_load_ps(b + k * ldb), b_hi = _mm256_load_ps(b + k * ldb + 8);
#pragma GCC unroll 6
    for (int i = 0; i < ROWS; ++i) {
      const __m256 a_ik = _mm256_broadcast_ss(a + i * a_row_stride + k);
      lo[i] = _mm256_fmadd_ps(a_ik, b_lo, lo[i]);
      hi[i] = _mm256_fmadd_ps(a_ik, b_hi, hi[i]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; ++i) {
    _mm256_store_ps(c + i * ldc, lo[i]);
    _mm256_store_ps(c + i * ldc + 8, hi[i]);
  }
}

// c[i][0:16] = alpha[0:16] * c[i][0:16] + sum_k a[k * a_depth_stride + i] * b[k * ldb + 0:16]   for i < ROWS
// (alpha rescales the running output when the running maximum of a column grows: online softmax).
template <int ROWS>
inline void accumulate_panel(const float* __restrict a, int64_t a_depth_stride, const float* __restrict b,
                             int64_t ldb, float* __restrict c, int64_t ldc, const float* __restrict alpha,
                             int64_t depth) {
  __m256 lo[ROWS], hi[ROWS];
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; ++i) lo[i] = hi[i] = _mm256_setzero_ps();
  for (int64_t k = 0; k < depth; ++k) {
    const __m256 b_lo = _mm256_load_ps(b + k * ldb), b_hi = _mm256_load_ps(b + k * ldb + 8);
    const float* a_k = a + k * a_depth_stride;
#pragma GCC unroll 6
    for (int i = 0; i < ROWS; ++i) {
      const __m256 a_ik = _mm256_broadcast_ss(a_k + i);
      lo[i] = _mm256_fmadd_ps(a_ik, b_lo, lo[i]);
      hi[i] = _mm256_fmadd_ps(a_ik, b_hi, hi[i]);
    }
  }
  const __m256 alpha_lo = _mm256_load_ps(alpha), alpha_hi = _mm256_load_ps(alpha + 8);
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; ++i) {
    _mm256_store_ps(c + i * ldc, _mm256_fmadd_ps(_mm256_load_ps(c + i * ldc), alpha_lo, lo[i]));
    _mm256_store_ps(c + i * ldc + 8, _mm256_fmadd_ps(_mm256_load_ps(c + i * ldc + 8), alpha_hi, hi[i]));
  }
}

// Runtime row count (1..6) to the matching instantiation, for the last, partial panel.
template <typename... Args>
inline void scores_panel_rows(int rows, Args... args) {
  switch (rows) {
    case 6: scores_panel<6>(args...); break;
    case 5: scores_panel<5>(args...); break;
    case 4: scores_panel<4>(args...); break;
    case 3: scores_panel<3>(args...); break;
    case 2: scores_panel<2>(args...); break;
    default: scores_panel<1>(args...); break;
  }
}

template <typename... Args>
inline void accumulate_panel_rows(int rows, Args... args) {
  switch (rows) {
    case 6: accumulate_panel<6>(args...); break;
    case 5: accumulate_panel<5>(args...); break;
    case 4: accumulate_panel<4>(args...); break;
    case 3: accumulate_panel<3>(args...); break;
    case 2: accumulate_panel<2>(args...); break;
    default: accumulate_panel<1>(args...); break;
  }
}

}  // namespace dattn::cpu
