#include "dattn/core/finite.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "dattn/core/error.h"
#include "dattn/core/threads.h"

namespace dattn {
namespace {

// An all-ones exponent is Inf or NaN in every IEEE format; the mask is that exponent.
template <typename Bits, Bits kExponent>
int64_t first_bad_in_row(const void* row, int64_t count, int64_t stride) {
  const Bits* p = static_cast<const Bits*>(row);
  if (stride == 1) {
    bool any = false;  // a branch-free pass first: it vectorises
    for (int64_t c = 0; c < count; ++c) any |= (p[c] & kExponent) == kExponent;
    if (!any) return -1;
  }
  for (int64_t c = 0; c < count; ++c)
    if ((p[c * stride] & kExponent) == kExponent) return c;
  return -1;
}

int64_t first_bad(const TensorView& t, const void* row) {
  switch (t.dtype) {
    case DType::f32: return first_bad_in_row<uint32_t, 0x7f800000u>(row, t.shape[3], t.stride[3]);
    case DType::bf16: return first_bad_in_row<uint16_t, uint16_t(0x7f80)>(row, t.shape[3], t.stride[3]);
    case DType::f16: return first_bad_in_row<uint16_t, uint16_t(0x7c00)>(row, t.shape[3], t.stride[3]);
  }
  return -1;
}

}  // namespace

std::optional<std::array<int64_t, 4>> find_non_finite(const TensorView& t, int num_threads) {
  DATTN_CHECK(t.device == Device::cpu, "find_non_finite needs a host tensor, got {}", t.describe());
  const int64_t rows = t.shape[0] * t.shape[1];
  const size_t element = dtype_size(t.dtype);
  // the smallest flat (i0, i1) row holding a bad value, so the first one is reported whatever the threads do
  std::atomic<int64_t> first_row{rows};
  constexpr int64_t kRowsPerItem = 256;  // enough work per item that the scheduling cost vanishes
  parallel_for((rows + kRowsPerItem - 1) / kRowsPerItem, num_threads, [&](int64_t item, int) {
    const int64_t end = std::min(rows, (item + 1) * kRowsPerItem);
    for (int64_t r = item * kRowsPerItem; r < end; ++r) {
      if (r > first_row.load(std::memory_order_relaxed)) return;
      const int64_t i0 = r / t.shape[1], i1 = r % t.shape[1];
      for (int64_t i2 = 0; i2 < t.shape[2]; ++i2) {
        const char* row = static_cast<const char*>(t.data) + t.offset(i0, i1, i2, 0) * int64_t(element);
        if (first_bad(t, row) >= 0) {
          int64_t seen = first_row.load();
          while (r < seen && !first_row.compare_exchange_weak(seen, r)) {
          }
          return;
        }
      }
    }
  });
  const int64_t r = first_row.load();
  if (r == rows) return std::nullopt;
  const int64_t i0 = r / t.shape[1], i1 = r % t.shape[1];
  for (int64_t i2 = 0; i2 < t.shape[2]; ++i2) {
    const char* row = static_cast<const char*>(t.data) + t.offset(i0, i1, i2, 0) * int64_t(element);
    if (const int64_t c = first_bad(t, row); c >= 0) return std::array<int64_t, 4>{i0, i1, i2, c};
  }
  return std::nullopt;  // unreachable: row r held a bad value
}

int64_t find_non_finite(const float* data, size_t count) {
  const int64_t c = first_bad_in_row<uint32_t, 0x7f800000u>(data, int64_t(count), 1);
  return c;
}

void check_finite(const TensorView& t, const char* what, int num_threads) {
  const auto bad = find_non_finite(t, num_threads);
  if (!bad) return;
  const auto [i0, i1, i2, i3] = *bad;
  fail("{} holds a non-finite value ({}) at [{}, {}, {}, {}]: attention refuses NaN and Inf inputs", what,
       t.get(i0, i1, i2, i3), i0, i1, i2, i3);
}

}  // namespace dattn
