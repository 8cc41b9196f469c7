// Non-owning 4-D tensor views with element strides, and an owning host/device buffer.
//
// Attention tensors are (batch, seq, heads, head_dim) as in FlashAttention's flash_attn_func; any
// strides are accepted, so a (batch, heads, seq, dim) tensor is passed as a permuted view.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "dattn/core/dtype.h"

namespace dattn {

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::f32;
  Device device = Device::cpu;
  std::array<int64_t, 4> shape{0, 0, 0, 0};
  std::array<int64_t, 4> stride{0, 0, 0, 0};  // in elements

  int64_t numel() const { return shape[0] * shape[1] * shape[2] * shape[3]; }
  bool is_contiguous() const;
  int64_t offset(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
    return i0 * stride[0] + i1 * stride[1] + i2 * stride[2] + i3 * stride[3];
  }
  // Reads one element as fp32 (host memory only).
  float get(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const;
  void set(int64_t i0, int64_t i1, int64_t i2, int64_t i3, float value) const;
  // The view with dims a and b exchanged (no copy).
  TensorView transposed(int a, int b) const;
  std::string describe() const;  // "bf16[1,4096,32,128] cpu"
};

// Row-major strides for a shape.
std::array<int64_t, 4> contiguous_strides(const std::array<int64_t, 4>& shape);

// Owning, aligned buffer on the host or (when built with CUDA) on the device.
class Tensor {
 public:
  Tensor() = default;
  Tensor(std::array<int64_t, 4> shape, DType dtype, Device device = Device::cpu);
  const TensorView& view() const { return view_; }
  operator const TensorView&() const { return view_; }
  void* data() const { return view_.data; }
  size_t nbytes() const { return size_t(view_.numel()) * dtype_size(view_.dtype); }
  // Copies between devices/dtypes of the same shape (contiguous destination).
  static Tensor copy_of(const TensorView& src, DType dtype, Device device);

 private:
  std::shared_ptr<void> storage_;
  TensorView view_;
};

// Waits for all queued device work (no-op without CUDA); for timing and before reading results.
void device_synchronize();

}  // namespace dattn
