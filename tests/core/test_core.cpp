// dtype conversions, tensor views and the thread policy.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>

#include "dattn/core/dtype.h"
#include "dattn/core/error.h"
#include "dattn/core/tensor.h"
#include "dattn/core/threads.h"

namespace dattn {
namespace {

TEST(DType, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  // 1 + 2^-8 is exactly halfway between two bf16 values: ties go to the even one (1.0)
  EXPECT_EQ(f32_to_bf16(1.0f + 1.0f / 256), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + 3.0f / 256), 0x3f82);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isinf(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::infinity()))));
}

TEST(DType, F16RoundTripsEveryHalfValue) {
  // every finite half converts to float and back exactly (covers subnormals and both signs)
  for (uint32_t h = 0; h < 0x10000; ++h) {
    uint16_t bits = uint16_t(h);
    if ((bits & 0x7c00) == 0x7c00) continue;  // inf/nan checked below
    ASSERT_EQ(f32_to_f16(f16_to_f32(bits)), bits) << std::hex << h;
  }
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(1e6f), 0x7c00);  // overflow to inf
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::nanf("")))));
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);  // halfway: to even
  EXPECT_FLOAT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
}

TEST(Tensor, ViewsStridesAndCopies) {
  Tensor t({2, 3, 4, 5}, DType::f32);
  EXPECT_TRUE(t.view().is_contiguous());
  EXPECT_EQ(t.view().stride, (std::array<int64_t, 4>{60, 20, 5, 1}));
  for (int64_t i = 0; i < t.view().numel(); ++i) static_cast<float*>(t.data())[i] = float(i);
  TensorView tr = t.view().transposed(1, 2);
  EXPECT_FALSE(tr.is_contiguous());
  EXPECT_EQ(tr.get(1, 2, 1, 3), t.view().get(1, 1, 2, 3));
  Tensor half = Tensor::copy_of(tr, DType::bf16, Device::cpu);
  EXPECT_TRUE(half.view().is_contiguous());
  EXPECT_EQ(half.view().get(1, 2, 1, 3), t.view().get(1, 1, 2, 3));  // small integers are exact in bf16
  EXPECT_EQ(t.view().describe(), "fp32[2,3,4,5] cpu");
}

TEST(Tensor, ContiguousCopiesConvertEveryElement) {
  Tensor t({1, 7, 3, 5}, DType::f32);
  float* p = static_cast<float*>(t.data());
  for (int64_t i = 0; i < t.view().numel(); ++i) p[i] = 0.37f * float(i) - 11.0f;
  for (DType target : {DType::f32, DType::bf16, DType::f16}) {
    Tensor converted = Tensor::copy_of(t, target, Device::cpu);
    Tensor back = Tensor::copy_of(converted, DType::f32, Device::cpu);
    const float* q = static_cast<const float*>(back.data());
    // bf16 keeps 8 significant bits (relative step 2^-8), fp16 11 bits; fp32 is exact
    const float tolerance = target == DType::f32 ? 0.0f : target == DType::bf16 ? 1.0f / 256 : 1.0f / 2048;
    for (int64_t i = 0; i < t.view().numel(); ++i) ASSERT_NEAR(q[i], p[i], std::fabs(p[i]) * tolerance) << i;
  }
}

TEST(Tensor, DeviceWithoutCudaIsAClearError) {
#ifndef DATTN_TEST_HAS_CUDA
  try {
    Tensor t({1, 1, 1, 4}, DType::f32, Device::cuda);
    SUCCEED() << "built with CUDA and a device is present";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda"), std::string::npos) << e.what();
  }
#endif
}

TEST(Threads, EveryIndexRunsOnceAndErrorsPropagate) {
  std::vector<std::atomic<int>> hits(1000);
  parallel_for(1000, 2, [&](int64_t i, int) { hits[size_t(i)]++; });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  EXPECT_THROW(parallel_for(100, 2, [](int64_t i, int) {
                 if (i == 37) fail("item {}", i);
               }),
               Error);
  int serial = 0;
  parallel_for(5, 1, [&](int64_t, int tid) { serial += 1 + tid; });
  EXPECT_EQ(serial, 5);
}

}  // namespace
}  // namespace dattn
