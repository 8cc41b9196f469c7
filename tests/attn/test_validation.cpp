// Every invalid argument is rejected with a dattn::Error whose message names the bad value.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "dattn/core/error.h"
#include "dattn/delta/delta_attention.h"
#include "test_support.h"

namespace dattn {
namespace {

struct Inputs {
  Tensor q{{1, 8, 4, 16}, DType::f32}, k{{1, 8, 2, 16}, DType::f32}, v{{1, 8, 2, 16}, DType::f32},
      out{{1, 8, 4, 16}, DType::f32}, lse{{1, 4, 8, 1}, DType::f32};
};

void expect_error(const std::function<void()>& call, const std::string& fragment) {
  try {
    call();
    ADD_FAILURE() << "no error; expected one mentioning '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Validation, RejectsBadParameters) {
  Inputs in;
  auto call_with = [&](AttentionParams p) { return [&in, p] { delta_attention(in.q, in.k, in.v, in.out, p); }; };
  AttentionParams p;
  p.gamma = 0;
  expect_error(call_with(p), "gamma must be >= 1, got 0");
  p = {};
  p.window = 0;
  expect_error(call_with(p), "window must be >= 1, got 0");
  p = {};
  p.sink = -3;
  expect_error(call_with(p), "sink must be >= 0, got -3");
  p = {};
  p.scale = std::numeric_limits<double>::infinity();
  expect_error(call_with(p), "scale must be finite");
  p = {};
  p.scale = std::nan("");
  expect_error(call_with(p), "scale must be finite");
  p = {};
  p.tail_min = -5;
  expect_error(call_with(p), "tail_min");
  p = {};
  p.num_threads = -1;
  expect_error(call_with(p), "num_threads");
  p = {};
  p.mode = AttentionMode(9);
  expect_error(call_with(p), "mode");
  p = {};
  p.backend = Backend::cuda;
  expect_error(call_with(p), "cuda");
  p = {};
  p.pattern = KeyPattern(7);
  expect_error(call_with(p), "unknown key pattern value 7");
  p = {};
  p.delta_variant = DeltaVariant(5);
  expect_error(call_with(p), "unknown delta variant value 5");
  p = {};
  p.pattern = KeyPattern::block_topk;
  p.block_q = 0;
  expect_error(call_with(p), "block_q must be >= 1, got 0");
  p.block_q = 64;
  p.block_k = -2;
  expect_error(call_with(p), "block_k must be >= 1, got -2");
  p.block_k = 64;
  p.topk = -1;
  expect_error(call_with(p), "topk must be >= 0, got -1");
}

TEST(Validation, NamesUnknownPatternCorrectionAndVariant) {
  expect_error([] { parse_pattern("hip"); }, "unknown key pattern 'hip'");
  expect_error([] { parse_correction("sparse"); }, "unknown correction 'sparse' (expected none, recompute or delta)");
  expect_error([] { parse_delta_variant("spline"); }, "unknown delta variant 'spline'");
  EXPECT_EQ(parse_correction("none"), AttentionMode::sparse);
  EXPECT_EQ(parse_pattern(pattern_name(KeyPattern::block_topk)), KeyPattern::block_topk);
  EXPECT_EQ(parse_delta_variant(delta_variant_name(DeltaVariant::interpolate)), DeltaVariant::interpolate);
}

TEST(Validation, RejectsBadShapes) {
  Inputs in;
  Tensor k3({1, 8, 3, 16}, DType::f32);
  expect_error([&] { delta_attention(in.q, k3, k3, in.out, {}); }, "multiple of kv heads (3)");
  Tensor k_dim({1, 8, 2, 32}, DType::f32);
  expect_error([&] { delta_attention(in.q, k_dim, k_dim, in.out, {}); }, "head_dim of k (32)");
  Tensor k_short({1, 4, 2, 16}, DType::f32);
  expect_error([&] { delta_attention(in.q, k_short, k_short, in.out, {}); }, "n_kv (4) must be at least n_q (8)");
  Tensor k_batch({2, 8, 2, 16}, DType::f32);
  expect_error([&] { delta_attention(in.q, k_batch, k_batch, in.out, {}); }, "batch of k (2)");
  expect_error([&] { delta_attention(in.q, in.k, in.out, in.out, {}); }, "must have the same shape");
  Tensor out_bad({1, 8, 4, 8}, DType::f32);
  expect_error([&] { delta_attention(in.q, in.k, in.v, out_bad, {}); }, "must have q's shape");
  Tensor lse_bad({1, 4, 7, 1}, DType::f32);
  expect_error([&] { delta_attention_lse(in.q, in.k, in.v, in.out, lse_bad, {}); }, "lse shape [1,4,7,1]");
  Tensor lse_half({1, 4, 8, 1}, DType::f16);
  expect_error([&] { delta_attention_lse(in.q, in.k, in.v, in.out, lse_half, {}); }, "lse must be fp32");
  Tensor k_half({1, 8, 2, 16}, DType::f16);
  expect_error([&] { delta_attention(in.q, k_half, k_half, in.out, {}); }, "dtypes differ (fp32, fp16, fp16)");
  TensorView null_q = in.q.view();
  null_q.data = nullptr;
  expect_error([&] { delta_attention(null_q, in.k, in.v, in.out, {}); }, "q has no data");
  TensorView empty_q = in.q.view();
  empty_q.shape[1] = 0;
  expect_error([&] { delta_attention(empty_q, in.k, in.v, in.out, {}); }, "q dimension 1 is 0");
  TensorView negative = in.k.view();
  negative.stride[1] = -4;
  expect_error([&] { delta_attention(in.q, negative, in.v, in.out, {}); }, "k stride 1 is -4");
  TensorView on_gpu = in.v.view();
  on_gpu.device = Device::cuda;
  expect_error([&] { delta_attention(in.q, in.k, on_gpu, in.out, {}); }, "different devices");
}

TEST(Validation, ParsersNameTheBadValue) {
  expect_error([] { parse_mode("fast"); }, "'fast'");
  expect_error([] { parse_backend("tpu"); }, "'tpu'");
  expect_error([] { parse_dtype("int8"); }, "'int8'");
}

}  // namespace
}  // namespace dattn
