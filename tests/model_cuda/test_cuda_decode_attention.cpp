// The decode kernel (split-KV, GQA-packed, one query row over the whole cache) against the fp64 reference
// on the same bf16 inputs: across split and chunk boundaries, GQA groups 1..8 and both head dims.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include <fmt/format.h>

#include "cuda_model_fixtures.h"
#include "dattn/delta/delta_attention.h"
#include "decode_attention.h"
#include "test_support.h"

namespace dattn::model::cuda_test {
namespace {

using cuda_detail::DecodeAttentionArgs;

// Only the bf16 rounding of the output (2^-9 relative, ~1e-3 in L2) and fp32 sums separate the kernel from
// the fp64 reference on identical inputs.
constexpr double kDecodeKernelBudget = 4e-3;

struct Case {
  int64_t n_kv;
  int heads_q, heads_kv, head_dim;
};

TEST(DecodeAttentionKernel, MatchesReference) {
  DATTN_SKIP_WITHOUT_GPU();
  std::mt19937 rng(42);
  for (const Case& c : {Case{1, 4, 4, 128}, Case{100, 8, 2, 64}, Case{512, 32, 8, 128}, Case{513, 32, 8, 128},
                        Case{3000, 8, 1, 128}, Case{1300, 28, 4, 64}, Case{777, 6, 6, 64},
                        Case{40000, 32, 8, 128}, Case{4099, 16, 2, 64}}) {
    const std::string what = fmt::format("n_kv {} h_q {} h_kv {} d {}", c.n_kv, c.heads_q, c.heads_kv, c.head_dim);
    // host fp32 tensors holding bf16-representable values, so both sides see the same inputs
    Tensor q = test::random_tensor({1, 1, c.heads_q, c.head_dim}, DType::bf16, rng);
    Tensor k = test::random_tensor({1, c.n_kv, c.heads_kv, c.head_dim}, DType::bf16, rng);
    Tensor v = test::random_tensor({1, c.n_kv, c.heads_kv, c.head_dim}, DType::bf16, rng);
    Tensor q32 = Tensor::copy_of(q, DType::f32, Device::cpu), k32 = Tensor::copy_of(k, DType::f32, Device::cpu);
    Tensor v32 = Tensor::copy_of(v, DType::f32, Device::cpu);
    Tensor expected({1, 1, c.heads_q, c.head_dim}, DType::f32);
    AttentionParams dense{.mode = AttentionMode::dense, .backend = Backend::reference};
    delta_attention(q32, k32, v32, expected, dense);

    Tensor q_dev = Tensor::copy_of(q, DType::bf16, Device::cuda), k_dev = Tensor::copy_of(k, DType::bf16, Device::cuda);
    Tensor v_dev = Tensor::copy_of(v, DType::bf16, Device::cuda);
    Tensor out_dev({1, 1, c.heads_q, c.head_dim}, DType::bf16, Device::cuda);
    Tensor partials({1, 1, 1, cuda_detail::decode_partials_floats(c.n_kv, c.heads_q, c.head_dim)}, DType::f32,
                    Device::cuda);
    DecodeAttentionArgs args{static_cast<const uint16_t*>(q_dev.data()), static_cast<const uint16_t*>(k_dev.data()),
                             static_cast<const uint16_t*>(v_dev.data()), static_cast<uint16_t*>(out_dev.data()),
                             c.n_kv, c.heads_q, c.heads_kv, c.head_dim, float(1.0 / std::sqrt(double(c.head_dim))),
                             static_cast<float*>(partials.data())};
    cuda_detail::decode_attention(args, nullptr);
    device_synchronize();
    Tensor out = Tensor::copy_of(out_dev, DType::f32, Device::cpu);
    const double err = test::relative_l2(out, expected);
    EXPECT_LE(err, kDecodeKernelBudget) << what;
  }
}

}  // namespace
}  // namespace dattn::model::cuda_test
