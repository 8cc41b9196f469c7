// Shared helpers for tests: random tensors, poisoning, error norms.
#pragma once
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

// Fills a host view with N(0, sigma) values rounded to the view's dtype.
void fill_normal(const TensorView& t, std::mt19937& rng, float sigma = 1.0f);
Tensor random_tensor(std::array<int64_t, 4> shape, DType dtype, std::mt19937& rng, float sigma = 1.0f);
// Writes NaN into every element, so an element the kernel forgets to write fails the comparison.
void poison(const TensorView& t);
// ||a - b|| / ||b|| over all elements (NaN if any element is NaN); views on the host.
double relative_l2(const TensorView& a, const TensorView& b);
double max_abs_diff(const TensorView& a, const TensorView& b);
// Copy of a (b, s, h, d) tensor stored heads-major, i.e. a strided (non-contiguous) view of the same values.
struct HeadsMajor {
  Tensor storage;
  TensorView view;
};
HeadsMajor heads_major_copy(const TensorView& t);
// Copy with kv heads repeated `group` times: (b, s, h, d) -> (b, s, h*group, d), head h*group+g = h.
Tensor expand_heads(const TensorView& t, int64_t group);

}  // namespace dattn::test
