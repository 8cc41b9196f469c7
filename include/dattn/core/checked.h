// Overflow-checked size arithmetic for numbers read from files (config.json, safetensors and .npy
// headers, GGUF): every size a file states is bounded and every product of sizes is checked before it
// is used or allocated, so a crafted file ends in a dattn::Error naming the field, never in a wrapped
// size, a write past a buffer or std::bad_alloc.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>

namespace dattn {

// a * b and a + b, or nullopt when the exact result does not fit in T.
template <typename T>
constexpr std::optional<T> checked_mul(T a, T b) {
  static_assert(std::is_integral_v<T>);
  T result;
  if (__builtin_mul_overflow(a, b, &result)) return std::nullopt;
  return result;
}
template <typename T>
constexpr std::optional<T> checked_add(T a, T b) {
  static_assert(std::is_integral_v<T>);
  T result;
  if (__builtin_add_overflow(a, b, &result)) return std::nullopt;
  return result;
}

// `value` when it lies in [min, max]; otherwise throws "{what} is {value} (must be in [min, max])".
int64_t require_in_range(int64_t value, int64_t min, int64_t max, std::string_view what);

// a * b of two non-negative sizes (e.g. num_attention_heads * head_dim); throws naming `what` when the
// product exceeds `limit` (or int64).
int64_t checked_product(int64_t a, int64_t b, int64_t limit, std::string_view what);

// The element count of a shape; throws naming `what` and the shape when a dimension is negative or the
// product exceeds `limit_elements`.
int64_t checked_numel(std::span<const int64_t> shape, int64_t limit_elements, std::string_view what);

// The byte size of a shape of `element_size`-byte elements; throws naming `what` and the shape when a
// dimension is negative or the size exceeds `limit_bytes`.
uint64_t checked_byte_size(std::span<const int64_t> shape, uint64_t element_size, uint64_t limit_bytes,
                           std::string_view what);

}  // namespace dattn
