// Helpers for the cuda backend tests: device copies of host tensors (optionally heads-major, i.e.
// strided), poisoned device outputs, reading results back, and a run of the operator on the GPU.
#pragma once
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "dattn/attn/backends.h"
#include "dattn/core/error.h"
#include "dattn/delta/delta_attention.h"
#include "test_support.h"

namespace dattn::cuda_test {

using test::with;

#define DATTN_SKIP_WITHOUT_GPU() \
  if (!::dattn::cuda::available()) GTEST_SKIP() << "no CUDA device present: cuda backend tests skipped"

// The choices of a randomised sweep, all drawn from one seeded engine.
class RandomPick {
 public:
  explicit RandomPick(uint32_t seed) : engine_(seed) {}
  template <typename T, typename... Rest>
  T one_of(T first, Rest... rest) {
    const std::array<T, 1 + sizeof...(rest)> values{first, T(rest)...};
    return values[std::uniform_int_distribution<size_t>(0, values.size() - 1)(engine_)];
  }
  int64_t between(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(engine_); }

 private:
  std::mt19937 engine_;
};

// A (b, s, h, d) logical view on the device; heads_major stores it as (b, h, s, d) memory.
struct DeviceTensor {
  Tensor storage;
  TensorView view;
  bool heads_major = false;
};

inline DeviceTensor to_device(const TensorView& host, DType dtype, bool heads_major) {
  DeviceTensor d;
  d.heads_major = heads_major;
  if (heads_major) {
    test::HeadsMajor hm = test::heads_major_copy(host);
    d.storage = Tensor::copy_of(hm.storage.view(), dtype, Device::cuda);
    d.view = d.storage.view().transposed(1, 2);
  } else {
    d.storage = Tensor::copy_of(host, dtype, Device::cuda);
    d.view = d.storage.view();
  }
  return d;
}

// A device output of the given logical shape filled with NaN, so unwritten elements fail every check.
inline DeviceTensor poisoned_device(std::array<int64_t, 4> shape, DType dtype, bool heads_major) {
  Tensor host(shape, DType::f32);
  test::poison(host);
  return to_device(host, dtype, heads_major);
}

// fp32 host copy of a device tensor, as a (b, s, h, d) view.
struct HostResult {
  Tensor storage;
  TensorView view;
  operator const TensorView&() const { return view; }
};
inline HostResult to_host(const DeviceTensor& d) {
  HostResult r;
  r.storage = Tensor::copy_of(d.storage.view(), DType::f32, Device::cpu);
  r.view = d.heads_major ? r.storage.view().transposed(1, 2) : r.storage.view();
  return r;
}

inline bool all_finite(const TensorView& t) {
  for (int64_t a = 0; a < t.shape[0]; ++a)
    for (int64_t b = 0; b < t.shape[1]; ++b)
      for (int64_t c = 0; c < t.shape[2]; ++c)
        for (int64_t e = 0; e < t.shape[3]; ++e)
          if (!std::isfinite(t.get(a, b, c, e))) return false;
  return true;
}

struct GpuResult {
  HostResult out, lse;
};

// Runs the cuda backend on device inputs with freshly poisoned out (dtype out_dtype) and lse.
inline GpuResult run_gpu(const TensorView& q, const TensorView& k, const TensorView& v, AttentionParams p,
                         DType out_dtype = DType::f32, bool heads_major_out = false) {
  p.backend = Backend::cuda;
  DeviceTensor out = poisoned_device(q.shape, out_dtype, heads_major_out);
  DeviceTensor lse = poisoned_device({q.shape[0], q.shape[2], q.shape[1], 1}, DType::f32, false);
  delta_attention_lse(q, k, v, out.view, lse.view, p);
  return {to_host(out), to_host(lse)};
}

// Rows [row_begin, row_end) of a host (b, s, h, d) output, or of an lse (b, h, s, 1).
inline TensorView rows(const TensorView& t, int64_t row_begin, int64_t row_end) {
  TensorView v = t;
  v.data = static_cast<char*>(t.data) + row_begin * t.stride[1] * int64_t(dtype_size(t.dtype));
  v.shape[1] = row_end - row_begin;
  return v;
}
inline TensorView lse_rows(const TensorView& t, int64_t row_begin, int64_t row_end) {
  TensorView v = t;
  v.data = static_cast<char*>(t.data) + row_begin * t.stride[2] * int64_t(dtype_size(t.dtype));
  v.shape[2] = row_end - row_begin;
  return v;
}

}  // namespace dattn::cuda_test
