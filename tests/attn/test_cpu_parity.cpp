// The fast CPU backend against the fp64 reference (dattn::reference::attention), output and LSE.
//
// Tolerances (relative L2 over the whole tensor):
//  - fp32 output: 1e-5. The kernel reads exactly the values the reference reads (bf16/fp16 inputs are
//    widened exactly), so the only error is fp32 accumulation in a different order plus the exp2
//    polynomial (~1e-7 relative): we observe ~1e-7..1e-6, and 1e-5 leaves headroom without hiding bugs
//    (a wrong mask or a missing key gives >1e-3).
//  - bf16/fp16 output: 1e-2. Rounding the result to bf16 alone costs up to 2^-9 relative per element.
//  - LSE: 1e-5 relative L2 in every case (always fp32; values are O(log n)).
//  - Block top-k: the CPU's fp32 block scores must select exactly the blocks of the reference's fp64 scores
//    (checked first). Normal random inputs leave the k-th and (k+1)-th scores far apart compared with fp32
//    rounding; a tie within rounding would fail this check loudly rather than pass with other blocks.
//  - Anchor gap (delta): 1e-4 absolute per head. It is a ratio of norms of fp32 vectors whose entries carry
//    ~1e-6 error; gaps are O(0.1..1), so ~1e-5 is expected and a wrong anchor or a missing term gives >1e-2.
// Outputs and LSE are poisoned with NaN first, so an element the kernel forgets to write fails.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "dattn/attn/key_pattern.h"
#include "dattn/delta/delta_attention.h"
#include "test_support.h"

namespace dattn {
namespace {

enum class Layout { contiguous, heads_major, strided_dim };

struct ParityCase {
  int64_t batch = 1, n_q = 200, n_kv = 200, h_q = 4, h_kv = 1, d = 64;
  AttentionMode mode = AttentionMode::delta;
  int64_t window = 48, sink = 8, gamma = 16, tail_min = -1;
  KeyPattern pattern = KeyPattern::window_sink;
  int64_t block_q = 64, block_k = 64, topk = 8;
  DeltaVariant variant = DeltaVariant::repeat;
  DType dtype = DType::f32, out_dtype = DType::f32;
  Layout layout = Layout::contiguous;

  std::string describe() const {
    return fmt::format("b{} nq{} nkv{} hq{} hkv{} d{} {} {} bq{} bk{} k{} {} w{} s{} g{} tail_min{} {}->{} layout{}",
                       batch, n_q, n_kv, h_q, h_kv, d, mode_name(mode), pattern_name(pattern), block_q, block_k, topk,
                       delta_variant_name(variant), window, sink, gamma, tail_min, dtype_name(dtype),
                       dtype_name(out_dtype), int(layout));
  }
};

// A tensor in the requested layout; `storage` owns the memory behind `view`.
struct Laid {
  Tensor storage;
  TensorView view;
};

Laid make_laid(std::array<int64_t, 4> shape, DType dtype, Layout layout) {
  if (layout == Layout::heads_major) {
    Tensor storage({shape[0], shape[2], shape[1], shape[3]}, dtype);
    return {storage, storage.view().transposed(1, 2)};
  }
  if (layout == Layout::strided_dim) {  // every other element of a twice-as-wide last dim: stride[3] == 2
    Tensor storage({shape[0], shape[1], shape[2], shape[3] * 2}, dtype);
    TensorView view = storage.view();
    view.shape[3] = shape[3];
    view.stride[3] = 2;
    return {storage, view};
  }
  Tensor storage(shape, dtype);
  return {storage, storage.view()};
}

void check_parity(const ParityCase& c, uint32_t seed) {
  SCOPED_TRACE(c.describe());
  std::mt19937 rng(seed);
  Laid q = make_laid({c.batch, c.n_q, c.h_q, c.d}, c.dtype, c.layout);
  Laid k = make_laid({c.batch, c.n_kv, c.h_kv, c.d}, c.dtype, c.layout);
  Laid v = make_laid({c.batch, c.n_kv, c.h_kv, c.d}, c.dtype, c.layout);
  for (const Laid* t : {&q, &k, &v}) test::fill_normal(t->view, rng);

  AttentionParams p;
  p.mode = c.mode;
  p.window = c.window;
  p.sink = c.sink;
  p.gamma = c.gamma;
  p.tail_min = c.tail_min;
  p.pattern = c.pattern;
  p.block_q = c.block_q;
  p.block_k = c.block_k;
  p.topk = c.topk;
  p.delta_variant = c.variant;
  if (c.pattern == KeyPattern::block_topk && c.mode != AttentionMode::dense)
    ASSERT_EQ(select_key_blocks(q.view, k.view, p, /*fp64=*/false, 2), select_key_blocks(q.view, k.view, p, true, 1));
  AnchorGap expected_gap, gap;

  Tensor expected({c.batch, c.n_q, c.h_q, c.d}, DType::f32), expected_lse({c.batch, c.h_q, c.n_q, 1}, DType::f32);
  p.backend = Backend::reference;
  p.anchor_gap = &expected_gap;
  delta_attention_lse(q.view, k.view, v.view, expected, expected_lse, p);

  Laid out = make_laid({c.batch, c.n_q, c.h_q, c.d}, c.out_dtype, c.layout);
  Tensor lse({c.batch, c.h_q, c.n_q, 1}, DType::f32);
  test::poison(out.view);
  test::poison(lse);
  p.backend = Backend::cpu;
  p.num_threads = 2;
  p.anchor_gap = &gap;
  delta_attention_lse(q.view, k.view, v.view, out.view, lse, p);
  EXPECT_EQ(gap.anchors, expected_gap.anchors);
  ASSERT_EQ(gap.mean.size(), expected_gap.mean.size());
  for (size_t i = 0; i < gap.mean.size(); ++i) {
    EXPECT_NEAR(gap.mean[i], expected_gap.mean[i], 1e-4) << "head " << i;
    EXPECT_NEAR(gap.max[i], expected_gap.max[i], 1e-4) << "head " << i;
  }

  const double tolerance = c.out_dtype == DType::f32 ? 1e-5 : 1e-2;
  EXPECT_LE(test::relative_l2(out.view, expected), tolerance);  // NaN (an unwritten element) fails too
  EXPECT_LE(test::relative_l2(lse, expected_lse), 1e-5);
}

#ifndef DATTN_PARITY_SLOW
// Each case pins one corner the issue names; tolerances as in the file comment.
TEST(CpuParity, NamedCorners) {
  std::vector<ParityCase> cases;
  auto add = [&](auto edit) {
    ParityCase c;
    edit(c);
    cases.push_back(c);
  };
  for (AttentionMode mode : {AttentionMode::dense, AttentionMode::sparse, AttentionMode::recompute, AttentionMode::delta})
    add([&](ParityCase& c) { c.mode = mode; });
  add([](ParityCase& c) { c.n_q = c.n_kv = 203; c.gamma = 16; });                 // n not a multiple of gamma
  add([](ParityCase& c) { c.n_q = c.n_kv = 90; c.gamma = 64; });                  // n < tail: all dense
  add([](ParityCase& c) { c.n_q = 150; c.n_kv = 333; });                           // continued prefill
  add([](ParityCase& c) { c.n_q = 150; c.n_kv = 333; c.mode = AttentionMode::sparse; c.sink = 100; });
  add([](ParityCase& c) { c.window = 500; });                                      // window >= n
  add([](ParityCase& c) { c.sink = 0; });                                          // no sink
  add([](ParityCase& c) { c.sink = 0; c.window = 1; c.mode = AttentionMode::sparse; });  // each row sees itself only
  add([](ParityCase& c) { c.gamma = 1; c.n_q = c.n_kv = 180; });                   // gamma = 1
  add([](ParityCase& c) { c.gamma = 64; c.n_q = c.n_kv = 330; });                 // gamma > tile height: split blocks
  add([](ParityCase& c) { c.gamma = 7; c.tail_min = 3; });                         // short tail, odd gamma
  for (int64_t group : {1, 2, 4, 8}) add([&](ParityCase& c) { c.h_kv = 2; c.h_q = 2 * group; });
  for (int64_t d : {32, 64, 80, 128, 256, 33}) add([&](ParityCase& c) { c.d = d; c.n_q = c.n_kv = 150; });
  for (int64_t batch : {2, 3}) add([&](ParityCase& c) { c.batch = batch; c.n_q = c.n_kv = 140; });
  add([](ParityCase& c) { c.layout = Layout::heads_major; c.h_kv = 2; });
  add([](ParityCase& c) { c.layout = Layout::strided_dim; c.d = 40; });
  add([](ParityCase& c) { c.dtype = DType::bf16; });
  add([](ParityCase& c) { c.dtype = DType::f16; });
  add([](ParityCase& c) { c.dtype = DType::bf16; c.out_dtype = DType::bf16; });
  add([](ParityCase& c) { c.dtype = DType::f16; c.out_dtype = DType::f16; c.layout = Layout::heads_major; });
  add([](ParityCase& c) { c.dtype = DType::f16; c.layout = Layout::strided_dim; });
  // block top-k: query blocks cutting gamma blocks and the reverse, key blocks unlike the CPU's 96-key tiles,
  // GQA, continued prefill, reduced dtypes
  auto topk = [](ParityCase& c) { c.pattern = KeyPattern::block_topk; c.block_q = 32; c.block_k = 16; c.topk = 3; c.window = 20; };
  for (AttentionMode mode : {AttentionMode::sparse, AttentionMode::recompute, AttentionMode::delta})
    add([&](ParityCase& c) { topk(c); c.mode = mode; });
  add([&](ParityCase& c) { topk(c); c.block_q = 24; c.gamma = 16; });
  add([&](ParityCase& c) { topk(c); c.block_q = 8; c.gamma = 32; c.block_k = 40; });
  add([&](ParityCase& c) { topk(c); c.block_q = 64; c.gamma = 64; c.n_q = c.n_kv = 330; c.h_q = 8; c.h_kv = 2; });
  add([&](ParityCase& c) { topk(c); c.n_q = 150; c.n_kv = 333; c.sink = 0; });
  add([&](ParityCase& c) { topk(c); c.topk = 0; c.sink = 40; c.window = 1; });
  add([&](ParityCase& c) { topk(c); c.dtype = DType::bf16; c.out_dtype = DType::bf16; c.layout = Layout::heads_major; });
  // the interpolate variant on both patterns
  add([](ParityCase& c) { c.variant = DeltaVariant::interpolate; });
  add([](ParityCase& c) { c.variant = DeltaVariant::interpolate; c.gamma = 64; c.n_q = c.n_kv = 330; });
  add([&](ParityCase& c) { topk(c); c.variant = DeltaVariant::interpolate; c.dtype = DType::f16; c.out_dtype = DType::f16; });
  uint32_t seed = 1;
  for (const ParityCase& c : cases) check_parity(c, seed++);
}

// A random sweep over everything at once; sizes shrink so each case stays well under a second.
TEST(CpuParity, RandomisedSweep) {
  std::mt19937 rng(20250);
  auto pick = [&](auto... options) {
    const std::array values{options...};
    return values[std::uniform_int_distribution<size_t>(0, values.size() - 1)(rng)];
  };
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  for (int i = 0; i < 40; ++i) {
    ParityCase c;
    c.batch = uniform(1, 3);
    c.h_kv = uniform(1, 2);
    c.h_q = c.h_kv * pick(int64_t(1), int64_t(2), int64_t(4), int64_t(8));
    c.d = pick(int64_t(32), int64_t(64), int64_t(80), int64_t(128), int64_t(256), int64_t(24));
    c.n_q = uniform(1, 320);
    c.n_kv = c.n_q + (uniform(0, 2) == 0 ? uniform(1, 200) : 0);
    while (c.n_q > 8 && double(c.batch * c.h_q * c.d) * double(c.n_kv) * double(c.n_q) > 6e7) c.n_q = c.n_q * 3 / 4;
    c.n_kv = std::max(c.n_kv, c.n_q);
    c.mode = pick(AttentionMode::dense, AttentionMode::sparse, AttentionMode::recompute, AttentionMode::delta,
                  AttentionMode::delta);
    c.window = pick(int64_t(1), int64_t(16), int64_t(70), int64_t(100000));
    c.sink = pick(int64_t(0), int64_t(3), int64_t(40));
    c.gamma = pick(int64_t(1), int64_t(5), int64_t(16), int64_t(32), int64_t(64));
    c.tail_min = pick(int64_t(-1), int64_t(0), int64_t(10));
    c.dtype = pick(DType::f32, DType::f32, DType::bf16, DType::f16);
    c.out_dtype = pick(DType::f32, DType::f32, c.dtype);
    c.layout = pick(Layout::contiguous, Layout::contiguous, Layout::heads_major, Layout::strided_dim);
    c.pattern = pick(KeyPattern::window_sink, KeyPattern::block_topk);
    c.block_q = pick(int64_t(1), int64_t(16), int64_t(64));
    c.block_k = pick(int64_t(1), int64_t(16), int64_t(64));
    c.topk = pick(int64_t(0), int64_t(2), int64_t(1000));
    c.variant = pick(DeltaVariant::repeat, DeltaVariant::interpolate);
    check_parity(c, 1000 + uint32_t(i));
  }
}

#else
// Longer sequences: many key blocks per tile, separate sink and window ranges, sub-tiled gamma blocks.
// Same tolerances as above.
TEST(CpuParitySlow, LongSequences) {
  ParityCase c;
  c.n_q = c.n_kv = 1500;
  c.h_q = 4;
  c.h_kv = 1;
  c.d = 128;
  c.window = 256;
  c.sink = 64;
  c.gamma = 64;
  for (AttentionMode mode : {AttentionMode::dense, AttentionMode::sparse, AttentionMode::recompute, AttentionMode::delta}) {
    c.mode = mode;
    check_parity(c, 77);
  }
  c.n_q = 700;
  c.n_kv = 1900;  // continued prefill with a long cache
  c.dtype = DType::bf16;
  check_parity(c, 78);
  c.pattern = KeyPattern::block_topk;  // many key blocks to choose from
  c.window = 64;
  c.topk = 4;
  for (DeltaVariant variant : {DeltaVariant::repeat, DeltaVariant::interpolate}) {
    c.variant = variant;
    check_parity(c, 79);
  }
}
#endif

}  // namespace
}  // namespace dattn
