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

using test::RandomPick;

// A (b, s, h, d) logical view on the device; heads_major stores it as (b, h, s, d) memory.
using DeviceTensor = test::Placed;
inline DeviceTensor to_device(const TensorView& host, DType dtype, bool heads_major) {
  return test::place(host, dtype, Device::cuda, heads_major ? test::Layout::heads_major : test::Layout::contiguous);
}

// A device output of the given logical shape filled with NaN, so unwritten elements fail every check.
inline DeviceTensor poisoned_device(std::array<int64_t, 4> shape, DType dtype, bool heads_major) {
  return test::poisoned(shape, dtype, Device::cuda, heads_major ? test::Layout::heads_major : test::Layout::contiguous);
}

// fp32 host copy of a device tensor, as a contiguous (b, s, h, d) tensor.
struct HostResult {
  Tensor storage;
  TensorView view;
  operator const TensorView&() const { return view; }
};
inline HostResult to_host(const DeviceTensor& d) {
  HostResult r;
  r.storage = test::fetch(d);
  r.view = r.storage.view();
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

using test::lse_rows;
using test::rows;

}  // namespace dattn::cuda_test
