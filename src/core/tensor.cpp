#include "dattn/core/tensor.h"

#include <cstdlib>
#include <cstring>
#include <fmt/format.h>

#include "dattn/core/error.h"
#include "device_memory.h"

namespace dattn {

std::array<int64_t, 4> contiguous_strides(const std::array<int64_t, 4>& shape) {
  return {shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1};
}

bool TensorView::is_contiguous() const { return stride == contiguous_strides(shape); }

static float load_element(const void* base, DType t, int64_t index) {
  switch (t) {
    case DType::f32: return static_cast<const float*>(base)[index];
    case DType::bf16: return bf16_to_f32(static_cast<const uint16_t*>(base)[index]);
    case DType::f16: return f16_to_f32(static_cast<const uint16_t*>(base)[index]);
  }
  return 0.0f;
}

float TensorView::get(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
  return load_element(data, dtype, offset(i0, i1, i2, i3));
}

void TensorView::set(int64_t i0, int64_t i1, int64_t i2, int64_t i3, float value) const {
  int64_t index = offset(i0, i1, i2, i3);
  switch (dtype) {
    case DType::f32: static_cast<float*>(data)[index] = value; break;
    case DType::bf16: static_cast<uint16_t*>(data)[index] = f32_to_bf16(value); break;
    case DType::f16: static_cast<uint16_t*>(data)[index] = f32_to_f16(value); break;
  }
}

TensorView TensorView::transposed(int a, int b) const {
  TensorView t = *this;
  std::swap(t.shape[a], t.shape[b]);
  std::swap(t.stride[a], t.stride[b]);
  return t;
}

std::string TensorView::describe() const {
  return fmt::format("{}[{},{},{},{}] {}", dtype_name(dtype), shape[0], shape[1], shape[2], shape[3],
                     device_name(device));
}

Tensor::Tensor(std::array<int64_t, 4> shape, DType dtype, Device device) {
  for (int64_t s : shape) DATTN_CHECK(s >= 0, "tensor dimension {} is negative", s);
  view_.shape = shape;
  view_.stride = contiguous_strides(shape);
  view_.dtype = dtype;
  view_.device = device;
  size_t bytes = nbytes();
  if (device == Device::cpu) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void* p = rounded ? std::aligned_alloc(64, rounded) : nullptr;
    DATTN_CHECK(p || rounded == 0, "cannot allocate {} bytes of host memory", bytes);
    storage_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  } else {
    void* p = detail::device_alloc(bytes);
    storage_ = std::shared_ptr<void>(p, [](void* q) { detail::device_free(q); });
  }
  view_.data = storage_.get();
}

void device_synchronize() { detail::synchronize(); }

Tensor Tensor::copy_of(const TensorView& src, DType dtype, Device device) {
  Tensor dst(src.shape, dtype, device);
  if (src.device == Device::cpu && src.is_contiguous() && src.dtype == dtype) {  // bytes as they are
    if (device == Device::cpu)
      std::memcpy(dst.data(), src.data, dst.nbytes());
    else
      detail::copy_to_device(dst.data(), src.data, dst.nbytes());
    return dst;
  }
  if (src.device == Device::cpu && device == Device::cpu) {
    if (src.is_contiguous()) {  // one flat pass, no 4-D index arithmetic
      const int64_t n = src.numel();
      if (dtype == DType::f32) {
        float* out = static_cast<float*>(dst.data());
        for (int64_t i = 0; i < n; ++i) out[i] = load_element(src.data, src.dtype, i);
      } else {
        uint16_t* out = static_cast<uint16_t*>(dst.data());
        for (int64_t i = 0; i < n; ++i) {
          float value = load_element(src.data, src.dtype, i);
          out[i] = dtype == DType::bf16 ? f32_to_bf16(value) : f32_to_f16(value);
        }
      }
      return dst;
    }
    const auto& s = src.shape;
    for (int64_t a = 0; a < s[0]; ++a)
      for (int64_t b = 0; b < s[1]; ++b)
        for (int64_t c = 0; c < s[2]; ++c)
          for (int64_t d = 0; d < s[3]; ++d) dst.view_.set(a, b, c, d, src.get(a, b, c, d));
    return dst;
  }
  // Cross-device copy: convert on the host, then copy bytes.
  Tensor host_src = src.device == Device::cpu ? Tensor() : Tensor(src.shape, src.dtype, Device::cpu);
  TensorView from = src;
  if (src.device != Device::cpu) {
    DATTN_CHECK(src.is_contiguous(), "copying a strided {} from the device is not supported", src.describe());
    detail::copy_to_host(host_src.data(), src.data, host_src.nbytes());
    from = host_src.view();
  }
  Tensor converted = copy_of(from, dtype, Device::cpu);
  if (device == Device::cpu) return converted;
  detail::copy_to_device(dst.data(), converted.data(), dst.nbytes());
  return dst;
}

}  // namespace dattn
