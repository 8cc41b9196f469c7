// Finding NaN / Inf in inputs: attention refuses non-finite inputs rather than let each backend treat
// them its own way (docs/ARCHITECTURE.md, "Non-finite inputs").
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "dattn/core/tensor.h"

namespace dattn {

// Index (i0, i1, i2, i3) of the first NaN or +-Inf of a host view in row-major order, if any. Reads every
// element once (bit tests on the exponent, parallel over the leading dims): about one pass of memory.
std::optional<std::array<int64_t, 4>> find_non_finite(const TensorView& t, int num_threads = 0);

// Offset of the first NaN or +-Inf in a contiguous fp32 array, or -1.
int64_t find_non_finite(const float* data, size_t count);

// Throws dattn::Error naming `what`, the index and the value when a host view holds NaN or Inf.
void check_finite(const TensorView& t, const char* what, int num_threads = 0);

}  // namespace dattn
