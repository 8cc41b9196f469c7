// The spec's invariants of the block top-k key pattern, of the delta variants and of the anchor gap, on
// every CPU backend. Tolerances as in test_invariants.cpp: 1e-6 relative L2 for the fp64 reference (fp32
// output rounding), 1e-5 for the fp32 CPU kernel (reordered sums).
#include <gtest/gtest.h>

#include <set>

#include "dattn/attn/key_pattern.h"
#include "dattn/delta/delta_attention.h"
#include "test_support.h"

namespace dattn {
namespace {

using test::with;

AttentionParams topk_params(AttentionMode mode, int64_t window, int64_t sink, int64_t gamma, int64_t block_q,
                            int64_t block_k, int64_t topk) {
  AttentionParams p = with(mode, window, sink, gamma);
  p.pattern = KeyPattern::block_topk;
  p.block_q = block_q;
  p.block_k = block_k;
  p.topk = topk;
  return p;
}

struct Result {
  Tensor out, lse;
};

class BlockTopk : public ::testing::TestWithParam<Backend> {
 protected:
  double tolerance() const { return GetParam() == Backend::reference ? 1e-6 : 1e-5; }
  bool fp64() const { return GetParam() == Backend::reference; }

  void make_inputs(int64_t n, int64_t h_q, int64_t h_kv, uint32_t seed, int64_t n_kv = 0) {
    std::mt19937 rng(seed);
    q_ = test::random_tensor({1, n, h_q, 32}, DType::f32, rng);
    k_ = test::random_tensor({1, n_kv > 0 ? n_kv : n, h_kv, 32}, DType::f32, rng);
    v_ = test::random_tensor({1, n_kv > 0 ? n_kv : n, h_kv, 32}, DType::f32, rng);
  }
  Result run(const TensorView& q, const TensorView& k, const TensorView& v, AttentionParams p) {
    p.backend = GetParam();
    Result r{Tensor(q.shape, DType::f32), Tensor({q.shape[0], q.shape[2], q.shape[1], 1}, DType::f32)};
    test::poison(r.out);
    test::poison(r.lse);
    delta_attention_lse(q, k, v, r.out, r.lse, p);
    return r;
  }
  Result run(AttentionParams p) { return run(q_, k_, v_, p); }
  static TensorView rows(const TensorView& t, int64_t begin, int64_t end) {
    TensorView v = t;
    v.data = static_cast<float*>(t.data) + begin * t.stride[1];
    v.shape[1] = end - begin;
    return v;
  }

  Tensor q_, k_, v_;
};

TEST_P(BlockTopk, TopkCoveringEveryBlockIsDense) {
  make_inputs(300, 4, 2, 1);
  Result dense = run(with(AttentionMode::dense, 1, 0, 1));
  for (int64_t block_k : {1, 16, 64}) {
    Result sparse = run(topk_params(AttentionMode::sparse, 1, 0, 1, 32, block_k, 1000));
    EXPECT_LT(test::relative_l2(sparse.out, dense.out), tolerance()) << block_k;
    EXPECT_LT(test::relative_l2(sparse.lse, dense.lse), tolerance()) << block_k;
  }
}

// k = 0 keeps exactly the blocks holding a sink key, the blocks the window of any row of the query block
// reaches, and the diagonal blocks; with 1x1 blocks that is exactly window + sink.
TEST_P(BlockTopk, TopkZeroKeepsSinkWindowAndDiagonalBlocks) {
  const int64_t n_q = 200, n_kv = 260, bq = 24, bk = 16, window = 40, sink = 20;
  make_inputs(n_q, 2, 1, 2, n_kv);
  const AttentionParams p = topk_params(AttentionMode::sparse, window, sink, 1, bq, bk, 0);
  const BlockSelection sel = select_key_blocks(q_, k_, p, fp64(), 2);
  for (int64_t qb = 0; qb < sel.q_blocks; ++qb) {
    const int64_t first = n_kv - n_q + qb * bq, last = n_kv - n_q + std::min(n_q, (qb + 1) * bq) - 1;
    std::set<int32_t> expected;
    for (int64_t j = 0; j <= last; ++j)
      if (j < sink || j > first - window) expected.insert(int32_t(j / bk));  // sink key, or in some row's window
    const auto got = sel.blocks(0, 0, qb);
    EXPECT_EQ(std::set<int32_t>(got.begin(), got.end()), expected) << "query block " << qb;
    EXPECT_EQ(got.size(), expected.size()) << "no duplicates";
  }
  Result one_by_one = run(topk_params(AttentionMode::sparse, window, sink, 1, 1, 1, 0));
  Result window_sink = run(with(AttentionMode::sparse, window, sink, 1));
  EXPECT_LT(test::relative_l2(one_by_one.out, window_sink.out), tolerance());
  EXPECT_LT(test::relative_l2(one_by_one.lse, window_sink.lse), tolerance());
}

TEST_P(BlockTopk, SelectionKeepsTopkHighestScoringBlocks) {
  make_inputs(256, 2, 1, 3);
  const AttentionParams p = topk_params(AttentionMode::sparse, 16, 0, 1, 64, 16, 3);
  const BlockSelection sel = select_key_blocks(q_, k_, p, fp64(), 2);
  // the last query block (rows 192..255) has window blocks 11..15 and 11 other candidates: 3 more are kept
  EXPECT_EQ(sel.blocks(0, 0, 3).size(), 5u + 3u);
  // raising one key block's keys along the block's mean query makes it selected
  const auto before = sel.blocks(0, 0, 3);
  int32_t unselected = 0;
  while (std::find(before.begin(), before.end(), unselected) != before.end()) ++unselected;
  for (int64_t j = unselected * 16; j < (unselected + 1) * 16; ++j)
    for (int64_t c = 0; c < 32; ++c) {
      float mean_q = 0;
      for (int64_t r = 192; r < 256; ++r) mean_q += (q_.view().get(0, r, 0, c) + q_.view().get(0, r, 1, c)) / 128;
      k_.view().set(0, j, 0, c, 100 * mean_q);
    }
  const BlockSelection reselected = select_key_blocks(q_, k_, p, fp64(), 2);  // blocks() views into it
  const auto after = reselected.blocks(0, 0, 3);
  EXPECT_NE(std::find(after.begin(), after.end(), unselected), after.end());
}

// All query heads of a kv head share its selection (spec), so expanding K/V keeps the result exactly when
// the group's query heads agree; here the query heads of a group are copies of one another.
TEST_P(BlockTopk, GroupedQueryAttentionEqualsExpandedHeads) {
  const int64_t group = 4;
  make_inputs(260, 2 * group, 2, 4);
  for (int64_t row = 0; row < 260; ++row)
    for (int64_t h = 0; h < 2 * group; ++h)
      for (int64_t c = 0; c < 32; ++c) q_.view().set(0, row, h, c, q_.view().get(0, row, h / group * group, c));
  Tensor k_expanded = test::expand_heads(k_, group), v_expanded = test::expand_heads(v_, group);
  for (AttentionMode mode : {AttentionMode::sparse, AttentionMode::delta}) {
    const AttentionParams p = topk_params(mode, 16, 8, 16, 32, 16, 2);
    Result grouped = run(p), expanded = run(q_, k_expanded, v_expanded, p);
    EXPECT_LT(test::relative_l2(grouped.out, expanded.out), tolerance());
    EXPECT_LT(test::relative_l2(grouped.lse, expanded.lse), tolerance());
  }
}

// Delta and recompute over block top-k: anchors and tail equal dense, in both delta variants.
TEST_P(BlockTopk, CorrectionsMatchDenseAtAnchorsAndTail) {
  make_inputs(517, 4, 2, 5);
  const int64_t gamma = 16;
  Result dense = run(with(AttentionMode::dense, 1, 0, 1));
  const AttentionParams base = topk_params(AttentionMode::delta, 16, 8, gamma, 48, 16, 2);
  const RowPlan plan = make_row_plan(517, base);
  Result sparse = run([&] { AttentionParams p = base; p.mode = AttentionMode::sparse; return p; }());
  EXPECT_GT(test::relative_l2(sparse.out, dense.out), 1e-2) << "sparse differs from dense: checks are not vacuous";
  for (AttentionMode mode : {AttentionMode::recompute, AttentionMode::delta})
    for (DeltaVariant variant : {DeltaVariant::repeat, DeltaVariant::interpolate}) {
      AttentionParams p = base;
      p.mode = mode;
      p.delta_variant = variant;
      Result r = run(p);
      for (int64_t a = 0; a < plan.num_anchors(); ++a)
        EXPECT_LT(test::relative_l2(rows(r.out, a * gamma, a * gamma + 1), rows(dense.out, a * gamma, a * gamma + 1)),
                  tolerance()) << mode_name(mode) << " " << delta_variant_name(variant) << " anchor " << a;
      EXPECT_LT(test::relative_l2(rows(r.out, plan.sparse_rows, 517), rows(dense.out, plan.sparse_rows, 517)),
                tolerance());
    }
}

TEST_P(BlockTopk, DeltaWithGammaOneIsDenseInBothVariants) {
  make_inputs(300, 4, 2, 6);
  Result dense = run(with(AttentionMode::dense, 1, 0, 1));
  for (KeyPattern pattern : {KeyPattern::window_sink, KeyPattern::block_topk})
    for (DeltaVariant variant : {DeltaVariant::repeat, DeltaVariant::interpolate}) {
      AttentionParams p = topk_params(AttentionMode::delta, 16, 4, 1, 32, 16, 2);
      p.pattern = pattern;
      p.delta_variant = variant;
      EXPECT_LT(test::relative_l2(run(p).out, dense.out), tolerance());
    }
}

// Interpolate: row a_j + t*gamma gets sparse + (1 - t) Δ_j + t Δ_{j+1}; the last block repeats Δ_j.
TEST_P(BlockTopk, InterpolateBlendsConsecutiveAnchorDeltas) {
  make_inputs(400, 2, 1, 7);
  AttentionParams p = with(AttentionMode::delta, 24, 4, 32);
  p.delta_variant = DeltaVariant::interpolate;
  const RowPlan plan = make_row_plan(400, p);
  Result dense = run(with(AttentionMode::dense, 1, 0, 1)), sparse = run(with(AttentionMode::sparse, 24, 4, 32));
  Result interpolated = run(p);
  Tensor expected(q_.view().shape, DType::f32);
  const TensorView d = dense.out.view(), s = sparse.out.view();
  for (int64_t row = 0; row < 400; ++row)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t c = 0; c < 32; ++c) {
        float value = d.get(0, row, h, c);
        if (!plan.is_tail(row)) {
          const int64_t j = row / 32, a = j * 32, next = j + 1 < plan.num_anchors() ? a + 32 : a;
          const float t = float(row - a) / 32.0f;
          value = s.get(0, row, h, c) + (1 - t) * (d.get(0, a, h, c) - s.get(0, a, h, c)) +
                  t * (d.get(0, next, h, c) - s.get(0, next, h, c));
        }
        expected.view().set(0, row, h, c, value);
      }
  EXPECT_LT(test::relative_l2(interpolated.out, expected), tolerance());
  Result repeated = run(with(AttentionMode::delta, 24, 4, 32));
  EXPECT_GT(test::relative_l2(interpolated.out, repeated.out), 1e-3) << "the variants differ";
}

// The anchor gap is ||dense(a) - sparse(a)|| / ||dense(a)|| averaged and maximised over anchors; zero when the
// pattern sees every key.
TEST_P(BlockTopk, AnchorGapMeasuresTheCorrection) {
  make_inputs(300, 2, 1, 8);
  AnchorGap gap;
  AttentionParams p = topk_params(AttentionMode::delta, 16, 4, 32, 32, 16, 1);
  p.anchor_gap = &gap;
  run(p);
  const RowPlan plan = make_row_plan(300, p);
  ASSERT_EQ(gap.anchors, plan.num_anchors());
  ASSERT_EQ(gap.mean.size(), 2u);
  Result dense = run(with(AttentionMode::dense, 1, 0, 1));
  AttentionParams sparse_params = p;
  sparse_params.mode = AttentionMode::sparse;
  sparse_params.anchor_gap = nullptr;
  Result sparse = run(sparse_params);
  for (int64_t h = 0; h < 2; ++h) {
    double sum = 0, high = 0;
    for (int64_t a = 0; a < plan.num_anchors(); ++a) {
      double diff = 0, norm = 0;
      for (int64_t c = 0; c < 32; ++c) {
        const double dv = dense.out.view().get(0, a * 32, h, c), sv = sparse.out.view().get(0, a * 32, h, c);
        diff += (dv - sv) * (dv - sv);
        norm += dv * dv;
      }
      sum += std::sqrt(diff / norm);
      high = std::max(high, std::sqrt(diff / norm));
    }
    EXPECT_NEAR(gap.mean[size_t(h)], sum / double(plan.num_anchors()), 1e-4);  // fp32 outputs: ~1e-6 per entry
    EXPECT_NEAR(gap.max[size_t(h)], high, 1e-4);
    EXPECT_GT(gap.mean[size_t(h)], 1e-2);
  }
  p.topk = 1000;  // every block: sparse == dense, no gap
  run(p);
  for (float g : gap.max) EXPECT_LT(g, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Backends, BlockTopk, ::testing::Values(Backend::reference, Backend::cpu),
                         [](const auto& info) { return std::string(backend_name(info.param)); });

}  // namespace
}  // namespace dattn
