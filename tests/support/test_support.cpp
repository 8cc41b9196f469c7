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

const char* layout_name(Layout layout) {
  switch (layout) {
    case Layout::contiguous: return "contiguous";
    case Layout::heads_major: return "heads_major";
    case Layout::strided_dim: return "strided_dim";
  }
  return "?";
}

// The memory shape of `layout` and the (b, s, h, d) view of it.
static std::array<int64_t, 4> storage_shape(const std::array<int64_t, 4>& s, Layout layout) {
  if (layout == Layout::heads_major) return {s[0], s[2], s[1], s[3]};
  if (layout == Layout::strided_dim) return {s[0], s[1], s[2], 2 * s[3]};
  return s;
}
static TensorView logical_view(const TensorView& storage, Layout layout) {
  if (layout == Layout::heads_major) return storage.transposed(1, 2);
  TensorView view = storage;
  if (layout == Layout::strided_dim) {
    view.shape[3] /= 2;
    view.stride[3] = 2;
  }
  return view;
}

Placed place(const TensorView& values, DType dtype, Device device, Layout layout) {
  Tensor host(storage_shape(values.shape, layout), dtype);
  if (layout == Layout::strided_dim) poison(host);
  const TensorView view = logical_view(host, layout);
  const auto& s = values.shape;
  for (int64_t a = 0; a < s[0]; ++a)
    for (int64_t b = 0; b < s[1]; ++b)
      for (int64_t c = 0; c < s[2]; ++c)
        for (int64_t d = 0; d < s[3]; ++d) view.set(a, b, c, d, values.get(a, b, c, d));
  if (device == Device::cpu) return {host, view};
  Tensor storage = Tensor::copy_of(host, dtype, device);
  return {storage, logical_view(storage, layout)};
}

Placed poisoned(std::array<int64_t, 4> shape, DType dtype, Device device, Layout layout) {
  Tensor nan(shape, DType::f32);
  poison(nan);
  return place(nan, dtype, device, layout);
}

Tensor fetch(const Placed& placed) {
  const Tensor host = Tensor::copy_of(placed.storage, placed.storage.view().dtype, Device::cpu);
  // the same view over the host copy: same strides, same offset from the storage's start
  TensorView view = placed.view;
  view.data = static_cast<char*>(host.data()) +
              (static_cast<const char*>(placed.view.data) - static_cast<const char*>(placed.storage.data()));
  view.device = Device::cpu;
  return Tensor::copy_of(view, DType::f32, Device::cpu);
}

TensorView rows(const TensorView& t, int64_t begin, int64_t end) {
  TensorView v = t;
  v.data = static_cast<char*>(t.data) + begin * t.stride[1] * int64_t(dtype_size(t.dtype));
  v.shape[1] = end - begin;
  return v;
}

TensorView lse_rows(const TensorView& t, int64_t begin, int64_t end) {
  TensorView v = t;
  v.data = static_cast<char*>(t.data) + begin * t.stride[2] * int64_t(dtype_size(t.dtype));
  v.shape[2] = end - begin;
  return v;
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
