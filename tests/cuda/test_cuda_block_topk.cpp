// Block top-k, the anchor gap and the interpolate variant on the cuda backend: the device selection against
// the fp64 reference's, every mode over block top-k on every kernel path against the fp64 reference, the
// pattern's invariants, and the refusals of what the kernels do not cover.
//
// Tolerances. Selection: equal lists. The device sums block means in fp32 in the CPU kernel's order and
// scores them with an fp32 GEMM, the reference in fp64; on these random inputs no two scores at a top-k
// boundary lie within fp32 rounding of each other (the spec lets implementations differ only there), so
// any difference is a wrong candidate range, a wrong tie rule or a lost block. Outputs: the cuda backend's
// parity bounds (tests/support/backend_cases.cpp: relative L2 1e-2 on the output, 1e-3 absolute on the LSE:
// P rounded to 16 bits before P V, fp32 accumulation), since the kernels attend over exactly the reference's
// key sets. Anchor gap: relative 2e-2 on mean and max (||dense - sparse|| of bf16-rounded P V products
// against fp64; gaps here are ~0.3-1).
#include <gtest/gtest.h>

#include <functional>
#include <random>

#include "block_select.h"
#include "cuda_test_util.h"
#include "dattn/attn/key_pattern.h"

namespace dattn {
namespace {

using namespace cuda_test;

struct TopkCase {
  int64_t batch, n_q, n_kv, h_q, h_kv, d;
  int64_t window, sink, gamma, block_q, block_k, topk;
  DType dtype;
  bool heads_major;
};

std::string describe(const TopkCase& c) {
  return fmt::format("b{} nq{} nkv{} hq{} hkv{} d{} w{} s{} g{} bq{} bk{} topk{} {} {}", c.batch, c.n_q, c.n_kv, c.h_q,
                     c.h_kv, c.d, c.window, c.sink, c.gamma, c.block_q, c.block_k, c.topk, dtype_name(c.dtype),
                     c.heads_major ? "heads-major" : "seq-major");
}

AttentionParams topk_params(const TopkCase& c, AttentionMode mode) {
  AttentionParams p = with(mode, c.window, c.sink, c.gamma);
  p.pattern = KeyPattern::block_topk;
  p.block_q = c.block_q;
  p.block_k = c.block_k;
  p.topk = c.topk;
  return p;
}

struct Inputs {
  Tensor q, k, v;
  DeviceTensor dq, dk, dv;
};

Inputs make_inputs(const TopkCase& c, uint32_t seed) {
  std::mt19937 rng(seed);
  Inputs in;
  in.q = test::random_tensor({c.batch, c.n_q, c.h_q, c.d}, c.dtype, rng);
  in.k = test::random_tensor({c.batch, c.n_kv, c.h_kv, c.d}, c.dtype, rng);
  in.v = test::random_tensor({c.batch, c.n_kv, c.h_kv, c.d}, c.dtype, rng);
  in.dq = to_device(in.q, c.dtype, c.heads_major);
  in.dk = to_device(in.k, c.dtype, c.heads_major);
  in.dv = to_device(in.v, c.dtype, c.heads_major);
  return in;
}

// The three kernel paths a Hopper can take (the first is the default; elsewhere all three run the same one).
std::vector<std::pair<const char*, CudaKernelConfig>> kernel_paths() {
  CudaKernelConfig ws, one_warpgroup, cp_async;
  one_warpgroup.warp_specialized = false;
  cp_async.tma = false;
  return {{"warp-specialised", ws}, {"one warpgroup", one_warpgroup}, {"cp.async", cp_async}};
}

void expect_matches_reference(const Inputs& in, const TopkCase& c, AttentionParams p) {
  p.backend = Backend::reference;
  Tensor ref_out(in.q.view().shape, DType::f32), ref_lse({c.batch, c.h_q, c.n_q, 1}, DType::f32);
  delta_attention_lse(in.q, in.k, in.v, ref_out, ref_lse, p);
  for (const auto& [path, config] : kernel_paths()) {
    SCOPED_TRACE(path);
    p.cuda = config;
    const GpuResult gpu = run_gpu(in.dq.view, in.dk.view, in.dv.view, p, DType::bf16, c.heads_major);
    EXPECT_TRUE(all_finite(gpu.out)) << "an output element was not written (NaN poison survived)";
    EXPECT_TRUE(all_finite(gpu.lse)) << "an LSE element was not written";
    EXPECT_LT(test::relative_l2(gpu.out, ref_out), 1e-2);
    EXPECT_LT(test::max_abs_diff(gpu.lse, ref_lse), 1e-3);
  }
}

using M = AttentionMode;
constexpr DType bf = DType::bf16, hf = DType::f16;

const std::vector<TopkCase> kCases = {
    {1, 1500, 1500, 4, 2, 128, 128, 64, 64, 64, 64, 4, bf, false},    // the default block sizes, GQA 2
    {1, 1100, 1100, 2, 1, 64, 64, 0, 16, 128, 64, 3, hf, true},       // one list per 128-row tile, no sink
    {2, 700, 1300, 4, 4, 128, 100, 30, 8, 64, 128, 2, bf, false},     // continued prefill, 128-key blocks
    {1, 999, 999, 3, 1, 64, 200, 100, 1, 64, 64, 5, bf, false},       // gamma 1, odd n, GQA 3
    {1, 2000, 2000, 2, 2, 128, 256, 128, 32, 192, 192, 0, hf, false}, // topk 0: sink + window + diagonal only
};

TEST(CudaBlockTopk, DeviceSelectionEqualsTheReference) {
  DATTN_SKIP_WITHOUT_GPU();
  uint32_t seed = 1200;
  for (const TopkCase& c : kCases) {
    SCOPED_TRACE(describe(c));
    const Inputs in = make_inputs(c, seed++);
    const AttentionParams p = topk_params(c, M::sparse);
    const BlockSelection expected = select_key_blocks(in.q, in.k, p, /*fp64=*/true, 1);
    const BlockSelection got = cuda::detail::device_block_selection(in.dq.view, in.dk.view, p);
    ASSERT_EQ(got.offsets.size(), expected.offsets.size());
    for (int64_t b = 0; b < c.batch; ++b)
      for (int64_t kv = 0; kv < c.h_kv; ++kv)
        for (int64_t qb = 0; qb < expected.q_blocks; ++qb) {
          const auto want = expected.blocks(b, kv, qb), have = got.blocks(b, kv, qb);
          ASSERT_EQ(std::vector<int32_t>(have.begin(), have.end()), std::vector<int32_t>(want.begin(), want.end()))
              << "batch " << b << " kv head " << kv << " query block " << qb;
        }
  }
}

TEST(CudaBlockTopk, EveryModeOnEveryPathMatchesTheReference) {
  DATTN_SKIP_WITHOUT_GPU();
  uint32_t seed = 1300;
  for (const TopkCase& c : kCases) {
    const Inputs in = make_inputs(c, seed++);
    for (AttentionMode mode : {M::sparse, M::recompute, M::delta}) {
      SCOPED_TRACE(fmt::format("{} {}", describe(c), mode_name(mode)));
      expect_matches_reference(in, c, topk_params(c, mode));
    }
  }
}

TEST(CudaBlockTopk, TopkCoveringEveryBlockIsDense) {
  DATTN_SKIP_WITHOUT_GPU();
  const TopkCase c{1, 1000, 1000, 2, 1, 128, 64, 0, 16, 64, 64, 16, bf, false};  // 16 blocks: all of them
  const Inputs in = make_inputs(c, 7);
  const GpuResult dense = run_gpu(in.dq.view, in.dk.view, in.dv.view, with(M::dense, 1, 0, 1));
  for (const auto& [path, config] : kernel_paths()) {
    SCOPED_TRACE(path);
    AttentionParams p = topk_params(c, M::sparse);
    p.cuda = config;
    const GpuResult sparse = run_gpu(in.dq.view, in.dk.view, in.dv.view, p);
    // the same keys in the same order through other kernels: fp32 accumulation order only
    EXPECT_LT(test::max_abs_diff(sparse.out, dense.out), 2e-3);
    EXPECT_LT(test::max_abs_diff(sparse.lse, dense.lse), 1e-4);
  }
}

TEST(CudaAnchorGap, MatchesTheReferenceOnBothPatterns) {
  DATTN_SKIP_WITHOUT_GPU();
  const TopkCase c{1, 1400, 1400, 4, 2, 128, 96, 32, 32, 64, 64, 2, bf, false};
  const Inputs in = make_inputs(c, 31);
  for (KeyPattern pattern : {KeyPattern::window_sink, KeyPattern::block_topk})
    for (int64_t gamma : {int64_t(32), int64_t(48)}) {
      if (pattern == KeyPattern::block_topk && 64 % gamma != 0) continue;  // refused below
      SCOPED_TRACE(fmt::format("{} gamma {}", pattern_name(pattern), gamma));
      AttentionParams p = topk_params(c, M::delta);
      p.pattern = pattern;
      p.gamma = gamma;
      AnchorGap expected, got;
      p.anchor_gap = &expected;
      p.backend = Backend::reference;
      Tensor ref_out(in.q.view().shape, DType::f32);
      delta_attention(in.q, in.k, in.v, ref_out, p);
      for (const auto& [path, config] : kernel_paths()) {
        SCOPED_TRACE(path);
        p.cuda = config;
        p.anchor_gap = &got;
        run_gpu(in.dq.view, in.dk.view, in.dv.view, p);
        ASSERT_EQ(got.anchors, expected.anchors);
        ASSERT_EQ(got.mean.size(), expected.mean.size());
        for (size_t h = 0; h < expected.mean.size(); ++h) {
          EXPECT_NEAR(got.mean[h], expected.mean[h], 2e-2 * expected.mean[h]) << "head " << h;
          EXPECT_NEAR(got.max[h], expected.max[h], 2e-2 * expected.max[h]) << "head " << h;
        }
      }
    }
}

TEST(CudaDeltaVariants, InterpolateMatchesTheReference) {
  DATTN_SKIP_WITHOUT_GPU();
  for (int64_t gamma : {int64_t(16), int64_t(64), int64_t(100)}) {
    const TopkCase c{1, 1300, 1500, 4, 2, 128, 128, 32, gamma, 64, 64, 0, bf, false};
    SCOPED_TRACE(describe(c));
    const Inputs in = make_inputs(c, uint32_t(40 + gamma));
    AttentionParams p = with(M::delta, c.window, c.sink, c.gamma);
    p.delta_variant = DeltaVariant::interpolate;
    expect_matches_reference(in, c, p);
  }
}

TEST(CudaBlockTopk, RefusesWhatTheKernelsDoNotCover) {
  DATTN_SKIP_WITHOUT_GPU();
  const TopkCase c{1, 300, 300, 2, 1, 64, 64, 0, 16, 64, 64, 2, bf, false};
  const Inputs in = make_inputs(c, 3);
  struct Refusal {
    std::function<void(AttentionParams&)> change;
    const char* message;
  };
  const std::vector<Refusal> refusals = {
      {[](AttentionParams& p) { p.block_q = 96; }, "block_q to be a multiple of 64, got 96"},
      {[](AttentionParams& p) { p.block_k = 32; }, "block_k to be a multiple of 64, got 32"},
      {[](AttentionParams& p) { p.topk = 129; }, "at most topk = 128 blocks, got 129"},
      {[](AttentionParams& p) { p.gamma = 96; }, "gamma dividing 64, got gamma = 96"},
      {[](AttentionParams& p) { p.delta_variant = DeltaVariant::interpolate; }, "repeat only, got interpolate"},
  };
  for (const Refusal& r : refusals) {
    AttentionParams p = topk_params(c, M::delta);
    r.change(p);
    try {
      run_gpu(in.dq.view, in.dk.view, in.dv.view, p);
      ADD_FAILURE() << "accepted: " << r.message;
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr(r.message));
    }
  }
}

}  // namespace
}  // namespace dattn
