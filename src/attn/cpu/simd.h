// AVX2/FMA/F16C building blocks of the CPU kernels: a vector exp2 and row loads/stores that convert
// between the tensor dtype and fp32. The build targets x86-64-v3 (see docs/CPU_KERNELS.md), so these
// intrinsics are used unconditionally.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "dattn/core/dtype.h"

namespace dattn::cpu {

// 2^x for a vector of fp32, relative error ~1e-7 on the range softmax uses (x <= 0).
// x < -125 (including -inf, the masked scores) gives exactly 0, so a masked key never contributes
// and no denormal arises; NaN never enters (callers subtract finite maxima).
inline __m256 exp2_ps(__m256 x) {
  const __m256 lowest = _mm256_set1_ps(-125.0f);
  const __m256 in_range = _mm256_cmp_ps(x, lowest, _CMP_GE_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, lowest), _mm256_set1_ps(127.0f));
  const __m256 whole = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(x, whole);  // in [-0.5, 0.5]
  // Taylor series of e^(f ln 2) to degree 7: truncation error < 6e-9 on |f| <= 0.5.
  __m256 p = _mm256_set1_ps(1.5252733804059840e-05f);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.5403530393381606e-04f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.3333558146428443e-03f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.6181291076284770e-03f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.5504108664821580e-02f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.4022650695910071e-01f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.9314718055994531e-01f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  const __m256i exponent = _mm256_slli_epi32(_mm256_cvtps_epi32(whole), 23);
  const __m256 scaled = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), exponent));
  return _mm256_and_ps(scaled, in_range);
}

inline float horizontal_max(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// dst[0..n) = src[i * stride] converted to fp32. stride is in elements; stride 1 takes the vector path.
inline void load_row(const void* src, DType dtype, int64_t stride, int64_t n, float* dst) {
  int64_t i = 0;
  switch (dtype) {
    case DType::f32: {
      const float* s = static_cast<const float*>(src);
      if (stride == 1) {
        std::memcpy(dst, s, size_t(n) * sizeof(float));
        return;
      }
      for (; i < n; ++i) dst[i] = s[i * stride];
      return;
    }
    case DType::bf16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      if (stride == 1)
        for (; i + 8 <= n; i += 8) {  // bf16 is the top half of an fp32: widen and shift
          const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
          _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)));
        }
      for (; i < n; ++i) dst[i] = bf16_to_f32(s[i * stride]);
      return;
    }
    case DType::f16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      if (stride == 1)
        for (; i + 8 <= n; i += 8)
          _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
      for (; i < n; ++i) dst[i] = f16_to_f32(s[i * stride]);
      return;
    }
  }
}

// dst[i * stride] = src[i] converted from fp32 (round to nearest even).
inline void store_row(const float* src, int64_t n, void* dst, DType dtype, int64_t stride) {
  int64_t i = 0;
  switch (dtype) {
    case DType::f32: {
      float* d = static_cast<float*>(dst);
      if (stride == 1) {
        std::memcpy(d, src, size_t(n) * sizeof(float));
        return;
      }
      for (; i < n; ++i) d[i * stride] = src[i];
      return;
    }
    case DType::bf16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (; i < n; ++i) d[i * stride] = f32_to_bf16(src[i]);
      return;
    }
    case DType::f16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      if (stride == 1)
        for (; i + 8 <= n; i += 8)
          _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                           _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
      for (; i < n; ++i) d[i * stride] = f32_to_f16(src[i]);
      return;
    }
  }
}

}  // namespace dattn::cpu
