// The spec's invariants ("Invariants that tests must pin"), checked on every CPU backend.
// Tolerances: the reference accumulates in fp64, so identities hold to ~1e-12 before the fp32 store;
// we allow 1e-6 relative L2 (fp32 output rounding, ~6e-8 per element). The fp32 CPU kernel reorders
// sums (online softmax, blocked dot products): identities hold to ~1e-6, so 1e-5 for it.
#include <gtest/gtest.h>

#include "dattn/delta/delta_attention.h"
#include "test_support.h"

namespace dattn {
namespace {

using test::with;

struct Case {
  int64_t batch = 1, n_q = 300, n_kv = 300, h_q = 4, h_kv = 2, d = 32;
};

struct Result {
  Tensor out, lse;
};

class Invariants : public ::testing::TestWithParam<Backend> {
 protected:
  double tolerance() const { return GetParam() == Backend::reference ? 1e-6 : 1e-5; }

  void make_inputs(const Case& c, uint32_t seed) {
    std::mt19937 rng(seed);
    q_ = test::random_tensor({c.batch, c.n_q, c.h_q, c.d}, DType::f32, rng);
    k_ = test::random_tensor({c.batch, c.n_kv, c.h_kv, c.d}, DType::f32, rng);
    v_ = test::random_tensor({c.batch, c.n_kv, c.h_kv, c.d}, DType::f32, rng);
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

  // Rows [row_begin, row_end) of an output as a view.
  static TensorView rows(const TensorView& t, int64_t row_begin, int64_t row_end) {
    TensorView v = t;
    v.data = static_cast<float*>(t.data) + row_begin * t.stride[1];
    v.shape[1] = row_end - row_begin;
    return v;
  }
  static TensorView lse_rows(const TensorView& t, int64_t row_begin, int64_t row_end) {
    TensorView v = t;
    v.data = static_cast<float*>(t.data) + row_begin * t.stride[2];
    v.shape[2] = row_end - row_begin;
    return v;
  }

  Tensor q_, k_, v_;
};

TEST_P(Invariants, SparseWithWindowCoveringEverythingIsDense) {
  make_inputs({}, 1);
  Result dense = run(with(AttentionMode::dense, 1, 0, 1));
  Result sparse = run(with(AttentionMode::sparse, 300, 0, 1));
  EXPECT_LT(test::relative_l2(sparse.out, dense.out), tolerance());
  EXPECT_LT(test::relative_l2(sparse.lse, dense.lse), tolerance());
  Result sparse_sink = run(with(AttentionMode::sparse, 1000, 64, 1));  // sink keys inside the window count once
  EXPECT_LT(test::relative_l2(sparse_sink.out, dense.out), tolerance());
  EXPECT_LT(test::relative_l2(sparse_sink.lse, dense.lse), tolerance());
}

TEST_P(Invariants, DeltaWithGammaOneIsDense) {
  make_inputs({}, 2);
  Result dense = run(with(AttentionMode::dense, 1, 0, 1));
  Result delta = run(with(AttentionMode::delta, 16, 4, 1));
  EXPECT_LT(test::relative_l2(delta.out, dense.out), tolerance());
}

TEST_P(Invariants, DeltaRecomputeAndDenseAgreeOnAnchorsAndTail) {
  Case c;
  c.n_q = c.n_kv = 517;  // not a multiple of gamma
  make_inputs(c, 3);
  AttentionParams p = with(AttentionMode::delta, 32, 8, 16);
  RowPlan plan = make_row_plan(c.n_q, p);
  ASSERT_GT(plan.num_anchors(), 10);
  Result dense = run(with(AttentionMode::dense, 32, 8, 16));
  Result delta = run(p);
  Result recompute = run(with(AttentionMode::recompute, 32, 8, 16));
  for (int64_t a = 0; a < plan.num_anchors(); ++a) {
    int64_t row = a * plan.gamma;
    EXPECT_LT(test::relative_l2(rows(delta.out, row, row + 1), rows(dense.out, row, row + 1)), tolerance()) << row;
    EXPECT_LT(test::relative_l2(rows(recompute.out, row, row + 1), rows(dense.out, row, row + 1)), tolerance());
    EXPECT_LT(test::relative_l2(lse_rows(recompute.lse, row, row + 1), lse_rows(dense.lse, row, row + 1)),
              tolerance());
  }
  TensorView tail_delta = rows(delta.out, plan.sparse_rows, c.n_q), tail_dense = rows(dense.out, plan.sparse_rows, c.n_q);
  EXPECT_LT(test::relative_l2(tail_delta, tail_dense), tolerance());
  EXPECT_LT(test::relative_l2(rows(recompute.out, plan.sparse_rows, c.n_q), tail_dense), tolerance());
  EXPECT_LT(test::relative_l2(lse_rows(delta.lse, plan.sparse_rows, c.n_q), lse_rows(dense.lse, plan.sparse_rows, c.n_q)),
            tolerance());
}

TEST_P(Invariants, DeltaRowsAreSparsePlusTheAnchorDelta) {
  Case c;
  c.n_q = c.n_kv = 400;
  make_inputs(c, 4);
  AttentionParams p = with(AttentionMode::delta, 24, 4, 32);
  RowPlan plan = make_row_plan(c.n_q, p);
  Result dense = run(with(AttentionMode::dense, 24, 4, 32));
  Result sparse = run(with(AttentionMode::sparse, 24, 4, 32));
  Result delta = run(p);
  // LSE of a corrected row is its sparse LSE.
  EXPECT_LT(test::relative_l2(lse_rows(delta.lse, 0, plan.sparse_rows), lse_rows(sparse.lse, 0, plan.sparse_rows)),
            tolerance());
  Tensor expected(q_.view().shape, DType::f32);
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t row = 0; row < c.n_q; ++row)
      for (int64_t h = 0; h < c.h_q; ++h)
        for (int64_t e = 0; e < c.d; ++e) {
          float value;
          if (plan.is_tail(row)) {
            value = dense.out.view().get(b, row, h, e);
          } else {
            int64_t a = plan.anchor_of(row);
            value = sparse.out.view().get(b, row, h, e) + dense.out.view().get(b, a, h, e) -
                    sparse.out.view().get(b, a, h, e);
          }
          expected.view().set(b, row, h, e, value);
        }
  EXPECT_LT(test::relative_l2(delta.out, expected), tolerance());
  // And sparse really differs from dense here, so the checks above are not vacuous.
  EXPECT_GT(test::relative_l2(sparse.out, dense.out), 1e-2);
  EXPECT_GT(test::relative_l2(delta.out, sparse.out), 1e-2);
}

TEST_P(Invariants, GroupedQueryAttentionEqualsExpandedHeads) {
  for (int64_t group : {2, 4, 8}) {
    Case c;
    c.batch = 2;
    c.n_q = c.n_kv = 150;
    c.h_kv = 2;
    c.h_q = 2 * group;
    make_inputs(c, 5 + uint32_t(group));
    Tensor k_expanded = test::expand_heads(k_, group), v_expanded = test::expand_heads(v_, group);
    for (AttentionMode mode : {AttentionMode::dense, AttentionMode::sparse, AttentionMode::delta}) {
      AttentionParams p = with(mode, 20, 3, 8);
      Result grouped = run(p);
      Result expanded = run(q_, k_expanded, v_expanded, p);
      EXPECT_LT(test::relative_l2(grouped.out, expanded.out), tolerance()) << "group " << group;
      EXPECT_LT(test::relative_l2(grouped.lse, expanded.lse), tolerance()) << "group " << group;
    }
  }
}

TEST_P(Invariants, ContinuedPrefillGivesTheSameDenseRows) {
  Case c;
  c.n_q = c.n_kv = 333;
  make_inputs(c, 9);
  Result whole = run(with(AttentionMode::dense, 1, 0, 1));
  int64_t offset = 0;
  for (int64_t chunk : {100, 1, 150, 82}) {  // cache holds `offset` tokens, chunk adds `chunk` rows
    TensorView q = rows(q_, offset, offset + chunk);
    TensorView k = rows(k_, 0, offset + chunk), v = rows(v_, 0, offset + chunk);
    Result part = run(q, k, v, with(AttentionMode::dense, 1, 0, 1));
    EXPECT_LT(test::relative_l2(part.out, rows(whole.out, offset, offset + chunk)), tolerance()) << offset;
    EXPECT_LT(test::relative_l2(part.lse, lse_rows(whole.lse, offset, offset + chunk)), tolerance()) << offset;
    offset += chunk;
  }
  EXPECT_EQ(offset, c.n_q);
}

TEST_P(Invariants, StridedHeadsMajorViewsGiveTheSameResult) {
  Case c;
  c.batch = 2;
  make_inputs(c, 11);
  AttentionParams p = with(AttentionMode::delta, 40, 5, 16);
  Result plain = run(p);
  auto q = test::heads_major_copy(q_), k = test::heads_major_copy(k_), v = test::heads_major_copy(v_);
  Result strided = run(q.view, k.view, v.view, p);
  EXPECT_LT(test::relative_l2(strided.out, plain.out), tolerance());
}

TEST_P(Invariants, ShortChunksAreAllDense) {
  Case c;
  c.n_q = c.n_kv = 100;  // n < tail_min: every row is dense
  make_inputs(c, 12);
  Result dense = run(with(AttentionMode::dense, 8, 2, 64));
  Result delta = run(with(AttentionMode::delta, 8, 2, 64));
  EXPECT_LT(test::relative_l2(delta.out, dense.out), tolerance());
}

INSTANTIATE_TEST_SUITE_P(Backends, Invariants, ::testing::Values(Backend::reference, Backend::cpu),
                         [](const auto& info) { return std::string(backend_name(info.param)); });

}  // namespace
}  // namespace dattn
