// fp32 building blocks of the CPU forward pass. Matrices are row-major; `rows` counts tokens.
#pragma once
#include <cstdint>

#include "dattn/model/model.h"

namespace dattn::model::cpu_ops {

// out[r] = x[r] * rsqrt(mean(x[r]^2) + eps) * weight, for `rows` rows of `dim` values (out may alias x).
void rms_norm(const float* x, const float* weight, float* out, int64_t rows, int64_t dim, double eps);

// out = x W^T (+ bias); with accumulate, out += x W^T (+ bias). x: (rows, in), out: (rows, out_features).
// num_threads: 0 = default_num_threads().
void linear(const float* x, const Linear& layer, float* out, int64_t rows, bool accumulate, int num_threads);
// The same with a raw weight (out_features, in_features) and an optional bias.
void linear(const float* x, const float* weight, const float* bias, int64_t out_features, int64_t in_features,
            float* out, int64_t rows, bool accumulate, int num_threads);

// Rotates each head of x (rows, heads, head_dim) in place, the rotate_half pairing of transformers
// (element i with i + head_dim/2); cos/sin: (rows, head_dim/2).
void apply_rope(float* x, const float* cos, const float* sin, int64_t rows, int64_t heads, int64_t head_dim);

// cos/sin tables for positions first_position .. first_position + rows - 1, as transformers rounds them.
void rope_tables(const float* inv_freq, int64_t half_dim, int64_t first_position, int64_t rows, float* cos,
                 float* sin);

// gate = silu(gate) * up, elementwise over n values.
void silu_mul(float* gate, const float* up, int64_t n);

// Makes OpenBLAS run in the calling thread: linear() parallelises over output features itself, and two
// thread pools spinning against each other cost far more than they gain.
void use_single_threaded_blas();

}  // namespace dattn::model::cpu_ops
