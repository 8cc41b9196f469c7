// Greedy generation on the GPU against the CPU session, and the sparse prefill modes (sparse, recompute,
// delta) against the CPU session's same modes.
#include <algorithm>
#include <cmath>
#include <functional>

#include <fmt/format.h>

#include "cuda_model_fixtures.h"
#include "dattn/model/generate.h"
#include "dattn/model/sampler.h"

namespace dattn::model::cuda_test {
namespace {

using test::relative_l2;

class GpuFixtureGeneration : public ::testing::TestWithParam<std::string> {};

double top2_margin(const std::vector<float>& logits) {
  std::vector<float> top(2);
  std::partial_sort_copy(logits.begin(), logits.end(), top.begin(), top.end(), std::greater<float>());
  return double(top[0]) - double(top[1]);
}

double rms(const std::vector<float>& v) {
  double sum = 0;
  for (float x : v) sum += double(x) * double(x);
  return std::sqrt(sum / double(v.size()));
}

// 16 greedy tokens through generate() on the GPU equal the CPU session's. A step where the CPU's own top-2
// margin is below what the bf16 row budget lets two logits move (2 * kBf16RowBudget * rms of the row) is a
// near-tie: there the continuations may part, and the comparison ends. The fixtures with clear winners
// (llama3_tied_sharded, qwen2_bias_tied) have none, so all 16 tokens must match.
TEST_P(GpuFixtureGeneration, GreedyContinuationEqualsCpu) {
  DATTN_SKIP_WITHOUT_GPU();
  constexpr int64_t kTokens = 16;
  for (const auto& c : test::load_cases(GetParam())) {
    auto cpu = cpu_session(GetParam(), options_for(AttentionMode::dense, 64, 4096));
    std::vector<int32_t> cpu_tokens;
    std::vector<bool> near_tie;
    std::vector<float> logits = cpu->prefill(c.ids);
    for (int64_t i = 0; i < kTokens; ++i) {
      cpu_tokens.push_back(argmax(logits));
      near_tie.push_back(top2_margin(logits) < 2 * kBf16RowBudget * rms(logits));
      if (i + 1 < kTokens) logits = cpu->decode(cpu_tokens.back());
    }

    auto gpu = gpu_session(GetParam(), options_for(AttentionMode::dense, 64, 4096));
    const GenerateResult g = generate(*gpu, c.ids, {.max_new_tokens = kTokens});
    ASSERT_EQ(g.tokens.size(), size_t(kTokens));
    int64_t compared = 0;
    for (; compared < kTokens; ++compared) {
      if (g.tokens[size_t(compared)] == cpu_tokens[size_t(compared)]) continue;
      EXPECT_TRUE(near_tie[size_t(compared)])
          << GetParam() << ": GPU token " << g.tokens[size_t(compared)] << " != CPU token "
          << cpu_tokens[size_t(compared)] << " at step " << compared << " with a clear CPU margin";
      break;
    }
    RecordProperty(fmt::format("equal_tokens_{}", c.ids.size()), int(compared));
    if (std::none_of(near_tie.begin(), near_tie.end(), [](bool b) { return b; })) EXPECT_EQ(compared, kTokens);
  }
}

// The GPU's sparse prefill modes equal the CPU session's same modes within the bf16 budget, and are
// measurably not dense (small window and sink, so the modes really differ on 40 tokens).
TEST_P(GpuFixtureGeneration, SparseModesMatchCpuModes) {
  DATTN_SKIP_WITHOUT_GPU();
  const auto c = test::load_cases(GetParam()).back();
  for (AttentionMode mode : {AttentionMode::sparse, AttentionMode::recompute, AttentionMode::delta}) {
    for (int64_t chunk : {int64_t(64), int64_t(16)}) {
      SessionOptions o = options_for(mode, 64, chunk);
      o.attention.params.window = 4;
      o.attention.params.sink = 2;
      o.attention.params.gamma = 2;
      o.attention.params.tail_min = 4;
      o.attention.dense_first_layers = 1;
      const std::vector<float> gpu = gpu_session(GetParam(), o)->prefill(c.ids, {.all_logits = true});
      const std::vector<float> cpu = cpu_session(GetParam(), o)->prefill(c.ids, {.all_logits = true});
      const std::vector<float> cpu_dense =
          cpu_session(GetParam(), options_for(AttentionMode::dense, 64, chunk))->prefill(c.ids, {.all_logits = true});
      const double err = relative_l2(gpu, cpu), mode_effect = relative_l2(cpu, cpu_dense);
      const std::string what = fmt::format("{} {} chunk {}", GetParam(), mode_name(mode), chunk);
      RecordProperty(fmt::format("relative_l2_{}_chunk{}", mode_name(mode), chunk), fmt::format("{:.3g}", err));
      EXPECT_LE(err, kBf16Budget) << what << " (the mode changes the CPU logits by " << mode_effect << ")";
      if (mode_effect > 2 * kBf16Budget)
        EXPECT_LT(err, relative_l2(gpu, cpu_dense)) << what << ": the GPU result is nearer dense than the mode";
    }
  }
}

// The anchor gap of every delta layer as the CPU session measures it, and the adaptive policy switching the
// same layers. Budget: the gap is ||dense(a) - sparse(a)|| / ||dense(a)||, so its error is the two outputs'
// rounding relative to ||dense(a)||, of the order of the bf16 logit budget (inputs drift through the layers
// below as the logits do): 2 * kBf16Budget absolute. The threshold is put in the widest space between the
// CPU's first-chunk gaps, so no layer sits within that budget of it.
TEST_P(GpuFixtureGeneration, AnchorGapsAndAdaptivePolicyMatchCpu) {
  DATTN_SKIP_WITHOUT_GPU();
  constexpr int64_t kChunk = 16;
  const auto c = test::load_cases(GetParam()).back();
  ASSERT_GT(int64_t(c.ids.size()), kChunk);
  SessionOptions o = options_for(AttentionMode::delta, 64, kChunk);
  o.attention.params.window = 4;
  o.attention.params.sink = 2;
  o.attention.params.gamma = 2;
  o.attention.params.tail_min = 4;  // the default dense tail would cover a whole 16-row chunk: no anchors
  o.attention.report_anchor_gap = true;

  auto cpu = cpu_session(GetParam(), o);
  auto gpu = gpu_session(GetParam(), o);
  cpu->prefill(c.ids);
  gpu->prefill(c.ids);
  const std::vector<LayerAnchorGap> cg = cpu->anchor_gaps(), gg = gpu->anchor_gaps();
  ASSERT_EQ(gg.size(), cg.size());
  for (size_t l = 0; l < cg.size(); ++l) {
    ASSERT_GT(cg[l].samples, 0) << "layer " << l;
    EXPECT_EQ(gg[l].samples, cg[l].samples) << "layer " << l;
    EXPECT_NEAR(gg[l].mean, cg[l].mean, 2 * kBf16Budget) << "layer " << l;
    EXPECT_NEAR(gg[l].max_head_mean, cg[l].max_head_mean, 2 * kBf16Budget) << "layer " << l;
  }

  auto first = cpu_session(GetParam(), o);  // the first chunk alone: the gaps the policy decides on
  first->prefill(std::span<const int32_t>(c.ids.data(), size_t(kChunk)));
  std::vector<double> means;
  for (const LayerAnchorGap& g : first->anchor_gaps()) means.push_back(g.mean);
  std::sort(means.begin(), means.end());
  double threshold = 0, space = 0;
  for (size_t i = 0; i + 1 < means.size(); ++i)
    if (means[i + 1] - means[i] > space) space = means[i + 1] - means[i], threshold = (means[i] + means[i + 1]) / 2;
  // too close together for a threshold that no layer's bf16 gap could cross: the gaps above are the test
  if (space < 4 * kBf16Budget) return;
  o.attention.adaptive_gap_threshold = threshold;
  const std::vector<float> cpu_logits = cpu_session(GetParam(), o)->prefill(c.ids, {.all_logits = true});
  auto cpu_adaptive = cpu_session(GetParam(), o);
  cpu_adaptive->prefill(c.ids);
  auto gpu_adaptive = gpu_session(GetParam(), o);
  const std::vector<float> gpu_logits = gpu_adaptive->prefill(c.ids, {.all_logits = true});
  int switched = 0;
  for (size_t l = 0; l < cg.size(); ++l) {
    EXPECT_EQ(gpu_adaptive->anchor_gaps()[l].went_dense, cpu_adaptive->anchor_gaps()[l].went_dense) << "layer " << l;
    switched += cpu_adaptive->anchor_gaps()[l].went_dense;
  }
  EXPECT_GT(switched, 0);
  EXPECT_LE(relative_l2(gpu_logits, cpu_logits), kBf16Budget);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GpuFixtureGeneration, ::testing::ValuesIn(test::fixture_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace dattn::model::cuda_test
