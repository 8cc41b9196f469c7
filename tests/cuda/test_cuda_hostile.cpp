// Hostile input on the cuda backend: parameters near INT64_MAX write every output element (dense rows),
// and NaN / Inf anywhere in q, k or v is refused with its index, as on the host backends.
#include <limits>

#include "cuda_test_util.h"

namespace dattn::cuda_test {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

TEST(CudaHostile, ExtremeParametersGiveDenseInEveryElement) {
  DATTN_SKIP_WITHOUT_GPU();
  std::mt19937 rng(21);
  for (DType dtype : {DType::bf16, DType::f16}) {
    const Tensor hq = test::random_tensor({1, 300, 4, 64}, DType::f32, rng),
                 hk = test::random_tensor({1, 300, 2, 64}, DType::f32, rng),
                 hv = test::random_tensor({1, 300, 2, 64}, DType::f32, rng);
    const DeviceTensor q = to_device(hq, dtype, false), k = to_device(hk, dtype, false), v = to_device(hv, dtype, false);
    const GpuResult dense = run_gpu(q.view, k.view, v.view, with(AttentionMode::dense, 2048, 1024, 64));
    for (AttentionMode mode : {AttentionMode::recompute, AttentionMode::delta, AttentionMode::sparse})
      for (int which = 0; which < 3; ++which) {
        AttentionParams p = with(mode, 16, 4, 8);
        if (which == 0) p.gamma = kMax;
        if (which == 1) p.tail_min = kMax;
        if (which == 2) p.window = kMax, p.sink = kMax;
        if (mode == AttentionMode::sparse && which < 2) continue;
        const GpuResult r = run_gpu(q.view, k.view, v.view, p);
        SCOPED_TRACE(fmt::format("{} {} case {}", dtype_name(dtype), mode_name(mode), which));
        ASSERT_TRUE(all_finite(r.out) && all_finite(r.lse));  // poisoned beforehand: every element written
        // the same kernels on the same inputs, every row dense: equal up to fp32 accumulation order
        EXPECT_LE(test::max_abs_diff(r.out, dense.out), 1e-3);
        EXPECT_LE(test::max_abs_diff(r.lse, dense.lse), 1e-3);
      }
  }
}

TEST(CudaHostile, NonFiniteInputsAreRefusedWithTheirIndex) {
  DATTN_SKIP_WITHOUT_GPU();
  std::mt19937 rng(4);
  for (DType dtype : {DType::bf16, DType::f16})
    for (float bad : {std::nanf(""), std::numeric_limits<float>::infinity()})
      for (int tensor = 0; tensor < 3; ++tensor)
        for (bool heads_major : {false, true}) {
          Tensor host[3] = {test::random_tensor({1, 200, 4, 64}, DType::f32, rng),
                            test::random_tensor({1, 200, 2, 64}, DType::f32, rng),
                            test::random_tensor({1, 200, 2, 64}, DType::f32, rng)};
          host[tensor].view().set(0, 150, 1, 9, bad);
          const DeviceTensor q = to_device(host[0], dtype, heads_major), k = to_device(host[1], dtype, heads_major),
                             v = to_device(host[2], dtype, heads_major);
          const char* names[] = {"q", "k", "v"};
          try {
            run_gpu(q.view, k.view, v.view, with(AttentionMode::delta, 16, 4, 8));
            ADD_FAILURE() << "no error for a non-finite " << names[tensor];
          } catch (const Error& e) {
            EXPECT_THAT(e.what(), ::testing::HasSubstr(fmt::format("{} holds a non-finite value", names[tensor])));
            EXPECT_THAT(e.what(), ::testing::HasSubstr("at [0, 150, 1, 9]"));
          }
        }
}

}  // namespace
}  // namespace dattn::cuda_test
