// Split-KV of the dense-rows kernel (src/attn/cuda/split_kv.*): the planner on the host, and the split
// path on the GPU against the fp64 reference and against the unsplit path on the same inputs.
//
// Tolerances. Against the reference: the cuda backend's parity tolerances (tests/support/backend_cases.cpp: 1e-2 relative L2 on the output,
// 1e-3 absolute on the LSE), for the same reason: P is rounded to bf16/fp16 before P·V, a relative error
// per weight (RMS ~1.6e-3 for bf16's 8-bit significand, ~2e-4 for fp16) that does not shrink with the
// number of keys: the output's relative error is about that RMS whatever n_kv.
// Split against unsplit (fp32 output, so no output rounding adds anything): 5e-3 (bf16) / 1.5e-3 (fp16)
// relative L2 on the output. Both paths see the same keys, but a chunk rounds P relative to its own
// running max instead of the max over every earlier key, so almost every weight rounds differently; the
// two paths' errors are then nearly independent and their difference is ~sqrt(2) x the RMS above (~2.3e-3
// for bf16, ~3e-4 for fp16), not the ~1e-3 one might hope for. The merge itself is fp32. The LSE uses the
// unrounded fp32 weights, so it differs only by fp32 summation order and __logf/ex2.approx: 1e-4 absolute.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>

#include "cuda_test_util.h"
#include "split_kv.h"

namespace dattn {
namespace {

using namespace cuda_test;
using cuda::detail::AttentionKernelParams;
using cuda::detail::plan_kv_splits;
using cuda::detail::SplitPlan;

constexpr double kReferenceOut = 1e-2, kReferenceLse = 1e-3;
constexpr double kSplitOutBf16 = 5e-3, kSplitOutF16 = 1.5e-3, kSplitLse = 1e-4;
constexpr int kQueryTileRows = 128;  // TileShape::kBlockM with the default 2 m-tiles per warp

// The dense-rows work of a call, as cuda_attention.cpp derives it (for the planner checks).
AttentionKernelParams dense_rows_work(int64_t batch, int64_t n_q, int64_t n_kv, int64_t h_q, const AttentionParams& a) {
  AttentionKernelParams p{};
  p.batch = int(batch);
  p.h_q = int(h_q);
  p.n_q = int(n_q);
  p.n_kv = int(n_kv);
  const auto tiles_of = [](int64_t rows) { return int((rows + kQueryTileRows - 1) / kQueryTileRows); };
  if (a.mode == AttentionMode::dense) {
    p.contiguous_tiles = tiles_of(n_q);
    return p;
  }
  const RowPlan plan = make_row_plan(n_q, a);
  p.contiguous_tiles = tiles_of(n_q - plan.sparse_rows);
  p.anchor_tiles = tiles_of((plan.sparse_rows + plan.gamma - 1) / plan.gamma);
  return p;
}

void expect_plan_covers_every_key(const SplitPlan& plan, int64_t n_kv) {
  if (plan.kv_splits <= 1) return;
  const int64_t key_tiles = (n_kv + 63) / 64;
  EXPECT_GE(int64_t(plan.kv_splits) * plan.split_key_tiles, key_tiles);
  EXPECT_LT(int64_t(plan.kv_splits - 1) * plan.split_key_tiles, key_tiles) << "a chunk empty for every tile";
}

TEST(CudaSplitKvPlan, SplitsFewLongTilesAndNotManyTiles) {
  const AttentionParams delta = with(AttentionMode::delta, 2048, 1024, 64);
  // Llama-8B chunked prefill: 4096 rows per chunk over a 128K cache, 32 heads: 2 tiles per head.
  AttentionKernelParams p = dense_rows_work(1, 4096, 131072, 32, delta);
  ASSERT_EQ(p.contiguous_tiles + p.anchor_tiles, 2);
  SplitPlan plan = plan_kv_splits(p, 132, 0);
  EXPECT_EQ(plan.kv_splits, 4);  // 64 CTAs x 4 = 256 fill the 264 slots of 132 SMs in one wave
  EXPECT_GE(plan.split_key_tiles, cuda::detail::kMinKeyTilesPerSplit);
  expect_plan_covers_every_key(plan, 131072);
  // Few heads (the tests' shapes): 16 CTAs, 16 chunks of 64 key tiles, one wave.
  plan = plan_kv_splits(dense_rows_work(1, 4096, 65536, 8, delta), 132, 0);
  EXPECT_EQ(plan.kv_splits, 16);
  expect_plan_covers_every_key(plan, 65536);
  // The first chunk of a chunked prefill (4096 keys): chunks of at least 16 key tiles.
  plan = plan_kv_splits(dense_rows_work(1, 4096, 4096, 32, delta), 132, 0);
  EXPECT_EQ(plan.kv_splits, 4);
  EXPECT_EQ(plan.split_key_tiles, 16);
  // One-shot 128K: thousands of tiles, never split.
  EXPECT_EQ(plan_kv_splits(dense_rows_work(1, 131072, 131072, 32, delta), 132, 0).kv_splits, 1);
  EXPECT_EQ(plan_kv_splits(dense_rows_work(1, 32768, 32768, 32, with(AttentionMode::dense, 1, 0, 1)), 132, 0).kv_splits,
            1);
  // Short key ranges are not worth splitting (a chunk would be under 16 key tiles).
  EXPECT_EQ(plan_kv_splits(dense_rows_work(1, 300, 1000, 2, delta), 132, 0).kv_splits, 1);
  // Op-level delta at 32K: 5 tiles per head.
  p = dense_rows_work(1, 32768, 32768, 32, delta);
  plan = plan_kv_splits(p, 132, 0);
  EXPECT_GE(plan.kv_splits, 2);
  expect_plan_covers_every_key(plan, 32768);
  // Never more than kMaxSplitWaves waves of CTAs (bounds the scratch).
  for (int64_t heads : {1, 8, 32, 64})
    for (int64_t n_kv : {4096, 65536, 1 << 20}) {
      const AttentionKernelParams w = dense_rows_work(1, 4096, n_kv, heads, delta);
      const SplitPlan s = plan_kv_splits(w, 132, 0);
      EXPECT_LE(int64_t(heads) * (w.contiguous_tiles + w.anchor_tiles) * s.kv_splits,
                std::max<int64_t>(cuda::detail::kMaxSplitWaves * 132 * 2, heads * 2));
      expect_plan_covers_every_key(s, n_kv);
    }
}

// The warp-specialised kernels (the default on a Hopper): 1 CTA per SM and 128-key tiles. Chunks are
// counted in those tiles and still span at least 1024 keys.
TEST(CudaSplitKvPlan, CountsTheWarpSpecialisedKernelsSlotsAndTiles) {
  using cuda::detail::kWsCtasPerSm;
  using cuda::detail::kWsKeyTileKeys;
  const AttentionParams delta = with(AttentionMode::delta, 2048, 1024, 64);
  const auto ws_plan = [&](const AttentionKernelParams& p) {
    return plan_kv_splits(p, 132, 0, kWsCtasPerSm, kWsKeyTileKeys);
  };
  // 4096-row chunk over 128K keys, 32 heads: 64 CTAs; 2 chunks (128 CTAs) fill the 132 slots in one wave,
  // where the one-warpgroup kernels' 264 slots take 4.
  const AttentionKernelParams chunked = dense_rows_work(1, 4096, 131072, 32, delta);
  const SplitPlan plan = ws_plan(chunked);
  EXPECT_EQ(plan.kv_splits, 2);
  EXPECT_EQ(int64_t(plan.split_key_tiles) * kWsKeyTileKeys * plan.kv_splits, 131072);
  EXPECT_EQ(plan_kv_splits(chunked, 132, 0).kv_splits, 4);
  // The first chunk of a chunked prefill (4096 keys = 32 tiles of 128): 2 chunks of 16 tiles (2048 keys).
  const SplitPlan first = ws_plan(dense_rows_work(1, 4096, 4096, 32, delta));
  EXPECT_EQ(first.kv_splits, 2);
  EXPECT_EQ(first.split_key_tiles, 16);
  // One-shot 128K (544 CTAs, more than two waves of 132): never split.
  EXPECT_EQ(ws_plan(dense_rows_work(1, 131072, 131072, 32, delta)).kv_splits, 1);
  for (int64_t heads : {1, 8, 32})
    for (int64_t n_kv : {4096, 65536, 1 << 20}) {
      const SplitPlan s = ws_plan(dense_rows_work(1, 4096, n_kv, heads, delta));
      if (s.kv_splits > 1) {
        EXPECT_GE(int64_t(s.split_key_tiles) * kWsKeyTileKeys, 1024) << heads << " " << n_kv;
        const int64_t key_tiles = (n_kv + kWsKeyTileKeys - 1) / kWsKeyTileKeys;
        EXPECT_GE(int64_t(s.kv_splits) * s.split_key_tiles, key_tiles);
        EXPECT_LT(int64_t(s.kv_splits - 1) * s.split_key_tiles, key_tiles);
      }
    }
}

TEST(CudaSplitKvPlan, ForcedSplitsAreTakenAsGiven) {
  const AttentionKernelParams p = dense_rows_work(1, 65, 65, 4, with(AttentionMode::dense, 1, 0, 1));
  EXPECT_EQ(plan_kv_splits(p, 132, 1).kv_splits, 1);
  const SplitPlan plan = plan_kv_splits(p, 132, 3);  // 2 key tiles in 3 chunks of 1: chunk 2 is empty
  EXPECT_EQ(plan.kv_splits, 3);
  EXPECT_EQ(plan.split_key_tiles, 1);
  EXPECT_EQ(plan_kv_splits(p, 132, 1000).kv_splits, cuda::detail::kMaxKvSplits);
}

struct SplitCase {
  int64_t batch, n_q, n_kv, h_q, h_kv, d;
  AttentionMode mode;
  int64_t window, sink, gamma;
  DType dtype, out_dtype;
  bool heads_major;
  int forced_splits;  // 0: the planner's choice, which must split for this shape
};

std::string describe(const SplitCase& c) {
  return fmt::format("b{} nq{} nkv{} hq{} hkv{} d{} {} w{} s{} g{} {} out {} {} splits {}", c.batch, c.n_q, c.n_kv,
                     c.h_q, c.h_kv, c.d, mode_name(c.mode), c.window, c.sink, c.gamma, dtype_name(c.dtype),
                     dtype_name(c.out_dtype), c.heads_major ? "heads-major" : "seq-major", c.forced_splits);
}

// Views of one query row (n_q = 1) and the keys 0..pos, i.e. the query at absolute position pos.
struct RowReference {
  Tensor out, lse;
};
RowReference reference_row(const Tensor& q, const Tensor& k, const Tensor& v, int64_t row, int64_t pos,
                           AttentionParams p) {
  p.backend = Backend::reference;
  const TensorView q_row = rows(q.view(), row, row + 1);
  TensorView k_head = k.view(), v_head = v.view();
  k_head.shape[1] = v_head.shape[1] = pos + 1;
  RowReference r{Tensor({q.view().shape[0], 1, q.view().shape[2], q.view().shape[3]}, DType::f32),
                 Tensor({q.view().shape[0], q.view().shape[2], 1, 1}, DType::f32)};
  delta_attention_lse(q_row, k_head, v_head, r.out, r.lse, p);
  return r;
}

// Expected output and LSE of the given rows, assembled from single-row dense and sparse references
// (the spec: delta row = sparse(p_i) + dense(p_a) - sparse(p_a), tail rows dense; recompute: anchors and
// tail dense, other rows sparse; corrected rows report their sparse LSE).
struct SampledExpectation {
  Tensor out, lse;
};
SampledExpectation expected_rows(const SplitCase& c, const Tensor& q, const Tensor& k, const Tensor& v,
                                 const std::vector<int64_t>& sample) {
  const AttentionParams params = with(c.mode, c.window, c.sink, c.gamma);
  const RowPlan plan = make_row_plan(c.n_q, params);
  const int64_t offset = c.n_kv - c.n_q, n = int64_t(sample.size());
  SampledExpectation e{Tensor({c.batch, n, c.h_q, c.d}, DType::f32), Tensor({c.batch, c.h_q, n, 1}, DType::f32)};
  auto dense = [&](int64_t row) { return reference_row(q, k, v, row, offset + row, with(AttentionMode::dense, 1, 0, 1)); };
  auto sparse = [&](int64_t row) {
    return reference_row(q, k, v, row, offset + row, with(AttentionMode::sparse, c.window, c.sink, 1));
  };
  for (int64_t s = 0; s < n; ++s) {
    const int64_t row = sample[size_t(s)];
    const bool dense_row = c.mode == AttentionMode::dense || plan.is_tail(row) ||
                           (c.mode == AttentionMode::recompute && row == plan.anchor_of(row));
    const RowReference own = dense_row ? dense(row) : sparse(row);
    std::optional<RowReference> anchor_dense, anchor_sparse;
    if (!dense_row && c.mode == AttentionMode::delta) {
      anchor_dense = dense(plan.anchor_of(row));
      anchor_sparse = sparse(plan.anchor_of(row));
    }
    for (int64_t b = 0; b < c.batch; ++b)
      for (int64_t h = 0; h < c.h_q; ++h) {
        e.lse.view().set(b, h, s, 0, own.lse.view().get(b, h, 0, 0));
        for (int64_t x = 0; x < c.d; ++x) {
          double value = own.out.view().get(b, 0, h, x);
          if (anchor_dense)
            value += double(anchor_dense->out.view().get(b, 0, h, x)) - anchor_sparse->out.view().get(b, 0, h, x);
          e.out.view().set(b, s, h, x, float(value));
        }
      }
  }
  return e;
}

// The GPU's rows (and LSE rows) at the sampled indices, as contiguous f32 host tensors.
SampledExpectation gather_rows(const GpuResult& g, const SplitCase& c, const std::vector<int64_t>& sample) {
  const int64_t n = int64_t(sample.size());
  SampledExpectation r{Tensor({c.batch, n, c.h_q, c.d}, DType::f32), Tensor({c.batch, c.h_q, n, 1}, DType::f32)};
  for (int64_t s = 0; s < n; ++s)
    for (int64_t b = 0; b < c.batch; ++b)
      for (int64_t h = 0; h < c.h_q; ++h) {
        r.lse.view().set(b, h, s, 0, g.lse.view.get(b, h, sample[size_t(s)], 0));
        for (int64_t x = 0; x < c.d; ++x) r.out.view().set(b, s, h, x, g.out.view.get(b, sample[size_t(s)], h, x));
      }
  return r;
}

// Rows worth checking: the first rows, anchors and the rows just after them, the block boundary before
// the tail, the tail, the last row, and a few random ones.
std::vector<int64_t> sample_rows(const SplitCase& c, std::mt19937& rng) {
  const RowPlan plan = make_row_plan(c.n_q, with(c.mode, c.window, c.sink, c.gamma));
  std::vector<int64_t> s = {0, 1, c.n_q - 1};
  if (plan.sparse_rows > 0) {
    s.push_back(plan.sparse_rows - 1);
    s.push_back(plan.sparse_rows);
    s.push_back(plan.anchor_of(plan.sparse_rows / 2));
    s.push_back(plan.anchor_of(plan.sparse_rows / 2) + 1);
  }
  std::uniform_int_distribution<int64_t> any(0, c.n_q - 1);
  for (int i = 0; i < 3; ++i) s.push_back(any(rng));
  std::sort(s.begin(), s.end());
  s.erase(std::unique(s.begin(), s.end()), s.end());
  while (!s.empty() && s.back() >= c.n_q) s.pop_back();
  return s;
}

void check_split_case(const SplitCase& c, uint32_t seed) {
  SCOPED_TRACE(describe(c));
  std::mt19937 rng(seed);
  Tensor q = test::random_tensor({c.batch, c.n_q, c.h_q, c.d}, c.dtype, rng);
  Tensor k = test::random_tensor({c.batch, c.n_kv, c.h_kv, c.d}, c.dtype, rng);
  Tensor v = test::random_tensor({c.batch, c.n_kv, c.h_kv, c.d}, c.dtype, rng);
  const AttentionParams p = with(c.mode, c.window, c.sink, c.gamma);
  if (c.forced_splits == 0) {  // the shape must take the split path by itself
    const SplitPlan plan = plan_kv_splits(dense_rows_work(c.batch, c.n_q, c.n_kv, c.h_q, p),
                                          cuda::detail::current_device_sm_count(), 0);
    ASSERT_GT(plan.kv_splits, 1) << "the planner does not split this shape";
    expect_plan_covers_every_key(plan, c.n_kv);
  }
  DeviceTensor dq = to_device(q, c.dtype, c.heads_major), dk = to_device(k, c.dtype, c.heads_major),
               dv = to_device(v, c.dtype, c.heads_major);

  // CudaKernelConfig::kv_splits: 0 lets the planner choose, 1 never splits, n forces n chunks
  AttentionParams forced = p, never = p;
  forced.cuda.kv_splits = int(c.forced_splits);
  never.cuda.kv_splits = 1;
  const GpuResult split = run_gpu(dq.view, dk.view, dv.view, forced, c.out_dtype, c.heads_major);
  const GpuResult split_f32 = run_gpu(dq.view, dk.view, dv.view, forced, DType::f32, c.heads_major);
  const GpuResult unsplit_f32 = run_gpu(dq.view, dk.view, dv.view, never, DType::f32, c.heads_major);
  EXPECT_TRUE(all_finite(split.out)) << "an output element was not written (NaN poison survived)";
  EXPECT_TRUE(all_finite(split.lse)) << "an LSE element was not written";
  EXPECT_LT(test::relative_l2(split_f32.out, unsplit_f32.out), c.dtype == DType::bf16 ? kSplitOutBf16 : kSplitOutF16);
  EXPECT_LT(test::max_abs_diff(split_f32.lse, unsplit_f32.lse), kSplitLse);

  // Against the fp64 reference: every row when that is cheap, else sampled rows.
  if (double(c.batch * c.h_q) * double(c.n_q) * double(c.n_kv) * double(c.d) <= 2e8) {
    AttentionParams ref = p;
    ref.backend = Backend::reference;
    Tensor ref_out(q.view().shape, DType::f32), ref_lse({c.batch, c.h_q, c.n_q, 1}, DType::f32);
    delta_attention_lse(q, k, v, ref_out, ref_lse, ref);
    EXPECT_LT(test::relative_l2(split.out, ref_out), kReferenceOut);
    EXPECT_LT(test::max_abs_diff(split.lse, ref_lse), kReferenceLse);
    return;
  }
  const std::vector<int64_t> sample = sample_rows(c, rng);
  const SampledExpectation expected = expected_rows(c, q, k, v, sample);
  const SampledExpectation got = gather_rows(split, c, sample);
  EXPECT_LT(test::relative_l2(got.out, expected.out), kReferenceOut);
  EXPECT_LT(test::max_abs_diff(got.lse, expected.lse), kReferenceLse);
}

using M = AttentionMode;
constexpr DType bf = DType::bf16, hf = DType::f16, f32 = DType::f32;

// The model runtime's continued prefill: a chunk of n_q rows over a long cache, GQA group 4, paper
// defaults (window 2048, sink 1024, gamma 64) where the chunk allows. The planner splits these shapes.
TEST(CudaSplitKv, ContinuedPrefillLongCache) {
  DATTN_SKIP_WITHOUT_GPU();
  const std::vector<SplitCase> cases = {
      {1, 4096, 65536, 8, 2, 128, M::delta, 2048, 1024, 64, bf, bf, false, 0},  // model runtime chunk
      {1, 2048, 49152, 8, 2, 128, M::delta, 1024, 128, 64, hf, hf, false, 0},
      {1, 256, 32768, 8, 2, 64, M::recompute, 512, 64, 16, hf, f32, false, 0},
      {1, 1000, 40001, 8, 2, 64, M::dense, 1, 0, 1, bf, bf, false, 0},  // 626 key tiles: uneven chunks
      {2, 512, 32768, 8, 2, 64, M::delta, 2048, 1024, 64, bf, f32, true, 0},  // batch 2, heads-major
      {1, 4096, 32768, 8, 2, 128, M::recompute, 2048, 1024, 64, bf, f32, false, 0},
  };
  uint32_t seed = 500;
  for (const SplitCase& c : cases) check_split_case(c, seed++);
}

// Forced chunk counts on small shapes: chunks that do not divide the key range, chunks empty for some
// tiles (short anchor tiles) or for every tile, n_kv just above one key tile, one row.
TEST(CudaSplitKv, ForcedSplitEdgeCases) {
  DATTN_SKIP_WITHOUT_GPU();
  const std::vector<SplitCase> cases = {
      {1, 65, 65, 4, 1, 128, M::dense, 1, 0, 1, bf, f32, false, 3},        // 2 key tiles, 3rd chunk empty
      {1, 65, 65, 4, 1, 64, M::delta, 16, 4, 8, hf, hf, false, 2},         // every row dense (n_q < tail)
      {1, 1, 70, 2, 1, 128, M::delta, 16, 4, 64, bf, f32, false, 4},       // one row
      {1, 300, 300, 4, 1, 64, M::delta, 40, 5, 8, bf, f32, false, 3},      // 5 key tiles in 2+2+1
      {2, 700, 1500, 8, 2, 128, M::delta, 90, 7, 32, hf, f32, true, 5},    // continued prefill, heads-major
      {1, 1517, 1517, 4, 2, 64, M::delta, 100, 20, 16, bf, bf, false, 7},  // > 64 anchors, 2 anchor tiles
      {1, 600, 2000, 8, 2, 64, M::recompute, 50, 5, 4, bf, bf, false, 2},
      {3, 190, 190, 8, 1, 128, M::recompute, 50, 5, 4, hf, hf, true, 64},  // 64 chunks of one key tile or none
  };
  uint32_t seed = 600;
  for (const SplitCase& c : cases) check_split_case(c, seed++);
}

TEST(CudaSplitKv, RandomisedSweepWithForcedSplits) {
  DATTN_SKIP_WITHOUT_GPU();
  RandomPick pick(20261128);
  for (int i = 0; i < 16; ++i) {
    SplitCase c;
    c.batch = pick.between(1, 2);
    c.h_kv = pick.one_of(int64_t(1), 2);
    c.h_q = c.h_kv * pick.one_of(int64_t(1), 4);
    c.d = pick.one_of(int64_t(64), 128);
    c.n_q = pick.between(1, 700);
    c.n_kv = c.n_q + pick.one_of(int64_t(0), pick.between(1, 1500));
    c.mode = pick.one_of(M::dense, M::recompute, M::delta, M::delta);
    c.window = pick.one_of(pick.between(1, 200), int64_t(5000));
    c.sink = pick.one_of(int64_t(0), pick.between(1, 100));
    c.gamma = pick.one_of(int64_t(1), 8, 16, 64, 100);
    c.dtype = pick.one_of(bf, hf);
    c.out_dtype = pick.one_of(f32, c.dtype);
    c.heads_major = pick.one_of(false, true);
    c.forced_splits = int(pick.one_of(int64_t(2), 3, 5, 16));
    check_split_case(c, 700 + uint32_t(i));
  }
}

}  // namespace
}  // namespace dattn
