// Moving attention tensors between .npy files and dattn tensors (CLI helpers).
#pragma once
#include <filesystem>

#include "dattn/core/output_files.h"
#include "dattn/core/tensor.h"

namespace dattn::cli {

// Loads a (batch, seq, heads, head_dim) float32/float16 .npy into a host tensor of `dtype`.
Tensor load_attention_npy(const std::filesystem::path& path, const char* role, DType dtype);
// Stages a 4-D tensor as a float32 .npy output with `shape_dims` leading dims (4 for outputs, 3 for LSE).
void stage_f32_npy(OutputFiles& files, const std::filesystem::path& path, const TensorView& t, int shape_dims);

}  // namespace dattn::cli
