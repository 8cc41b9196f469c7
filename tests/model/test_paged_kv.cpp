// The paged KV cache: writes land where the block table says, views read them back (straight or
// gathered), and the batched decode attention over blocks equals the operator's fp64 reference.
#include <gtest/gtest.h>

#include <random>

#include "dattn/core/error.h"
#include "dattn/delta/delta_attention.h"
#include "dattn/model/paged_kv.h"

namespace dattn::model {
namespace {

std::vector<float> random_values(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

constexpr int64_t kLayers = 2, kBlocks = 12, kBlockTokens = 4, kKvHeads = 2, kHeadDim = 8, kWidth = kKvHeads * kHeadDim;

TEST(PagedKv, WritesFollowTheBlockTableAndViewsReadThemBack) {
  PagedKvCache cache(kLayers, kBlocks, kBlockTokens, kKvHeads, kHeadDim);
  const std::vector<int32_t> scattered{7, 2, 9}, consecutive{3, 4, 5};
  for (const auto& table : {scattered, consecutive}) {
    const int64_t n = 11;  // the last block is partly filled
    const auto k = random_values(size_t(n * kWidth), 1), v = random_values(size_t(n * kWidth), 2);
    cache.write(1, table, 0, 5, k.data(), v.data());  // two writes: one crosses a block boundary
    cache.write(1, table, 5, n - 5, k.data() + 5 * kWidth, v.data() + 5 * kWidth);
    EXPECT_EQ(cache.k_row(1, table[1], 1)[3], k[size_t(5 * kWidth + 3)]);
    std::vector<float> scratch;
    const auto [kv, vv] = cache.view(1, table, n, scratch);
    EXPECT_EQ(scratch.empty(), table == consecutive) << "consecutive blocks are read in place";
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < kWidth; ++i) {
        ASSERT_EQ(static_cast<const float*>(kv.data)[t * kv.stride[1] + i], k[size_t(t * kWidth + i)]);
        ASSERT_EQ(static_cast<const float*>(vv.data)[t * vv.stride[1] + i], v[size_t(t * kWidth + i)]);
      }
  }
  EXPECT_THROW(cache.write(0, scattered, 10, 3, nullptr, nullptr), Error);  // position 12 needs a 4th block
}

TEST(PagedKv, BatchedDecodeAttentionEqualsTheReferenceOverGatheredKeys) {
  PagedKvCache cache(kLayers, kBlocks, kBlockTokens, kKvHeads, kHeadDim);
  const int64_t heads_q = 6;  // GQA: 3 query heads per kv head
  const std::vector<std::vector<int32_t>> tables{{5, 0, 11}, {1}, {2, 3, 4, 6, 8, 10, 7}};
  const std::vector<int64_t> lengths{10, 3, 27};
  for (size_t s = 0; s < tables.size(); ++s) {
    const auto k = random_values(size_t(lengths[s] * kWidth), 10 + s), v = random_values(k.size(), 20 + s);
    cache.write(1, tables[s], 0, lengths[s], k.data(), v.data());
  }
  const auto q = random_values(size_t(int64_t(tables.size()) * heads_q * kHeadDim), 3);
  std::vector<float> out(q.size());
  std::vector<std::span<const int32_t>> spans(tables.begin(), tables.end());
  const double scale = 0.3;
  paged_decode_attention(cache, 1, {q.data(), out.data(), spans, lengths, heads_q, scale, 2});
  for (size_t s = 0; s < tables.size(); ++s) {
    std::vector<float> scratch, expected(size_t(heads_q * kHeadDim));
    const auto [kv, vv] = cache.view(1, tables[s], lengths[s], scratch);
    const int64_t q_dim = heads_q * kHeadDim;
    const TensorView qv{const_cast<float*>(q.data()) + s * q_dim, DType::f32, Device::cpu,
                        {1, 1, heads_q, kHeadDim}, {q_dim, q_dim, kHeadDim, 1}};
    const TensorView ov{expected.data(), DType::f32, Device::cpu, {1, 1, heads_q, kHeadDim},
                        {q_dim, q_dim, kHeadDim, 1}};
    delta_attention(qv, kv, vv, ov, {.mode = AttentionMode::dense, .scale = scale, .backend = Backend::reference});
    // fp32 scores and sums against the fp64 reference over <= 27 keys: a few ulps of the outputs' size
    for (int64_t i = 0; i < q_dim; ++i) EXPECT_NEAR(out[size_t(s * q_dim + i)], expected[size_t(i)], 1e-5) << s;
  }
}

}  // namespace
}  // namespace dattn::model
