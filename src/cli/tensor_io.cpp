#include "tensor_io.h"

#include <cstring>

#include "dattn/core/error.h"
#include "dattn/io/npy.h"

namespace dattn::cli {

Tensor load_attention_npy(const std::filesystem::path& path, const char* role, DType dtype) {
  npy::Array a = npy::load(path);
  DATTN_CHECK(a.shape.size() == 4, "--{} '{}': expected 4 dimensions (batch, seq, heads, head_dim), got {}", role,
              path.string(), a.shape.size());
  DATTN_CHECK(a.type == npy::ElementType::f32 || a.type == npy::ElementType::f16,
              "--{} '{}': expected float32 or float16, got '{}'", role, path.string(), npy::element_type_name(a.type));
  std::array<int64_t, 4> shape{a.shape[0], a.shape[1], a.shape[2], a.shape[3]};
  for (int64_t s : shape) DATTN_CHECK(s > 0, "--{} '{}': every dimension must be positive", role, path.string());
  TensorView file_view;
  file_view.data = a.bytes.data();
  file_view.dtype = a.type == npy::ElementType::f32 ? DType::f32 : DType::f16;
  file_view.shape = shape;
  file_view.stride = contiguous_strides(shape);
  return Tensor::copy_of(file_view, dtype, Device::cpu);
}

void stage_f32_npy(OutputFiles& files, const std::filesystem::path& path, const TensorView& t, int shape_dims) {
  Tensor host = Tensor::copy_of(t, DType::f32, Device::cpu);
  std::vector<int64_t> shape(t.shape.begin(), t.shape.begin() + shape_dims);
  files.stage(path, {npy::file_header(npy::ElementType::f32, shape),
                     npy::byte_view(host.data(), size_t(host.view().numel()) * sizeof(float))});
}

}  // namespace dattn::cli
