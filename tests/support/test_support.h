// Shared helpers for tests: random tensors, poisoning, error norms.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <random>

#include "dattn/attn/params.h"
#include "dattn/core/tensor.h"

namespace dattn::test {

// Params of `mode` with the given sparsity and every other field at its default.
inline AttentionParams with(AttentionMode mode, int64_t window, int64_t sink, int64_t gamma) {
  AttentionParams p;
  p.mode = mode;
  p.window = window;
  p.sink = sink;
  p.gamma = gamma;
  return p;
}

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

// Fills a host view with N(0, sigma) values rounded to the view's dtype.
void fill_normal(const TensorView& t, std::mt19937& rng, float sigma = 1.0f);
Tensor random_tensor(std::array<int64_t, 4> shape, DType dtype, std::mt19937& rng, float sigma = 1.0f);
// Writes NaN into every element, so an element the kernel forgets to write fails the comparison.
void poison(const TensorView& t);
// ||a - b|| / ||b|| over all elements (NaN if any element is NaN); views on the host.
double relative_l2(const TensorView& a, const TensorView& b);
double max_abs_diff(const TensorView& a, const TensorView& b);
// How a (b, s, h, d) tensor is laid out in memory: row-major, heads-major ((b, h, s, d) memory, a
// transposed view), or every other element of a twice-as-wide last dim (stride[3] == 2).
enum class Layout { contiguous, heads_major, strided_dim };
const char* layout_name(Layout layout);
// Values of a host view stored as `dtype` on `device` in `layout`; `storage` owns the memory behind `view`.
// A strided_dim tensor's unused elements hold NaN, so a kernel that reads them fails its comparison.
struct Placed {
  Tensor storage;
  TensorView view;
};
Placed place(const TensorView& values, DType dtype, Device device, Layout layout = Layout::contiguous);
// A tensor of the given shape filled with NaN (see poison), placed like place().
Placed poisoned(std::array<int64_t, 4> shape, DType dtype, Device device, Layout layout = Layout::contiguous);
// fp32 host copy, contiguous (b, s, h, d), of a placed tensor on any device.
Tensor fetch(const Placed& placed);
// Rows [begin, end) of a (b, s, h, d) view, or of an LSE view (b, h, s, 1); any dtype and device (no copy).
TensorView rows(const TensorView& t, int64_t begin, int64_t end);
TensorView lse_rows(const TensorView& t, int64_t begin, int64_t end);
// Copy with kv heads repeated `group` times: (b, s, h, d) -> (b, s, h*group, d), head h*group+g = h.
Tensor expand_heads(const TensorView& t, int64_t group);

}  // namespace dattn::test
