// Block top-k's selection (select_key_blocks), in fp64 (the reference's) and fp32 (the cpu kernel's). What
// the backends compute over a selection is in the backend case list (tests/support/invariant_cases.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "dattn/attn/key_pattern.h"
#include "test_support.h"

namespace dattn {
namespace {

AttentionParams topk_params(int64_t window, int64_t sink, int64_t block_q, int64_t block_k, int64_t topk) {
  AttentionParams p = test::with(AttentionMode::sparse, window, sink, 1);
  p.pattern = KeyPattern::block_topk;
  p.block_q = block_q;
  p.block_k = block_k;
  p.topk = topk;
  return p;
}

class KeySelection : public ::testing::TestWithParam<bool> {
 protected:
  bool fp64() const { return GetParam(); }
  void make_inputs(int64_t n_q, int64_t n_kv, int64_t h_q, int64_t h_kv, uint32_t seed) {
    std::mt19937 rng(seed);
    q_ = test::random_tensor({1, n_q, h_q, 32}, DType::f32, rng);
    k_ = test::random_tensor({1, n_kv, h_kv, 32}, DType::f32, rng);
  }
  Tensor q_, k_;
};

// k = 0 keeps exactly the blocks holding a sink key, the blocks the window of any row of the query block
// reaches, and the diagonal blocks.
TEST_P(KeySelection, TopkZeroKeepsSinkWindowAndDiagonalBlocks) {
  const int64_t n_q = 200, n_kv = 260, bq = 24, bk = 16, window = 40, sink = 20;
  make_inputs(n_q, n_kv, 2, 1, 2);
  const BlockSelection sel = select_key_blocks(q_, k_, topk_params(window, sink, bq, bk, 0), fp64(), 2);
  for (int64_t qb = 0; qb < sel.q_blocks; ++qb) {
    const int64_t first = n_kv - n_q + qb * bq, last = n_kv - n_q + std::min(n_q, (qb + 1) * bq) - 1;
    std::set<int32_t> expected;
    for (int64_t j = 0; j <= last; ++j)
      if (j < sink || j > first - window) expected.insert(int32_t(j / bk));  // sink key, or in some row's window
    const auto got = sel.blocks(0, 0, qb);
    EXPECT_EQ(std::set<int32_t>(got.begin(), got.end()), expected) << "query block " << qb;
    EXPECT_EQ(got.size(), expected.size()) << "no duplicates";
  }
}

TEST_P(KeySelection, KeepsTopkHighestScoringBlocks) {
  make_inputs(256, 256, 2, 1, 3);
  const AttentionParams p = topk_params(16, 0, 64, 16, 3);
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

INSTANTIATE_TEST_SUITE_P(Precision, KeySelection, ::testing::Values(true, false),
                         [](const auto& info) { return std::string(info.param ? "fp64" : "fp32"); });

}  // namespace
}  // namespace dattn
