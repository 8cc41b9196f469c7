// Moving attention tensors between .npy files and dattn tensors (CLI helpers).
#pragma once
#include <filesystem>

#include "dattn/core/tensor.h"

namespace dattn::cli {

// Loads a (batch, seq, heads, head_dim) float32/float16 .npy into a host tensor of `dtype`.
Tensor load_attention_npy(const std::filesystem::path& path, const char* role, DType dtype);
// Writes a 4-D host tensor as float32 .npy with `shape_dims` leading dims (4 for outputs, 3 for LSE).
void save_f32_npy(const std::filesystem::path& path, const TensorView& t, int shape_dims);

}  // namespace dattn::cli
