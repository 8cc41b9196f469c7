// OpenBLAS's sgemm packs the weight panel on every call; for the few rows of a decode step that copy costs
// more than the product (54% of a batched CPU decode step of SmolLM2-135M went to sgemm_incopy). Here each
// weight row is read from memory once and dotted with every row of x (which stays in L1): two weight rows
// and up to four x rows at a time, eight independent accumulators, and the next pair of weight rows
// prefetched while this one is used.
#include "small_batch_linear.h"

#include <immintrin.h>

#include <algorithm>

namespace dattn::model::cpu_ops {

namespace {

inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// kRows rows of x against weight rows w0 and w1 (w1 == w0 when there is only one; then out[1] is left alone).
template <int kRows>
void dot_block(const float* x, int64_t k, const float* w0, const float* w1, bool two, float* out, int64_t out_stride,
               bool accumulate) {
  __m256 acc0[kRows], acc1[kRows];
  for (int r = 0; r < kRows; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    if ((i & 15) == 0) {  // one prefetch per 64-byte line of each of the next two weight rows
      _mm_prefetch(reinterpret_cast<const char*>(w0 + 2 * k + i), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(w1 + 2 * k + i), _MM_HINT_T0);
    }
    const __m256 a = _mm256_loadu_ps(w0 + i), b = _mm256_loadu_ps(w1 + i);
    for (int r = 0; r < kRows; ++r) {
      const __m256 xv = _mm256_loadu_ps(x + r * k + i);
      acc0[r] = _mm256_fmadd_ps(a, xv, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(b, xv, acc1[r]);
    }
  }
  for (int r = 0; r < kRows; ++r) {
    float s0 = horizontal_sum(acc0[r]), s1 = horizontal_sum(acc1[r]);
    for (int64_t t = i; t < k; ++t) {
      s0 += w0[t] * x[r * k + t];
      s1 += w1[t] * x[r * k + t];
    }
    float* o = out + r * out_stride;
    o[0] = accumulate ? o[0] + s0 : s0;
    if (two) o[1] = accumulate ? o[1] + s1 : s1;
  }
}

}  // namespace

void small_batch_linear(const float* x, const float* w, int64_t rows, int64_t features, int64_t k, float* out,
                        int64_t out_stride, bool accumulate) {
  for (int64_t j = 0; j < features; j += 2) {
    const bool two = j + 1 < features;
    const float* w0 = w + j * k;
    const float* w1 = two ? w0 + k : w0;
    for (int64_t r = 0; r < rows; r += 4) {
      const float* xr = x + r * k;
      float* o = out + r * out_stride + j;
      switch (std::min<int64_t>(4, rows - r)) {
        case 4: dot_block<4>(xr, k, w0, w1, two, o, out_stride, accumulate); break;
        case 3: dot_block<3>(xr, k, w0, w1, two, o, out_stride, accumulate); break;
        case 2: dot_block<2>(xr, k, w0, w1, two, o, out_stride, accumulate); break;
        default: dot_block<1>(xr, k, w0, w1, two, o, out_stride, accumulate); break;
      }
    }
  }
}

}  // namespace dattn::model::cpu_ops
