// CUDA runtime errors become dattn::Error with the failing step named. Defined in a .cpp so that the
// .cu files never compile fmt.
#pragma once
#include <cuda_runtime.h>

namespace dattn::cuda::detail {
void check_cuda(cudaError_t status, const char* what);
// Throws dattn::Error: the host asked for a kernel variant that is not compiled (a bug, not bad input).
[[noreturn]] void unsupported_kernel(const char* what);
// An attribute of the current device, queried once per device and attribute (the host side of every
// attention call asks).
int current_device_attribute(cudaDeviceAttr attribute, const char* what);
}  // namespace dattn::cuda::detail
