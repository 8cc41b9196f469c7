// dattn._dattn: dattn::delta_attention_lse on DLPack tensors (NumPy, PyTorch, CuPy, JAX, ...) without copies.
// The Python package (python/dattn) allocates the outputs in the caller's framework and picks the stream.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/array.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include <optional>
#include <string>

#include "dattn/attn/backends.h"
#include "dattn/core/error.h"
#include "dattn/delta/delta_attention.h"

#ifdef DATTN_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace nb = nanobind;

namespace {

using InputArray = nb::ndarray<nb::ro>;
using OutputArray = nb::ndarray<>;

dattn::DType dtype_of(const nb::dlpack::dtype& t, const char* name) {
  using Code = nb::dlpack::dtype_code;
  if (t.lanes == 1 && t.code == uint8_t(Code::Float) && t.bits == 32) return dattn::DType::f32;
  if (t.lanes == 1 && t.code == uint8_t(Code::Float) && t.bits == 16) return dattn::DType::f16;
  if (t.lanes == 1 && t.code == uint8_t(Code::Bfloat) && t.bits == 16) return dattn::DType::bf16;
  dattn::fail("{} has DLPack dtype (code {}, {} bits, {} lanes); dattn takes float32, bfloat16 or float16", name,
              t.code, t.bits, t.lanes);
}

dattn::Device device_of(int device_type, const char* name) {
  if (device_type == nb::device::cpu::value) return dattn::Device::cpu;
  if (device_type == nb::device::cuda::value) return dattn::Device::cuda;
  dattn::fail("{} is on DLPack device type {}; dattn takes cpu (1) or cuda (2) tensors", name, device_type);
}

// A (batch, seq, heads, head_dim) array as a TensorView; `ndim` 3 is the LSE (batch, heads, n_q) as {.., 1}.
template <typename Array>
dattn::TensorView view_of(const Array& a, const char* name, size_t ndim = 4) {
  DATTN_CHECK(a.ndim() == ndim, "{} must have {} dimensions{}, got {}", name, ndim,
              ndim == 4 ? " (batch, seq, heads, head_dim)" : " (batch, heads, n_q)", a.ndim());
  dattn::TensorView v;
  v.data = const_cast<void*>(static_cast<const void*>(a.data()));
  v.dtype = dtype_of(a.dtype(), name);
  v.device = device_of(a.device_type(), name);
  v.shape = {1, 1, 1, 1};
  v.stride = {0, 0, 0, 1};
  for (size_t i = 0; i < ndim; ++i) {
    v.shape[i] = int64_t(a.shape(i));
    v.stride[i] = int64_t(a.stride(i));
  }
  return v;
}

// Makes the tensors' device current for the call (CUDA tensors of a non-default device).
class DeviceScope {
 public:
  DeviceScope(int device_type, int device_id) {
#ifdef DATTN_WITH_CUDA
    if (device_type != nb::device::cuda::value) return;
    cudaGetDevice(&previous_);
    if (previous_ != device_id) {
      auto status = cudaSetDevice(device_id);
      DATTN_CHECK(status == cudaSuccess, "cannot select CUDA device {}: {}", device_id, cudaGetErrorString(status));
      changed_ = true;
    }
#endif
  }
  ~DeviceScope() {
#ifdef DATTN_WITH_CUDA
    if (changed_) cudaSetDevice(previous_);
#endif
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = 0;
  bool changed_ = false;
};

void attention_into(const InputArray& q, const InputArray& k, const InputArray& v, const OutputArray& out,
                    const std::optional<OutputArray>& lse, const std::string& mode, int64_t window, int64_t sink,
                    int64_t gamma, int64_t tail_min, double scale, const std::string& backend, uintptr_t stream,
                    int num_threads, bool skip_finite_check) {
  dattn::AttentionParams p;
  p.mode = dattn::parse_mode(mode);
  p.window = window;
  p.sink = sink;
  p.gamma = gamma;
  p.tail_min = tail_min;
  p.scale = scale;
  p.backend = dattn::parse_backend(backend);
  p.num_threads = num_threads;
  p.skip_finite_check = skip_finite_check;
  p.stream = reinterpret_cast<void*>(stream);
  dattn::TensorView qv = view_of(q, "q"), kv = view_of(k, "k"), vv = view_of(v, "v"), ov = view_of(out, "out");
  dattn::TensorView lv;  // data == nullptr: no LSE
  if (lse) lv = view_of(*lse, "lse", 3);
  DATTN_CHECK(k.device_id() == q.device_id() && v.device_id() == q.device_id() && out.device_id() == q.device_id(),
              "q, k, v and out must be on the same device (device ids {}, {}, {}, {})", q.device_id(), k.device_id(),
              v.device_id(), out.device_id());
  DeviceScope scope(q.device_type(), q.device_id());
  nb::gil_scoped_release unlocked;
  if (lse)
    dattn::delta_attention_lse(qv, kv, vv, ov, lv, p);
  else
    dattn::delta_attention(qv, kv, vv, ov, p);
}

}  // namespace

NB_MODULE(_dattn, m) {
  m.doc() = "Delta Attention operator on DLPack tensors (use the dattn package, not this module)";
  nb::exception<dattn::Error>(m, "Error", PyExc_ValueError);
  m.def("attention_into", &attention_into, nb::arg("q"), nb::arg("k"), nb::arg("v"), nb::arg("out"),
        nb::arg("lse").none(), nb::arg("mode"), nb::arg("window"), nb::arg("sink"), nb::arg("gamma"),
        nb::arg("tail_min"), nb::arg("scale"), nb::arg("backend"), nb::arg("stream"), nb::arg("num_threads"),
        nb::arg("skip_finite_check") = false,
        "Writes attention(q, k, v) into out (and the natural-log LSE into lse unless None). skip_finite_check "
        "(benchmarks: the kernels without the call's wait) lets NaN/Inf inputs through unrefused.");
  m.def("cuda_available", &dattn::cuda::available, "Built with CUDA and a device is present.");
}
