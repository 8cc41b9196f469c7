#include "gemm.h"

#include <limits>

#include "dattn/core/error.h"
#include "device_buffer.h"

namespace dattn::model::cuda_detail {

Gemm::Gemm(cudaStream_t stream) {
  check_cublas(cublasCreate(&handle_), "cublasCreate");
  check_cublas(cublasSetStream(handle_, stream), "cublasSetStream");
}

Gemm::~Gemm() {
  if (handle_) cublasDestroy(handle_);
}

void Gemm::linear(const uint16_t* x, int64_t rows, int64_t k, const uint16_t* w, int64_t n, void* out,
                  GemmOut out_type, bool accumulate) {
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  DATTN_CHECK(rows <= kMax && k <= kMax && n <= kMax, "cuda session: GEMM of {} x {} x {} exceeds cuBLAS' int sizes",
              rows, k, n);
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  // Row-major out (rows, n) is column-major out^T (n, rows) = W (n, k) . x^T: W read transposed.
  check_cublas(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(rows), int(k), &alpha, w, CUDA_R_16BF,
                            int(k), x, CUDA_R_16BF, int(k), &beta, out,
                            out_type == GemmOut::f32 ? CUDA_R_32F : CUDA_R_16BF, int(n), CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx");
}

}  // namespace dattn::model::cuda_detail
