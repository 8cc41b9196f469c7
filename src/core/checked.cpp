#include "dattn/core/checked.h"

#include <fmt/ranges.h>

#include "dattn/core/error.h"

namespace dattn {

int64_t require_in_range(int64_t value, int64_t min, int64_t max, std::string_view what) {
  DATTN_CHECK(value >= min && value <= max, "{} is {} (must be in [{}, {}])", what, value, min, max);
  return value;
}

int64_t checked_product(int64_t a, int64_t b, int64_t limit, std::string_view what) {
  DATTN_CHECK(a >= 0 && b >= 0, "{}: {} x {} has a negative factor", what, a, b);
  const std::optional<int64_t> product = checked_mul(a, b);
  DATTN_CHECK(product && *product <= limit, "{}: {} x {} exceeds the limit of {}", what, a, b, limit);
  return *product;
}

int64_t checked_numel(std::span<const int64_t> shape, int64_t limit_elements, std::string_view what) {
  int64_t numel = 1;
  for (int64_t dim : shape) {
    DATTN_CHECK(dim >= 0, "{}: shape [{}] has a negative dimension", what, fmt::join(shape, ", "));
    const std::optional<int64_t> next = checked_mul(numel, dim);
    DATTN_CHECK(next && *next <= limit_elements, "{}: shape [{}] has more than {} elements", what,
                fmt::join(shape, ", "), limit_elements);
    numel = *next;
  }
  return numel;
}

uint64_t checked_byte_size(std::span<const int64_t> shape, uint64_t element_size, uint64_t limit_bytes,
                           std::string_view what) {
  uint64_t bytes = element_size;
  for (int64_t dim : shape) {
    DATTN_CHECK(dim >= 0, "{}: shape [{}] has a negative dimension", what, fmt::join(shape, ", "));
    const std::optional<uint64_t> next = checked_mul(bytes, uint64_t(dim));
    DATTN_CHECK(next && *next <= limit_bytes, "{}: shape [{}] of {}-byte elements exceeds {} bytes", what,
                fmt::join(shape, ", "), element_size, limit_bytes);
    bytes = *next;
  }
  return bytes;
}

}  // namespace dattn
