#include "tensor_io.h"

#include <cstring>

#include "dattn/core/error.h"
#include "dattn/io/npy.h"

namespace dattn::cli {

Tensor load_attention_npy(const std::filesystem::path& path, const char* role, DType dtype) {
  npy::Reader reader(path);
  const npy::Header& h = reader.header();
  DATTN_CHECK(h.shape.size() == 4, "--{} '{}': expected 4 dimensions (batch, seq, heads, head_dim), got {}", role,
              path.string(), h.shape.size());
  DATTN_CHECK(h.type == npy::ElementType::f32 || h.type == npy::ElementType::f16,
              "--{} '{}': expected float32 or float16, got '{}'", role, path.string(), npy::element_type_name(h.type));
  std::array<int64_t, 4> shape{h.shape[0], h.shape[1], h.shape[2], h.shape[3]};
  for (int64_t s : shape) DATTN_CHECK(s > 0, "--{} '{}': every dimension must be positive", role, path.string());
  // the payload goes straight into a tensor of the file's dtype: converted only when `dtype` differs
  Tensor file_tensor(shape, h.type == npy::ElementType::f32 ? DType::f32 : DType::f16, Device::cpu);
  reader.read_payload(file_tensor.data());
  return file_tensor.view().dtype == dtype ? file_tensor : Tensor::copy_of(file_tensor, dtype, Device::cpu);
}

void stage_f32_npy(OutputFiles& files, const std::filesystem::path& path, const TensorView& t, int shape_dims) {
  Tensor host = Tensor::copy_of(t, DType::f32, Device::cpu);
  std::vector<int64_t> shape(t.shape.begin(), t.shape.begin() + shape_dims);
  files.stage(path, {npy::file_header(npy::ElementType::f32, shape),
                     npy::byte_view(host.data(), size_t(host.view().numel()) * sizeof(float))});
}

}  // namespace dattn::cli
