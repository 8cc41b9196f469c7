// The spec's invariants ("Invariants that tests must pin"), of window + sink, block top-k, the delta
// variants and the anchor gap: each backend against itself, within its identity tolerance.
#include <algorithm>
#include <cmath>

#include "backend_cases.h"

namespace dattn::test {
namespace {

AttentionParams topk_params(AttentionMode mode, int64_t window, int64_t sink, int64_t gamma, int64_t block_q,
                            int64_t block_k, int64_t topk) {
  AttentionParams p = with(mode, window, sink, gamma);
  p.pattern = KeyPattern::block_topk;
  p.block_q = block_q;
  p.block_k = block_k;
  p.topk = topk;
  return p;
}

const AttentionParams kDense = with(AttentionMode::dense, 1, 0, 1);

void sparse_window_covering_everything_is_dense(const CaseRunner& r) {
  for (int64_t d : {64, 128}) {
    const Inputs in = r.inputs({.n_q = 200, .n_kv = 200, .d = d}, 1);
    const Result dense = r.run(in, kDense);
    for (int64_t sink : {0, 64}) {  // sink keys inside the window count once
      const Result sparse = r.run(in, with(AttentionMode::sparse, 200 + sink, sink, 1));
      EXPECT_LT(relative_l2(sparse.out, dense.out), r.identity()) << "d " << d << " sink " << sink;
      EXPECT_LT(relative_l2(sparse.lse, dense.lse), r.identity()) << "d " << d << " sink " << sink;
    }
  }
}

void delta_with_gamma_one_is_dense(const CaseRunner& r) {
  const Inputs in = r.inputs({.batch = 2, .n_q = 200, .n_kv = 200, .h_q = 2, .h_kv = 1, .d = 128}, 2);
  EXPECT_LT(relative_l2(r.run(in, with(AttentionMode::delta, 16, 4, 1)).out, r.run(in, kDense).out), r.identity());
}

// n not a multiple of gamma, more than 64 anchors (two of the cuda kernels' anchor tiles).
void delta_recompute_and_dense_agree_on_anchors_and_tail(const CaseRunner& r) {
  const int64_t n = 717;
  const Inputs in = r.inputs({.n_q = n, .n_kv = n, .h_q = 2, .h_kv = 1}, 3);
  const AttentionParams p = with(AttentionMode::delta, 100, 20, 8);
  const RowPlan plan = make_row_plan(n, p);
  ASSERT_GT(plan.num_anchors(), 64);
  const Result dense = r.run(in, with(AttentionMode::dense, 100, 20, 8));
  const Result sparse = r.run(in, with(AttentionMode::sparse, 100, 20, 8));
  const Result delta = r.run(in, p);
  const Result recompute = r.run(in, with(AttentionMode::recompute, 100, 20, 8));
  for (int64_t a = 0; a < plan.num_anchors(); ++a) {
    const int64_t row = a * plan.gamma;
    EXPECT_LT(relative_l2(rows(delta.out, row, row + 1), rows(dense.out, row, row + 1)), r.identity()) << row;
    EXPECT_LT(relative_l2(rows(recompute.out, row, row + 1), rows(dense.out, row, row + 1)), r.identity()) << row;
    EXPECT_LT(relative_l2(lse_rows(recompute.lse, row, row + 1), lse_rows(dense.lse, row, row + 1)), r.identity());
  }
  const TensorView tail_dense = rows(dense.out, plan.sparse_rows, n);
  EXPECT_LT(relative_l2(rows(delta.out, plan.sparse_rows, n), tail_dense), r.identity());
  EXPECT_LT(relative_l2(rows(recompute.out, plan.sparse_rows, n), tail_dense), r.identity());
  EXPECT_LT(relative_l2(lse_rows(delta.lse, plan.sparse_rows, n), lse_rows(dense.lse, plan.sparse_rows, n)),
            r.identity());
  // corrected rows report their sparse LSE; recompute's non-anchor rows are sparse rows
  EXPECT_LT(relative_l2(lse_rows(delta.lse, 0, plan.sparse_rows), lse_rows(sparse.lse, 0, plan.sparse_rows)),
            r.identity());
  EXPECT_LT(relative_l2(rows(recompute.out, 1, plan.gamma), rows(sparse.out, 1, plan.gamma)), r.identity());
}

void delta_rows_are_sparse_plus_the_anchor_delta(const CaseRunner& r) {
  const int64_t n = 400, heads = 2, d = 128;
  const Inputs in = r.inputs({.n_q = n, .n_kv = n, .h_q = heads, .h_kv = 1, .d = d}, 4);
  const AttentionParams p = with(AttentionMode::delta, 90, 7, 32);
  const RowPlan plan = make_row_plan(n, p);
  const Result dense = r.run(in, with(AttentionMode::dense, 90, 7, 32));
  const Result sparse = r.run(in, with(AttentionMode::sparse, 90, 7, 32));
  const Result delta = r.run(in, p);
  Tensor expected(in.q.view().shape, DType::f32);
  const TensorView de = dense.out, sp = sparse.out;
  for (int64_t row = 0; row < n; ++row)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t e = 0; e < d; ++e) {
        float value = de.get(0, row, h, e);
        if (!plan.is_tail(row)) {
          const int64_t a = plan.anchor_of(row);
          value = sp.get(0, row, h, e) + de.get(0, a, h, e) - sp.get(0, a, h, e);
        }
        expected.view().set(0, row, h, e, value);
      }
  EXPECT_LT(relative_l2(delta.out, expected), r.identity());
  EXPECT_LT(relative_l2(lse_rows(delta.lse, 0, plan.sparse_rows), lse_rows(sparse.lse, 0, plan.sparse_rows)),
            r.identity());
  // sparse really differs from dense here, so the checks above are not vacuous
  EXPECT_GT(relative_l2(sparse.out, dense.out), 1e-2);
  EXPECT_GT(relative_l2(delta.out, sparse.out), 1e-2);
}

void grouped_query_attention_equals_expanded_heads(const CaseRunner& r) {
  for (int64_t group : {2, 4, 8}) {
    const Inputs in = r.inputs({.n_q = 150, .n_kv = 150, .h_q = 2 * group, .h_kv = 2}, 5 + uint32_t(group));
    const Placed k = r.place(expand_heads(in.k, group), in.dtype), v = r.place(expand_heads(in.v, group), in.dtype);
    for (AttentionMode mode : {AttentionMode::dense, AttentionMode::sparse, AttentionMode::delta}) {
      const AttentionParams p = with(mode, 40, 3, 8);
      const Result grouped = r.run(in, p), expanded = r.run(in.dq.view, k.view, v.view, p);
      EXPECT_LT(relative_l2(grouped.out, expanded.out), r.identity()) << "group " << group;
      EXPECT_LT(relative_l2(grouped.lse, expanded.lse), r.identity()) << "group " << group;
    }
  }
}

// Chunks of the same sequence over views into the whole q, k, v (the cache holds `offset` tokens).
void continued_prefill_gives_the_same_dense_rows(const CaseRunner& r) {
  const int64_t n = 333;
  const Inputs in = r.inputs({.n_q = n, .n_kv = n}, 9);
  const Result whole = r.run(in, kDense);
  int64_t offset = 0;
  for (int64_t chunk : {100, 1, 150, 82}) {
    const Result part = r.run(rows(in.dq.view, offset, offset + chunk), rows(in.dk.view, 0, offset + chunk),
                              rows(in.dv.view, 0, offset + chunk), kDense);
    EXPECT_LT(relative_l2(part.out, rows(whole.out, offset, offset + chunk)), r.identity()) << offset;
    EXPECT_LT(relative_l2(part.lse, lse_rows(whole.lse, offset, offset + chunk)), r.identity()) << offset;
    offset += chunk;
  }
  EXPECT_EQ(offset, n);
}

void strided_heads_major_views_give_the_same_result(const CaseRunner& r) {
  const Inputs in = r.inputs({.batch = 2}, 11);
  const AttentionParams p = with(AttentionMode::delta, 40, 5, 16);
  const Result plain = r.run(in, p);
  const Placed q = r.place(in.q, in.dtype, Layout::heads_major), k = r.place(in.k, in.dtype, Layout::heads_major),
               v = r.place(in.v, in.dtype, Layout::heads_major);
  const Result strided = r.run(q.view, k.view, v.view, p, {.layout = Layout::heads_major});
  EXPECT_LT(relative_l2(strided.out, plain.out), r.identity());
  EXPECT_LT(relative_l2(strided.lse, plain.lse), r.identity());
}

void short_chunks_are_all_dense(const CaseRunner& r) {
  const Inputs in = r.inputs({.n_q = 100, .n_kv = 100}, 12);  // n < tail_min: every row is dense
  const Result delta = r.run(in, with(AttentionMode::delta, 8, 2, 64));
  const Result dense = r.run(in, with(AttentionMode::dense, 8, 2, 64));
  EXPECT_LT(relative_l2(delta.out, dense.out), r.identity());
}

void without_lse_the_output_is_the_same(const CaseRunner& r) {
  const Inputs in = r.inputs({.n_q = 250, .n_kv = 250, .h_q = 2, .h_kv = 1}, 12);
  const AttentionParams p = with(AttentionMode::delta, 40, 5, 16);
  EXPECT_LT(relative_l2(r.run(in, p, {.lse = false}).out, r.run(in, p).out), r.identity());
}

void topk_covering_every_block_is_dense(const CaseRunner& r) {
  const Inputs in = r.inputs({.n_q = 200, .n_kv = 200}, 21);
  const Result dense = r.run(in, kDense);
  for (int64_t block_k : {1, 16, 64}) {
    const Result sparse = r.run(in, topk_params(AttentionMode::sparse, 1, 0, 1, 32, block_k, 1000));
    EXPECT_LT(relative_l2(sparse.out, dense.out), r.identity()) << block_k;
    EXPECT_LT(relative_l2(sparse.lse, dense.lse), r.identity()) << block_k;
  }
}

// With 1x1 blocks and topk 0 the kept blocks are exactly window + sink.
void topk_zero_with_unit_blocks_is_window_sink(const CaseRunner& r) {
  const Inputs in = r.inputs({.n_q = 200, .n_kv = 260, .h_q = 2, .h_kv = 1}, 22);
  const Result one_by_one = r.run(in, topk_params(AttentionMode::sparse, 40, 20, 1, 1, 1, 0));
  const Result window_sink = r.run(in, with(AttentionMode::sparse, 40, 20, 1));
  EXPECT_LT(relative_l2(one_by_one.out, window_sink.out), r.identity());
  EXPECT_LT(relative_l2(one_by_one.lse, window_sink.lse), r.identity());
}

// All query heads of a kv head share its selection (spec), so expanding K/V keeps the result exactly when
// the group's query heads agree; here the query heads of a group are copies of one another.
void topk_grouped_query_attention_equals_expanded_heads(const CaseRunner& r) {
  const int64_t group = 4, n = 260;
  Inputs in = r.inputs({.n_q = n, .n_kv = n, .h_q = 2 * group, .h_kv = 2}, 23);
  Tensor q(in.q.view().shape, DType::f32);
  for (int64_t row = 0; row < n; ++row)
    for (int64_t h = 0; h < 2 * group; ++h)
      for (int64_t c = 0; c < in.q.view().shape[3]; ++c)
        q.view().set(0, row, h, c, in.q.view().get(0, row, h / group * group, c));
  const Placed dq = r.place(q, in.dtype);
  const Placed k = r.place(expand_heads(in.k, group), in.dtype), v = r.place(expand_heads(in.v, group), in.dtype);
  for (AttentionMode mode : {AttentionMode::sparse, AttentionMode::delta}) {
    const AttentionParams p = topk_params(mode, 16, 8, 16, 32, 16, 2);
    const Result grouped = r.run(dq.view, in.dk.view, in.dv.view, p), expanded = r.run(dq.view, k.view, v.view, p);
    EXPECT_LT(relative_l2(grouped.out, expanded.out), r.identity());
    EXPECT_LT(relative_l2(grouped.lse, expanded.lse), r.identity());
  }
}

// Delta and recompute over block top-k: anchors and tail equal dense, in both delta variants.
void topk_corrections_match_dense_at_anchors_and_tail(const CaseRunner& r) {
  const int64_t n = 517, gamma = 16;
  const Inputs in = r.inputs({.n_q = n, .n_kv = n, .h_q = 2, .h_kv = 1}, 24);
  const Result dense = r.run(in, kDense);
  const AttentionParams base = topk_params(AttentionMode::sparse, 16, 8, gamma, 48, 16, 2);
  const RowPlan plan = make_row_plan(n, base);
  EXPECT_GT(relative_l2(r.run(in, base).out, dense.out), 1e-2) << "sparse differs from dense: checks are not vacuous";
  for (AttentionMode mode : {AttentionMode::recompute, AttentionMode::delta})
    for (DeltaVariant variant : {DeltaVariant::repeat, DeltaVariant::interpolate}) {
      AttentionParams p = base;
      p.mode = mode;
      p.delta_variant = variant;
      const Result c = r.run(in, p);
      for (int64_t a = 0; a < plan.num_anchors(); ++a)
        EXPECT_LT(relative_l2(rows(c.out, a * gamma, a * gamma + 1), rows(dense.out, a * gamma, a * gamma + 1)),
                  r.identity())
            << mode_name(mode) << " " << delta_variant_name(variant) << " anchor " << a;
      EXPECT_LT(relative_l2(rows(c.out, plan.sparse_rows, n), rows(dense.out, plan.sparse_rows, n)), r.identity());
    }
}

void delta_with_gamma_one_is_dense_in_both_variants_and_patterns(const CaseRunner& r) {
  const Inputs in = r.inputs({.n_q = 200, .n_kv = 200, .h_q = 2, .h_kv = 1}, 25);
  const Result dense = r.run(in, kDense);
  for (KeyPattern pattern : {KeyPattern::window_sink, KeyPattern::block_topk})
    for (DeltaVariant variant : {DeltaVariant::repeat, DeltaVariant::interpolate}) {
      AttentionParams p = topk_params(AttentionMode::delta, 16, 4, 1, 32, 16, 2);
      p.pattern = pattern;
      p.delta_variant = variant;
      EXPECT_LT(relative_l2(r.run(in, p).out, dense.out), r.identity())
          << pattern_name(pattern) << " " << delta_variant_name(variant);
    }
}

// Interpolate: row a_j + t*gamma gets sparse + (1 - t) Δ_j + t Δ_{j+1}; the last block repeats Δ_j.
void interpolate_blends_consecutive_anchor_deltas(const CaseRunner& r) {
  const int64_t n = 400, heads = 2, gamma = 32;
  const Inputs in = r.inputs({.n_q = n, .n_kv = n, .h_q = heads, .h_kv = 1}, 26);
  AttentionParams p = with(AttentionMode::delta, 24, 4, gamma);
  p.delta_variant = DeltaVariant::interpolate;
  const RowPlan plan = make_row_plan(n, p);
  const Result dense = r.run(in, kDense), sparse = r.run(in, with(AttentionMode::sparse, 24, 4, gamma));
  const Result interpolated = r.run(in, p);
  Tensor expected(in.q.view().shape, DType::f32);
  const TensorView de = dense.out, sp = sparse.out;
  for (int64_t row = 0; row < n; ++row)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t c = 0; c < in.q.view().shape[3]; ++c) {
        float value = de.get(0, row, h, c);
        if (!plan.is_tail(row)) {
          const int64_t a = plan.anchor_of(row), next = a / gamma + 1 < plan.num_anchors() ? a + gamma : a;
          const float t = float(row - a) / float(gamma);
          value = sp.get(0, row, h, c) + (1 - t) * (de.get(0, a, h, c) - sp.get(0, a, h, c)) +
                  t * (de.get(0, next, h, c) - sp.get(0, next, h, c));
        }
        expected.view().set(0, row, h, c, value);
      }
  EXPECT_LT(relative_l2(interpolated.out, expected), r.identity());
  const Result repeated = r.run(in, with(AttentionMode::delta, 24, 4, gamma));
  EXPECT_GT(relative_l2(interpolated.out, repeated.out), 1e-3) << "the variants differ";
}

// The anchor gap is ||dense(a) - sparse(a)|| / ||dense(a)|| averaged and maximised over anchors; zero when the
// pattern sees every key. Compared with this backend's own dense and sparse outputs: a ratio of fp32 norms,
// so 1e-4 absolute (~1e-6 per entry) on every backend.
void anchor_gap_measures_the_correction(const CaseRunner& r) {
  const int64_t n = 300, heads = 2, gamma = 32;
  const Inputs in = r.inputs({.n_q = n, .n_kv = n, .h_q = heads, .h_kv = 1}, 27);
  AnchorGap gap;
  AttentionParams p = topk_params(AttentionMode::delta, 16, 4, gamma, 32, 16, 1);
  p.anchor_gap = &gap;
  r.run(in, p);
  const RowPlan plan = make_row_plan(n, p);
  ASSERT_EQ(gap.anchors, plan.num_anchors());
  ASSERT_EQ(gap.mean.size(), size_t(heads));
  AttentionParams sparse_params = p;
  sparse_params.mode = AttentionMode::sparse;
  sparse_params.anchor_gap = nullptr;
  const Result dense = r.run(in, kDense), sparse = r.run(in, sparse_params);
  for (int64_t h = 0; h < heads; ++h) {
    double sum = 0, high = 0;
    for (int64_t a = 0; a < plan.num_anchors(); ++a) {
      double diff = 0, norm = 0;
      for (int64_t c = 0; c < in.q.view().shape[3]; ++c) {
        const double dv = dense.out.view().get(0, a * gamma, h, c), sv = sparse.out.view().get(0, a * gamma, h, c);
        diff += (dv - sv) * (dv - sv);
        norm += dv * dv;
      }
      sum += std::sqrt(diff / norm);
      high = std::max(high, std::sqrt(diff / norm));
    }
    EXPECT_NEAR(gap.mean[size_t(h)], sum / double(plan.num_anchors()), 1e-4);
    EXPECT_NEAR(gap.max[size_t(h)], high, 1e-4);
    EXPECT_GT(gap.mean[size_t(h)], 1e-2);
  }
  p.topk = 1000;  // every block: sparse == dense, no gap
  r.run(in, p);
  for (float g : gap.max) EXPECT_LT(g, 1e-5);
}

}  // namespace

const std::vector<BackendCase>& invariant_cases() {
#define DATTN_INVARIANT(run) BackendCase{#run, CaseKind::invariant, CaseSpeed::fast, run}
  static const std::vector<BackendCase> cases = {
      DATTN_INVARIANT(sparse_window_covering_everything_is_dense),
      DATTN_INVARIANT(delta_with_gamma_one_is_dense),
      DATTN_INVARIANT(delta_recompute_and_dense_agree_on_anchors_and_tail),
      DATTN_INVARIANT(delta_rows_are_sparse_plus_the_anchor_delta),
      DATTN_INVARIANT(grouped_query_attention_equals_expanded_heads),
      DATTN_INVARIANT(continued_prefill_gives_the_same_dense_rows),
      DATTN_INVARIANT(strided_heads_major_views_give_the_same_result),
      DATTN_INVARIANT(short_chunks_are_all_dense),
      DATTN_INVARIANT(without_lse_the_output_is_the_same),
      DATTN_INVARIANT(topk_covering_every_block_is_dense),
      DATTN_INVARIANT(topk_zero_with_unit_blocks_is_window_sink),
      DATTN_INVARIANT(topk_grouped_query_attention_equals_expanded_heads),
      DATTN_INVARIANT(topk_corrections_match_dense_at_anchors_and_tail),
      DATTN_INVARIANT(delta_with_gamma_one_is_dense_in_both_variants_and_patterns),
      DATTN_INVARIANT(interpolate_blends_consecutive_anchor_deltas),
      DATTN_INVARIANT(anchor_gap_measures_the_correction),
  };
#undef DATTN_INVARIANT
  return cases;
}

}  // namespace dattn::test
