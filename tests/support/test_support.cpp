#include "test_support.h"

#include <limits>

namespace dattn::test {

void fill_normal(const TensorView& t, std::mt19937& rng, float sigma) {
  std::normal_distribution<float> normal(0.0f, sigma);
  for (int64_t a = 0; a < t.shape[0]; ++a)
    for (int64_t b = 0; b < t.shape[1]; ++b)
      for (int64_t c = 0; c < t.shape[2]; ++c)
        for (int64_t d = 0; d < t.shape[3]; ++d) t.set(a, b, c, d, normal(rng));
}

Tensor random_tensor(std::array<int64_t, 4> shape, DType dtype, std::mt19937& rng, float sigma) {
  Tensor t(shape, dtype);
  fill_normal(t, rng, sigma);
  return t;
}

void poison(const TensorView& t) {
  for (int64_t a = 0; a < t.shape[0]; ++a)
    for (int64_t b = 0; b < t.shape[1]; ++b)
      for (int64_t c = 0; c < t.shape[2]; ++c)
        for (int64_t d = 0; d < t.shape[3]; ++d) t.set(a, b, c, d, std::numeric_limits<float>::quiet_NaN());
}

template <typename F>
static void for_each_pair(const TensorView& x, const TensorView& y, F f) {
  for (int64_t a = 0; a < x.shape[0]; ++a)
    for (int64_t b = 0; b < x.shape[1]; ++b)
      for (int64_t c = 0; c < x.shape[2]; ++c)
        for (int64_t d = 0; d < x.shape[3]; ++d) f(double(x.get(a, b, c, d)), double(y.get(a, b, c, d)));
}

double relative_l2(const TensorView& a, const TensorView& b) {
  if (a.shape != b.shape) return std::numeric_limits<double>::quiet_NaN();
  double diff = 0, norm = 0;
  for_each_pair(a, b, [&](double x, double y) {
    diff += (x - y) * (x - y);
    norm += y * y;
  });
  return std::sqrt(diff / (norm > 0 ? norm : 1.0));
}

double max_abs_diff(const TensorView& a, const TensorView& b) {
  double worst = 0;
  for_each_pair(a, b, [&](double x, double y) {
    double d = std::fabs(x - y);
    if (!(d <= worst)) worst = d;  // NaN propagates
  });
  return worst;
}

HeadsMajor heads_major_copy(const TensorView& t) {
  const auto& s = t.shape;
  Tensor storage({s[0], s[2], s[1], s[3]}, t.dtype);
  TensorView view = storage.view().transposed(1, 2);  // logical (b, s, h, d) over (b, h, s, d) memory
  for (int64_t a = 0; a < s[0]; ++a)
    for (int64_t b = 0; b < s[1]; ++b)
      for (int64_t c = 0; c < s[2]; ++c)
        for (int64_t d = 0; d < s[3]; ++d) view.set(a, b, c, d, t.get(a, b, c, d));
  return {std::move(storage), view};
}

Tensor expand_heads(const TensorView& t, int64_t group) {
  const auto& s = t.shape;
  Tensor out({s[0], s[1], s[2] * group, s[3]}, t.dtype);
  for (int64_t a = 0; a < s[0]; ++a)
    for (int64_t b = 0; b < s[1]; ++b)
      for (int64_t h = 0; h < s[2] * group; ++h)
        for (int64_t d = 0; d < s[3]; ++d) out.view().set(a, b, h, d, t.get(a, b, h / group, d));
  return out;
}

}  // namespace dattn::test
