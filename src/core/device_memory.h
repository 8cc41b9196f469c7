// Device memory hooks for core::Tensor; implemented with the CUDA runtime when DATTN_CUDA is on,
// otherwise they throw. Private header: keeps CUDA out of the public API.
#pragma once
#include <cstddef>

namespace dattn::detail {
void* device_alloc(size_t bytes);
void device_free(void* p);
void copy_to_host(void* dst, const void* src, size_t bytes);
void copy_to_device(void* dst, const void* src, size_t bytes);
void synchronize();
}  // namespace dattn::detail
