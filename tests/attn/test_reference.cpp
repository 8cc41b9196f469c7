// The reference against values worked out independently, and the row plan against the spec's formulas.
#include <gtest/gtest.h>

#include <cmath>

#include "dattn/attn/params.h"
#include "dattn/delta/delta_attention.h"
#include "test_support.h"

namespace dattn {
namespace {

TEST(RowPlan, FollowsTheSpec) {
  AttentionParams p;  // gamma 64, tail_min 128
  RowPlan plan = make_row_plan(1000, p);
  EXPECT_EQ(plan.tail, 1000 % 64 + 128);
  EXPECT_EQ(plan.sparse_rows, 1000 - plan.tail);
  EXPECT_EQ(plan.sparse_rows % 64, 0);
  EXPECT_EQ(plan.num_anchors(), plan.sparse_rows / 64);
  EXPECT_TRUE(plan.is_anchor(0));
  EXPECT_TRUE(plan.is_anchor(64));
  EXPECT_FALSE(plan.is_anchor(65));
  EXPECT_EQ(plan.anchor_of(127), 64);
  EXPECT_TRUE(plan.is_tail(plan.sparse_rows));
  EXPECT_EQ(make_row_plan(150, p).sparse_rows, 0);  // tail >= n: all dense
  p.gamma = 200;                                    // tail_min = max(128, gamma) = 200
  EXPECT_EQ(make_row_plan(1000, p).tail, 1000 % 200 + 200);
  p.gamma = 100;  // tail_min 128 is not a multiple of gamma: the last block is partial and keeps its anchor
  plan = make_row_plan(1000, p);
  EXPECT_EQ(plan.sparse_rows, 1000 - 128);
  EXPECT_EQ(plan.num_anchors(), 9);
  EXPECT_TRUE(plan.is_anchor(800));
  EXPECT_EQ(plan.anchor_of(871), 800);
  p.tail_min = 0;
  p.gamma = 1;
  EXPECT_EQ(make_row_plan(10, p).sparse_rows, 10);
}

TEST(SparseKeys, CountsEachKeyOnce) {
  SparseKeys k = sparse_keys(100, 10, 5);
  EXPECT_EQ(k.sink_end, 5);
  EXPECT_EQ(k.window_begin, 91);
  k = sparse_keys(6, 10, 5);  // window reaches into the sink: no double counting
  EXPECT_EQ(k.sink_end, 5);
  EXPECT_EQ(k.window_begin, 5);
  k = sparse_keys(2, 10, 5);  // sink beyond the row: only keys <= p
  EXPECT_EQ(k.sink_end, 3);
  EXPECT_EQ(k.window_begin, 3);
}

// window_sink.h's block-level answers against its per-key rule, by brute force over small geometries
// (exact: integers). Which blocks a run of rows visits, and whether strided rows need a block (for blocks
// up to the last row, the only ones a kernel visits), match exactly; "no mask needed" may only err towards
// masking (a mask on a fully visible block changes nothing).
template <typename Int>
void check_window_sink_geometry() {
  namespace ws = window_sink;
  static_assert(ws::sees_key<Int>(3, 9, 4, 2) == false && ws::sees_key<Int>(1, 9, 4, 2) && ws::sees_key<Int>(6, 9, 4, 2));
  for (Int window = 1; window <= 9; ++window)
    for (Int sink = 0; sink <= 7; ++sink)
      for (Int block = 1; block <= 4; ++block)
        for (Int first = 0; first <= 12; ++first) {
          const auto ranges = ws::row_key_ranges(first, window, sink);
          for (Int key = 0; key <= first; ++key)
            ASSERT_EQ(ws::sees_key(key, first, window, sink), key < ranges.sink_end || key >= ranges.window_begin);
          ASSERT_LE(ranges.sink_end, ranges.window_begin);
          for (Int last = first; last <= first + 6; ++last) {
            const ws::KeyBlocks<Int> visited = ws::key_blocks(first, last, window, sink, block);
            for (Int b = 0; b * block <= last; ++b) {
              bool any = false, all = true;
              for (Int pos = first; pos <= last; ++pos)
                for (Int key = b * block; key < (b + 1) * block; ++key) {
                  any = any || ws::sees_key(key, pos, window, sink);
                  all = all && ws::sees_key(key, pos, window, sink);
                }
              const bool listed = b < visited.sink_blocks || (b >= visited.window_block && b <= visited.last_block);
              EXPECT_EQ(listed, any) << "window " << window << " sink " << sink << " block " << b;
              if (ws::rows_see_all_keys(first, last, b * block, b * block + block - 1, window, sink)) {
                EXPECT_TRUE(all) << "window " << window << " sink " << sink << " block " << b;
              }
            }
            for (Int step = 1; step <= 3; ++step)
              for (Int b = 0; b * block <= last - (last - first) % step; ++b) {
                const Int rows = (last - first) / step + 1;
                bool any = false;
                for (Int r = 0; r < rows; ++r)
                  for (Int key = b * block; key < (b + 1) * block; ++key)
                    any = any || ws::sees_key(key, first + r * step, window, sink);
                EXPECT_EQ(ws::strided_rows_see_block(first, step, rows, b * block, block, window, sink), any);
              }
          }
        }
}

TEST(WindowSink, BlockGeometryFollowsPerKeyRule) {
  check_window_sink_geometry<int>();      // the CUDA kernels' type
  check_window_sink_geometry<int64_t>();  // the host's
}

TEST(Reference, MatchesHandComputedAttention) {
  // One head, d = 2, three tokens; row 2 with window 1, sink 1 sees keys {0, 2}.
  Tensor q({1, 3, 1, 2}, DType::f32), k({1, 3, 1, 2}, DType::f32), v({1, 3, 1, 2}, DType::f32);
  float qs[] = {1, 0, 0, 1, 1, 1}, ks[] = {1, 0, 0, 1, 1, -1}, vs[] = {1, 2, 3, 4, 5, 6};
  std::copy(qs, qs + 6, static_cast<float*>(q.data()));
  std::copy(ks, ks + 6, static_cast<float*>(k.data()));
  std::copy(vs, vs + 6, static_cast<float*>(v.data()));
  Tensor out({1, 3, 1, 2}, DType::f32), lse({1, 1, 3, 1}, DType::f32);
  AttentionParams p;
  p.mode = AttentionMode::sparse;
  p.window = 1;
  p.sink = 1;
  p.scale = 1.0;
  p.backend = Backend::reference;
  delta_attention_lse(q, k, v, out, lse, p);
  // row 2: scores q2.k0 = 1, q2.k2 = 0
  double w0 = std::exp(1.0) / (std::exp(1.0) + 1.0), w2 = 1.0 - w0;
  EXPECT_NEAR(out.view().get(0, 2, 0, 0), w0 * 1 + w2 * 5, 1e-6);
  EXPECT_NEAR(out.view().get(0, 2, 0, 1), w0 * 2 + w2 * 6, 1e-6);
  EXPECT_NEAR(lse.view().get(0, 0, 2, 0), std::log(std::exp(1.0) + 1.0), 1e-6);
  // row 0 sees only key 0
  EXPECT_NEAR(out.view().get(0, 0, 0, 0), 1.0, 1e-6);
  EXPECT_NEAR(lse.view().get(0, 0, 0, 0), 1.0, 1e-6);
  // dense row 2 over keys 0..2: scores 1, 1, 0
  p.mode = AttentionMode::dense;
  delta_attention_lse(q, k, v, out, lse, p);
  double z = 2 * std::exp(1.0) + 1;
  EXPECT_NEAR(out.view().get(0, 2, 0, 0), (std::exp(1.0) * 1 + std::exp(1.0) * 3 + 5) / z, 1e-6);
  EXPECT_NEAR(lse.view().get(0, 0, 2, 0), std::log(z), 1e-6);
}

TEST(Cost, DeltaIsAboutTwoPercentOfDenseAtOneMillion) {
  AttentionShape s{1, 1 << 20, 1 << 20, 1, 1, 128};
  AttentionParams p;  // paper defaults
  double ratio = mode_pairs(s, p) / dense_pairs(s.n_q, s.n_kv);
  EXPECT_GT(ratio, 0.005);
  EXPECT_LT(ratio, 0.03);  // spec: "about 2% of dense" (n*(w+s) + n^2/(2 gamma))
}

}  // namespace
}  // namespace dattn
