// y = x W^T through cuBLAS with bf16 inputs and fp32 accumulation, W stored (out_features, in_features)
// row-major as torch.nn.Linear keeps it.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace dattn::model::cuda_detail {

enum class GemmOut { f32, bf16 };

class Gemm {
 public:
  explicit Gemm(cudaStream_t stream);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // out (rows, n) = x (rows, k) * w (n, k)^T, or out += that with accumulate (the residual add for free).
  // x and w are bf16 bits, out is fp32 or bf16 per out_type.
  void linear(const uint16_t* x, int64_t rows, int64_t k, const uint16_t* w, int64_t n, void* out, GemmOut out_type,
              bool accumulate);

 private:
  cublasHandle_t handle_ = nullptr;
};

}  // namespace dattn::model::cuda_detail
