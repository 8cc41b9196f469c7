// Parity cases: each backend against the fp64 reference (check_parity), one corner per case, then a
// randomised sweep over everything the backend computes.
#include <algorithm>

#include "backend_cases.h"

namespace dattn::test {
namespace {

// The base call (b1 n200 hq4 hkv1 d64, delta w48 s8 g16, the backend's input type) with one edit.
template <typename Edit>
ParityCall call(Edit edit) {
  ParityCall c;
  c.params = with(AttentionMode::delta, 48, 8, 16);
  edit(c);
  return c;
}
void set_n(ParityCall& c, int64_t n_q, int64_t n_kv) {
  c.shape.n_q = n_q;
  c.shape.n_kv = n_kv;
}
// Block top-k with query blocks cutting gamma blocks and key blocks unlike the CPU's 96-key tiles.
void topk(ParityCall& c) {
  c.params.pattern = KeyPattern::block_topk;
  c.params.block_q = 32;
  c.params.block_k = 16;
  c.params.topk = 3;
  c.params.window = 20;
}
// Block top-k over 64-key blocks and 64-row query blocks, 2 of 6 candidate blocks kept, GQA 2.
void topk64(ParityCall& c) {
  topk(c);
  c.params.block_q = c.params.block_k = 64;
  c.params.topk = 2;
  set_n(c, 450, 450);
  c.shape.h_kv = 2;
}
// The shorthand of the edge cases first written for the cuda kernels.
ParityCall edge(Shape shape, AttentionMode mode, int64_t window, int64_t sink, int64_t gamma, DType dtype,
                DType out_dtype, Layout layout) {
  ParityCall c;
  c.shape = shape;
  c.params = with(mode, window, sink, gamma);
  c.dtype = dtype;
  c.out_dtype = out_dtype;
  c.layout = layout;
  return c;
}

std::vector<std::pair<std::string, ParityCall>> named_calls() {
  using M = AttentionMode;
  const DType bf = DType::bf16, hf = DType::f16, f32 = DType::f32;
  const Layout seq = Layout::contiguous, hm = Layout::heads_major;
  std::vector<std::pair<std::string, ParityCall>> calls = {
      {"mode_dense", call([](ParityCall& c) { c.params.mode = M::dense; })},
      {"mode_sparse", call([](ParityCall& c) { c.params.mode = M::sparse; })},
      {"mode_recompute", call([](ParityCall& c) { c.params.mode = M::recompute; })},
      {"mode_delta", call([](ParityCall&) {})},
      {"n_not_a_multiple_of_gamma", call([](ParityCall& c) { set_n(c, 203, 203); })},
      {"n_below_the_tail_all_dense", call([](ParityCall& c) { set_n(c, 90, 90); c.params.gamma = 64; })},
      {"continued_prefill", call([](ParityCall& c) { set_n(c, 150, 333); })},
      {"continued_prefill_sparse_long_sink",
       call([](ParityCall& c) { set_n(c, 150, 333); c.params.mode = M::sparse; c.params.sink = 100; })},
      {"window_beyond_n", call([](ParityCall& c) { c.params.window = 500; })},
      {"no_sink", call([](ParityCall& c) { c.params.sink = 0; })},
      {"each_row_sees_itself_only",
       call([](ParityCall& c) { c.params.sink = 0; c.params.window = 1; c.params.mode = M::sparse; })},
      {"gamma_one", call([](ParityCall& c) { c.params.gamma = 1; set_n(c, 180, 180); })},
      {"gamma_above_the_tile_height", call([](ParityCall& c) { c.params.gamma = 64; set_n(c, 330, 330); })},
      {"short_tail_odd_gamma", call([](ParityCall& c) { c.params.gamma = 7; c.params.tail_min = 3; })},
      {"batch_2", call([](ParityCall& c) { c.shape.batch = 2; set_n(c, 140, 140); })},
      {"batch_3", call([](ParityCall& c) { c.shape.batch = 3; set_n(c, 140, 140); })},
      {"layout_heads_major", call([](ParityCall& c) { c.layout = Layout::heads_major; c.shape.h_kv = 2; })},
      {"layout_strided_dim", call([](ParityCall& c) { c.layout = Layout::strided_dim; c.shape.d = 40; })},
      {"bf16_in_f32_out", call([](ParityCall& c) { c.dtype = DType::bf16; })},
      {"f16_in_f32_out", call([](ParityCall& c) { c.dtype = DType::f16; })},
      {"bf16_in_bf16_out", call([](ParityCall& c) { c.dtype = DType::bf16; c.out_dtype = DType::bf16; })},
      {"f16_in_f16_out_heads_major",
       call([](ParityCall& c) { c.dtype = c.out_dtype = DType::f16; c.layout = Layout::heads_major; })},
      {"f16_strided_dim", call([](ParityCall& c) { c.dtype = DType::f16; c.layout = Layout::strided_dim; })},
      {"fp32_inputs", call([](ParityCall& c) { c.dtype = DType::f32; })},
      {"topk_sparse", call([](ParityCall& c) { topk(c); c.params.mode = M::sparse; })},
      {"topk_recompute", call([](ParityCall& c) { topk(c); c.params.mode = M::recompute; })},
      {"topk_delta", call([](ParityCall& c) { topk(c); })},
      {"topk_query_blocks_cut_gamma_blocks", call([](ParityCall& c) { topk(c); c.params.block_q = 24; })},
      {"topk_gamma_blocks_cut_query_blocks",
       call([](ParityCall& c) { topk(c); c.params.block_q = 8; c.params.gamma = 32; c.params.block_k = 40; })},
      {"topk_gqa", call([](ParityCall& c) {
         topk(c);
         c.params.block_q = c.params.gamma = 64;
         set_n(c, 330, 330);
         c.shape.h_q = 8;
         c.shape.h_kv = 2;
       })},
      {"topk_continued_prefill", call([](ParityCall& c) { topk(c); set_n(c, 150, 333); c.params.sink = 0; })},
      {"topk_zero", call([](ParityCall& c) { topk(c); c.params.topk = 0; c.params.sink = 40; c.params.window = 1; })},
      {"topk_bf16_heads_major",
       call([](ParityCall& c) { topk(c); c.dtype = c.out_dtype = DType::bf16; c.layout = Layout::heads_major; })},
      // 64-key blocks and query blocks of 64 rows (the unit of the cuda kernels), GQA
      {"topk_blocks_of_64_sparse", call([](ParityCall& c) { topk64(c); c.params.mode = M::sparse; })},
      {"topk_blocks_of_64_recompute", call([](ParityCall& c) { topk64(c); c.params.mode = M::recompute; })},
      {"topk_blocks_of_64_delta", call([](ParityCall& c) { topk64(c); })},
      {"interpolate", call([](ParityCall& c) { c.params.delta_variant = DeltaVariant::interpolate; })},
      {"interpolate_long_blocks", call([](ParityCall& c) {
         c.params.delta_variant = DeltaVariant::interpolate;
         c.params.gamma = 64;
         set_n(c, 330, 330);
       })},
      {"topk_interpolate_f16", call([](ParityCall& c) {
         topk(c);
         c.params.delta_variant = DeltaVariant::interpolate;
         c.dtype = c.out_dtype = DType::f16;
       })},
      // shapes of the cuda kernels' tiles and anchor tiles
      {"cuda_n_not_a_multiple_of_gamma", edge({1, 333, 333, 4, 2, 64}, M::delta, 64, 16, 16, bf, f32, seq)},
      {"cuda_n_below_the_tail", edge({1, 100, 100, 4, 1, 128}, M::delta, 32, 8, 64, bf, f32, seq)},
      {"cuda_continued_prefill", edge({2, 200, 517, 8, 2, 64}, M::delta, 48, 20, 8, hf, f32, seq)},
      {"cuda_window_beyond_n", edge({1, 300, 300, 2, 2, 128}, M::sparse, 1000, 0, 64, bf, f32, seq)},
      {"cuda_no_sink_bf16_out", edge({1, 400, 400, 4, 4, 64}, M::sparse, 70, 0, 64, bf, bf, seq)},
      {"cuda_gamma_one", edge({1, 260, 260, 2, 1, 64}, M::delta, 40, 10, 1, bf, f32, seq)},
      {"cuda_gqa8_batch3_heads_major", edge({3, 190, 190, 8, 1, 128}, M::recompute, 50, 5, 4, hf, hf, hm)},
      {"cuda_two_anchor_tiles", edge({1, 500, 500, 2, 1, 64}, M::delta, 96, 33, 4, bf, f32, seq)},
      {"cuda_anchors_further_apart_than_the_window",
       edge({1, 1200, 1200, 2, 2, 64}, M::delta, 50, 70, 128, bf, f32, hm)},
      {"cuda_dense_continued_prefill", edge({2, 129, 700, 4, 2, 128}, M::dense, 1, 0, 1, bf, f32, hm)},
      {"cuda_exactly_one_tile", edge({1, 64, 64, 1, 1, 64}, M::dense, 1, 0, 1, hf, f32, seq)},
      {"cuda_one_row", edge({1, 1, 77, 2, 1, 128}, M::delta, 16, 4, 64, bf, f32, seq)},
  };
  for (int64_t group : {1, 2, 4, 8})
    calls.push_back({"gqa_group_" + std::to_string(group),
                     call([&](ParityCall& c) { c.shape.h_kv = 2; c.shape.h_q = 2 * group; })});
  for (int64_t d : {32, 64, 80, 128, 256, 33})
    calls.push_back({"head_dim_" + std::to_string(d), call([&](ParityCall& c) { c.shape.d = d; set_n(c, 150, 150); })});
  return calls;
}

// Draws one call from everything any backend computes; sizes shrink so the reference takes well under a second.
ParityCall random_call(RandomPick& pick) {
  ParityCall c;
  Shape& s = c.shape;
  AttentionParams& p = c.params;
  s.batch = pick.between(1, 3);
  s.h_kv = pick.between(1, 2);
  s.h_q = s.h_kv * pick.one_of(int64_t(1), 2, 4, 8);
  s.d = pick.one_of(int64_t(32), 64, 80, 128, 256, 24);
  s.n_q = pick.between(1, 320);
  s.n_kv = s.n_q + (pick.between(0, 2) == 0 ? pick.between(1, 200) : 0);
  while (s.n_q > 8 && double(s.batch * s.h_q * s.d) * double(s.n_kv) * double(s.n_q) > 6e7) s.n_q = s.n_q * 3 / 4;
  s.n_kv = std::max(s.n_kv, s.n_q);
  p.mode = pick.one_of(AttentionMode::dense, AttentionMode::sparse, AttentionMode::recompute, AttentionMode::delta,
                       AttentionMode::delta);
  p.window = pick.one_of(int64_t(1), 16, 70, 100000, pick.between(1, 200));
  p.sink = pick.one_of(int64_t(0), 3, 40, pick.between(1, 100), 1024);
  p.gamma = pick.one_of(int64_t(1), 3, 5, 16, 32, 64, 100);
  p.tail_min = pick.one_of(int64_t(-1), 0, 10);
  c.dtype = pick.one_of(DType::f32, DType::f32, DType::bf16, DType::f16);
  c.out_dtype = pick.one_of(DType::f32, DType::f32, *c.dtype);
  c.layout = pick.one_of(Layout::contiguous, Layout::contiguous, Layout::heads_major, Layout::strided_dim);
  p.pattern = pick.one_of(KeyPattern::window_sink, KeyPattern::block_topk);
  p.block_q = pick.one_of(int64_t(1), 16, 64);
  p.block_k = pick.one_of(int64_t(1), 16, 64);
  p.topk = pick.one_of(int64_t(0), 2, 1000);
  p.delta_variant = pick.one_of(DeltaVariant::repeat, DeltaVariant::interpolate);
  return c;
}

// 40 calls the backend computes (refusal() filters the draws, so a feature enabled there joins the sweep).
void randomised_sweep(const CaseRunner& runner) {
  RandomPick pick(20250);
  for (uint32_t i = 0; i < 40; ++i) {
    ParityCall c = random_call(pick);
    while (refusal(runner.backend().backend, facts_of(runner, c))) c = random_call(pick);
    check_parity(runner, c, 1000 + i);
  }
}

// Longer sequences: many key blocks per tile, separate sink and window ranges, sub-tiled gamma blocks.
void long_sequences(const CaseRunner& runner) {
  ParityCall c;
  c.shape = {1, 1500, 1500, 4, 1, 128};
  c.params = with(AttentionMode::dense, 256, 64, 64);
  using M = AttentionMode;
  for (AttentionMode mode : {M::dense, M::sparse, M::recompute, M::delta}) {
    c.params.mode = mode;
    check_parity(runner, c, 77);
  }
  c.shape.n_q = 700;
  c.shape.n_kv = 1900;  // continued prefill with a long cache
  c.dtype = DType::bf16;
  check_parity(runner, c, 78);
  c.params.pattern = KeyPattern::block_topk;  // many key blocks to choose from
  c.params.window = 64;
  c.params.topk = 4;
  for (DeltaVariant variant : {DeltaVariant::repeat, DeltaVariant::interpolate}) {
    c.params.delta_variant = variant;
    check_parity(runner, c, 79);
  }
}

}  // namespace

const std::vector<BackendCase>& parity_cases() {
  static const std::vector<BackendCase> cases = [] {
    std::vector<BackendCase> list;
    uint32_t seed = 1;
    for (auto& [name, c] : named_calls())
      list.push_back({"parity_" + name, CaseKind::parity, CaseSpeed::fast,
                      [c = c, seed = seed++](const CaseRunner& runner) { check_parity(runner, c, seed); }});
    list.push_back({"parity_randomised_sweep", CaseKind::parity, CaseSpeed::fast, randomised_sweep});
    list.push_back({"parity_long_sequences", CaseKind::parity, CaseSpeed::slow, long_sequences});
    return list;
  }();
  return cases;
}

}  // namespace dattn::test
