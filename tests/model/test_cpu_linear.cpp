// cpu_ops::linear against an fp64 reference on every path it takes: sgemv (1 row), small_batch_linear
// (2 .. kSmallBatchMaxRows rows: 4-row and 2-weight-row blocks, their remainders, an odd feature count,
// in_features that leave a scalar tail after the 8-wide loop) and sgemm (more rows), with and without
// accumulate and bias, on 1 and 3 threads. Tolerance: the fp32 dot-product bound |err| <= k u sum|x w|
// (u = 2^-24), plus the same for the accumulated value.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "cpu_ops.h"
#include "small_batch_linear.h"

namespace dattn::model {
namespace {

TEST(CpuLinear, EveryPathMatchesAnFp64ReferenceWithinTheDotProductBound) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  const double u = std::ldexp(1.0, -24);
  for (int64_t k : {5, 8, 37, 64, 200}) {
    for (int64_t features : {1, 2, 7, 64, 131}) {
      std::vector<float> w(static_cast<size_t>(features * k)), bias(static_cast<size_t>(features));
      for (float& v : w) v = normal(rng);
      for (float& v : bias) v = normal(rng);
      for (int64_t rows : {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 20}) {
        std::vector<float> x(size_t(rows * k)), start(size_t(rows * features));
        for (float& v : x) v = normal(rng);
        for (float& v : start) v = normal(rng);
        for (bool accumulate : {false, true}) {
          for (bool with_bias : {false, true}) {
            for (int threads : {1, 3}) {
              // without accumulate the output must not be read: NaN there would leak into the result
              std::vector<float> out = accumulate ? start : std::vector<float>(start.size(), std::nanf(""));
              cpu_ops::linear(x.data(), w.data(), with_bias ? bias.data() : nullptr, features, k, out.data(), rows,
                              accumulate, threads);
              for (int64_t r = 0; r < rows; ++r) {
                for (int64_t j = 0; j < features; ++j) {
                  double exact = 0, magnitude = 0;
                  for (int64_t i = 0; i < k; ++i) {
                    const double p = double(x[size_t(r * k + i)]) * double(w[size_t(j * k + i)]);
                    exact += p;
                    magnitude += std::abs(p);
                  }
                  const double before = accumulate ? double(start[size_t(r * features + j)]) : 0.0;
                  const double b = with_bias ? double(bias[size_t(j)]) : 0.0;
                  const double expected = exact + before + b;
                  const double bound =
                      double(k + 2) * u * (magnitude + std::abs(before) + std::abs(b)) + 1e-30;
                  ASSERT_NEAR(out[size_t(r * features + j)], expected, bound)
                      << "k " << k << ", features " << features << ", rows " << rows << ", row " << r << ", feature "
                      << j << ", accumulate " << accumulate << ", bias " << with_bias << ", threads " << threads;
                }
              }
            }
          }
        }
      }
    }
  }
}

TEST(CpuLinear, SmallBatchKernelWritesOnlyItsOwnOutputs) {
  // a block of features inside a wider output (out_stride > features): the columns around it stay as they were
  const int64_t rows = 5, features = 3, k = 19, stride = 8, offset = 2;
  std::vector<float> x(size_t(rows * k), 1.0f), w(size_t(features * k), 0.5f);
  std::vector<float> out(size_t(rows * stride), -7.0f);
  cpu_ops::small_batch_linear(x.data(), w.data(), rows, features, k, out.data() + offset, stride, false);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < stride; ++c) {
      const bool mine = c >= offset && c < offset + features;
      EXPECT_EQ(out[size_t(r * stride + c)], mine ? 9.5f : -7.0f) << "row " << r << ", column " << c;
    }
}

}  // namespace
}  // namespace dattn::model
