#include "cpu_ops.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "dattn/core/threads.h"
#include "small_batch_linear.h"

namespace dattn::model::cpu_ops {

namespace {
// Below this many rows the OpenMP fork costs more than the work.
constexpr int64_t kParallelRows = 8;
// Narrower slices of a weight matrix make BLAS repack the activations for too little work.
constexpr int64_t kMinFeaturesPerThread = 64;
}  // namespace

void rms_norm(const float* x, const float* weight, float* out, int64_t rows, int64_t dim, double eps) {
#pragma omp parallel for if (rows >= kParallelRows) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* o = out + r * dim;
    double sum = 0;
    for (int64_t i = 0; i < dim; ++i) sum += double(xr[i]) * double(xr[i]);
    // transformers: variance in fp32, then x * rsqrt(variance + eps), then weight * x
    float variance = float(sum / double(dim));
    float inv = float(1.0 / std::sqrt(double(variance) + eps));
    for (int64_t i = 0; i < dim; ++i) o[i] = weight[i] * (xr[i] * inv);
  }
}

void linear(const float* x, const Linear& layer, float* out, int64_t rows, bool accumulate, int num_threads) {
  linear(x, layer.weight.data(), layer.bias ? layer.bias->data() : nullptr, layer.out_features, layer.in_features, out,
         rows, accumulate, num_threads);
}

void linear(const float* x, const float* weight, const float* bias, int64_t n, int64_t k, float* out, int64_t rows,
            bool accumulate, int num_threads) {
  const float beta = accumulate ? 1.0f : 0.0f;
  // OpenBLAS runs single-threaded (set_blas_threads); the output features are split across our own
  // OpenMP team instead, so one thread pool serves BLAS, attention and the elementwise ops alike.
  const int threads = num_threads > 0 ? num_threads : default_num_threads();
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(threads, n / kMinFeaturesPerThread));
  parallel_for(blocks, threads, [&](int64_t block, int) {
    const int64_t first = block * n / blocks, count = (block + 1) * n / blocks - first;
    const float* w = weight + first * k;
    if (rows == 1) {
      cblas_sgemv(CblasRowMajor, CblasNoTrans, blasint(count), blasint(k), 1.0f, w, blasint(k), x, 1, beta,
                  out + first, 1);
    } else if (rows <= kSmallBatchMaxRows) {
      small_batch_linear(x, w, rows, count, k, out + first, n, accumulate);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(rows), blasint(count), blasint(k), 1.0f, x,
                  blasint(k), w, blasint(k), beta, out + first, blasint(n));
    }
  });
  if (bias) {
#pragma omp parallel for if (rows >= kParallelRows) schedule(static)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < n; ++i) out[r * n + i] += bias[i];
  }
}

void rope_tables(const float* inv_freq, int64_t half_dim, int64_t first_position, int64_t rows, float* cos,
                 float* sin) {
#pragma omp parallel for if (rows >= kParallelRows) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    // transformers multiplies fp32 positions by fp32 frequencies, then takes cos/sin of that fp32 angle
    const float position = float(first_position + r);
    for (int64_t i = 0; i < half_dim; ++i) {
      const float angle = position * inv_freq[i];
      cos[r * half_dim + i] = float(std::cos(double(angle)));
      sin[r * half_dim + i] = float(std::sin(double(angle)));
    }
  }
}

void apply_rope(float* x, const float* cos, const float* sin, int64_t rows, int64_t heads, int64_t head_dim) {
  const int64_t half = head_dim / 2;
#pragma omp parallel for if (rows >= kParallelRows) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* c = cos + r * half;
    const float* s = sin + r * half;
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + (r * heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = b * c[i] + a * s[i];
      }
    }
  }
}

void silu_mul(float* gate, const float* up, int64_t n) {
#pragma omp parallel for if (n >= 65536) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void use_single_threaded_blas() { openblas_set_num_threads(1); }

}  // namespace dattn::model::cpu_ops
