// CUDA runtime errors become dattn::Error with the failing step named. Defined in a .cpp so that the
// .cu files never compile fmt.
#pragma once
#include <cuda_runtime.h>

namespace dattn::cuda::detail {
void check_cuda(cudaError_t status, const char* what);
}  // namespace dattn::cuda::detail
