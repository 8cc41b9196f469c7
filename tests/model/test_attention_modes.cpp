// Prefill attention modes inside the model: plumbing of mode/window/sink/gamma and per-layer overrides,
// checked against the operator's reference backend and the spec's invariants at model level.
#include <gtest/gtest.h>

#include "dattn/core/error.h"
#include "dattn/model/session.h"
#include "model_fixtures.h"

namespace dattn::model {
namespace {

using test::relative_l2;

const char* kModel = "llama_linear_untied";

std::vector<int32_t> long_ids(int64_t n, int64_t vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[size_t(i)] = int32_t((i * 37 + 11) % vocab);
  return ids;
}

std::vector<float> run(const std::shared_ptr<const Model>& model, const std::vector<int32_t>& ids, AttentionPlan plan,
                       int64_t chunk = 4096) {
  SessionOptions o;
  o.context = int64_t(ids.size()) + 4;
  o.chunk_size = chunk;
  o.attention = std::move(plan);
  Session s(model, o);
  return s.prefill(ids, {.all_logits = true});
}

AttentionPlan plan(AttentionMode mode, int64_t window, int64_t sink, int64_t gamma, Backend backend = Backend::automatic) {
  AttentionPlan p;
  p.params.mode = mode;
  p.params.window = window;
  p.params.sink = sink;
  p.params.gamma = gamma;
  p.params.tail_min = 4;  // short test sequences still get anchors and sparse rows
  p.params.backend = backend;
  return p;
}

class ModelModes : public ::testing::Test {
 protected:
  std::shared_ptr<const Model> model = test::load_fixture_model(kModel);
  std::vector<int32_t> ids = long_ids(96, model->config().vocab_size);
  std::vector<float> dense = run(model, ids, plan(AttentionMode::dense, 1, 0, 1));
};

TEST_F(ModelModes, EveryModeMatchesTheReferenceBackend) {
  for (AttentionMode mode : {AttentionMode::sparse, AttentionMode::recompute, AttentionMode::delta}) {
    for (int64_t chunk : {int64_t(4096), int64_t(40)}) {
      auto ours = run(model, ids, plan(mode, 8, 4, 4), chunk);
      auto reference = run(model, ids, plan(mode, 8, 4, 4, Backend::reference), chunk);
      EXPECT_LE(relative_l2(ours, reference), 1e-5) << mode_name(mode) << " chunk " << chunk;
    }
  }
}

TEST_F(ModelModes, SparseWithWindowCoveringEverythingEqualsDense) {
  EXPECT_LE(relative_l2(run(model, ids, plan(AttentionMode::sparse, 96, 0, 4)), dense), 1e-5);
  EXPECT_LE(relative_l2(run(model, ids, plan(AttentionMode::sparse, 60, 40, 4)), dense), 1e-5);
}

TEST_F(ModelModes, DeltaWithGammaOneEqualsDense) {
  EXPECT_LE(relative_l2(run(model, ids, plan(AttentionMode::delta, 4, 2, 1)), dense), 1e-5);
}

TEST_F(ModelModes, NarrowWindowsChangeTheLogitsAndDeltaCorrectsTowardDense) {
  double sparse_err = relative_l2(run(model, ids, plan(AttentionMode::sparse, 8, 4, 4)), dense);
  double delta_err = relative_l2(run(model, ids, plan(AttentionMode::delta, 8, 4, 4)), dense);
  EXPECT_GT(sparse_err, 1e-3);  // the mode reaches the operator
  EXPECT_GT(delta_err, 1e-6);
  EXPECT_LT(delta_err, sparse_err);
}

TEST_F(ModelModes, DenseLayersOverrideTheMode) {
  const int64_t layers = model->config().num_layers;
  AttentionPlan all_dense = plan(AttentionMode::sparse, 8, 4, 4);
  all_dense.dense_first_layers = layers;
  EXPECT_LE(relative_l2(run(model, ids, all_dense), dense), 1e-6);

  AttentionPlan first_dense = plan(AttentionMode::sparse, 8, 4, 4);
  first_dense.dense_first_layers = 1;
  AttentionPlan via_override = plan(AttentionMode::sparse, 8, 4, 4);
  via_override.layer_overrides[0] = plan(AttentionMode::dense, 1, 0, 1).params;
  auto a = run(model, ids, first_dense), b = run(model, ids, via_override);
  EXPECT_EQ(a, b);
  EXPECT_GT(relative_l2(a, dense), 1e-4);
  EXPECT_GT(relative_l2(a, run(model, ids, plan(AttentionMode::sparse, 8, 4, 4))), 1e-4);
}

TEST_F(ModelModes, DecodeIsDenseWhateverThePrefillMode) {
  // The cache holds every token after a sparse prefill, so a decode step equals a dense one-row prefill.
  SessionOptions o;
  o.context = 128;
  o.attention = plan(AttentionMode::sparse, 8, 4, 4);
  const auto head = std::span(ids).first(ids.size() - 1);
  Session decoded(model, o);
  decoded.prefill(head);
  std::vector<float> step = decoded.decode(ids.back());

  Session dense_row(model, o);
  dense_row.prefill(head);
  dense_row.set_attention(plan(AttentionMode::dense, 1, 0, 1));
  EXPECT_LE(relative_l2(step, dense_row.prefill(std::span(ids).last(1))), 1e-6);

  Session sparse_row(model, o);  // a sparse one-row chunk sees only sink + window keys
  sparse_row.prefill(head);
  EXPECT_GT(relative_l2(step, sparse_row.prefill(std::span(ids).last(1))), 1e-3);
}

TEST(AttentionPlanText, LayerModesParse) {
  AttentionPlan p = plan(AttentionMode::delta, 16, 8, 4);
  p.dense_first_layers = 1;
  p.add_layer_modes("0-1:sparse,3:recompute");
  EXPECT_EQ(p.for_layer(0).mode, AttentionMode::sparse);  // an override wins over dense_first_layers
  EXPECT_EQ(p.for_layer(1).mode, AttentionMode::sparse);
  EXPECT_EQ(p.for_layer(1).window, 16);
  EXPECT_EQ(p.for_layer(2).mode, AttentionMode::delta);
  EXPECT_EQ(p.for_layer(3).mode, AttentionMode::recompute);
  AttentionPlan dense_first = plan(AttentionMode::delta, 16, 8, 4);
  dense_first.dense_first_layers = 2;
  EXPECT_EQ(dense_first.for_layer(1).mode, AttentionMode::dense);
  EXPECT_EQ(dense_first.for_layer(2).mode, AttentionMode::delta);
  for (const char* bad : {"0", "a:dense", "0:fast", "3-1:dense", "-1:dense", "0-:dense", "0:dense,,1:dense"}) {
    AttentionPlan q;
    EXPECT_THROW(q.add_layer_modes(bad), Error) << bad;
  }
}

TEST(ModelModeErrors, ContextTooLargeForMemory) {
  auto model = test::load_fixture_model(kModel);
  SessionOptions o;
  o.context = int64_t(1) << 40;
  EXPECT_THROW(Session(model, o), Error);
  o.context = 0;
  EXPECT_THROW(Session(model, o), Error);
  o.context = 16;
  o.chunk_size = 0;
  EXPECT_THROW(Session(model, o), Error);
}

TEST(ModelModeErrors, OverrideOfAMissingLayerIsRejected) {
  auto model = test::load_fixture_model(kModel);
  SessionOptions o;
  o.attention.layer_overrides[model->config().num_layers] = AttentionParams{};
  EXPECT_THROW(Session(model, o), Error);
}

// The block top-k pattern and the interpolate variant go through the runtime like any mode (chunked too).
TEST_F(ModelModes, BlockTopkAndInterpolateMatchTheReferenceBackend) {
  for (int64_t chunk : {int64_t(4096), int64_t(40)}) {
    AttentionPlan ours = plan(AttentionMode::delta, 8, 4, 4), reference = plan(AttentionMode::delta, 8, 4, 4, Backend::reference);
    for (AttentionPlan* p : {&ours, &reference}) {
      p->params.pattern = KeyPattern::block_topk;
      p->params.block_q = p->params.block_k = 8;
      p->params.topk = 2;
      p->params.delta_variant = DeltaVariant::interpolate;
    }
    EXPECT_LE(relative_l2(run(model, ids, ours, chunk), run(model, ids, reference, chunk)), 1e-5) << chunk;
  }
}

// The session reports each delta layer's anchor gap, and the adaptive policy turns a layer whose gap on the
// first chunk exceeds the threshold dense for the rest of the prompt: the same as prefilling the first chunk in
// delta and the rest in dense by hand.
TEST_F(ModelModes, AnchorGapIsReportedAndDrivesTheAdaptivePolicy) {
  const int64_t chunk = 40, layers = model->config().num_layers;
  SessionOptions o;
  o.context = int64_t(ids.size()) + 4;
  o.chunk_size = chunk;
  o.attention = plan(AttentionMode::delta, 8, 4, 4);
  o.attention.report_anchor_gap = true;
  o.attention.dense_first_layers = 1;
  Session reporting(model, o);
  reporting.prefill(ids);
  const auto gaps = reporting.anchor_gaps();
  ASSERT_EQ(int64_t(gaps.size()), layers);
  EXPECT_EQ(gaps[0].samples, 0) << "a dense layer has no anchors";
  for (int64_t layer = 1; layer < layers; ++layer) {
    EXPECT_GT(gaps[size_t(layer)].samples, 0);
    EXPECT_GT(gaps[size_t(layer)].mean, 0.0);
    EXPECT_GE(gaps[size_t(layer)].max_head_mean, gaps[size_t(layer)].mean * 0.999);
    EXPECT_FALSE(gaps[size_t(layer)].went_dense);
  }

  o.attention.report_anchor_gap = false;
  o.attention.adaptive_gap_threshold = 1e-9;  // every delta layer exceeds it
  Session adaptive(model, o);
  const auto adaptive_logits = adaptive.prefill(ids, {.all_logits = true});
  for (int64_t layer = 1; layer < layers; ++layer) EXPECT_TRUE(adaptive.anchor_gaps()[size_t(layer)].went_dense);

  o.attention.adaptive_gap_threshold = 0;
  Session by_hand(model, o);
  auto expected = by_hand.prefill(std::span(ids).first(size_t(chunk)), {.all_logits = true});
  by_hand.set_attention(plan(AttentionMode::dense, 1, 0, 1));
  const auto rest = by_hand.prefill(std::span(ids).subspan(size_t(chunk)), {.all_logits = true});
  expected.insert(expected.end(), rest.begin(), rest.end());
  EXPECT_EQ(adaptive_logits, expected);  // the same computations in the same order
  EXPECT_GT(relative_l2(adaptive_logits, run(model, ids, o.attention, chunk)), 1e-6) << "the policy changed something";
}

}  // namespace
}  // namespace dattn::model
