// Dense logits of every fixture against transformers, and the equivalences of the session's code paths:
// chunked prefill, last-row-only logits and single-token decode all give the one-shot logits.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "dattn/core/error.h"

#include "dattn/model/session.h"
#include "model_fixtures.h"

namespace dattn::model {
namespace {

using test::relative_l2;

constexpr double kTolerance = 1e-4;  // relative L2 vs transformers (fp32 both sides)
constexpr double kSameCode = 1e-5;   // between our own code paths (only summation order differs)

class FixtureLogits : public ::testing::TestWithParam<std::string> {};

SessionOptions dense_options(int64_t context, int64_t chunk) {
  SessionOptions o;
  o.context = context;
  o.chunk_size = chunk;
  o.attention.params.mode = AttentionMode::dense;
  return o;
}

TEST_P(FixtureLogits, MatchTransformers) {
  auto model = test::load_fixture_model(GetParam());
  const int64_t vocab = model->config().vocab_size;
  for (const auto& c : test::load_cases(GetParam())) {
    Session session(model, dense_options(64, 4096));
    std::vector<float> logits = session.prefill(c.ids, {.all_logits = true});
    ASSERT_EQ(logits.size(), c.ids.size() * size_t(vocab));
    double err = relative_l2(logits, c.logits);
    RecordProperty("relative_l2_" + std::to_string(c.ids.size()), fmt::format("{:.3g}", err));
    EXPECT_LE(err, kTolerance) << GetParam() << " with " << c.ids.size() << " tokens";
    // per position too, so that one bad row cannot hide in the average
    for (size_t row = 0; row < c.ids.size(); ++row)
      EXPECT_LE(relative_l2(logits.data() + row * vocab, c.logits.data() + row * vocab, size_t(vocab)), 10 * kTolerance)
          << GetParam() << " row " << row;
  }
}

TEST_P(FixtureLogits, ChunkedPrefillEqualsOneShot) {
  auto model = test::load_fixture_model(GetParam());
  const auto c = test::load_cases(GetParam()).back();
  Session one_shot(model, dense_options(64, 4096));
  std::vector<float> expected = one_shot.prefill(c.ids, {.all_logits = true});
  for (int64_t chunk : {1, 3, 7, 16}) {
    Session chunked(model, dense_options(64, chunk));
    int64_t progress_calls = 0, last_done = 0;
    PrefillOptions options{.all_logits = true, .on_progress = [&](int64_t done, int64_t total) {
                             ++progress_calls;
                             EXPECT_GT(done, last_done);
                             EXPECT_EQ(total, int64_t(c.ids.size()));
                             last_done = done;
                           }};
    std::vector<float> logits = chunked.prefill(c.ids, options);
    EXPECT_LE(relative_l2(logits, expected), kSameCode) << "chunk " << chunk;
    EXPECT_EQ(progress_calls, (int64_t(c.ids.size()) + chunk - 1) / chunk);
    EXPECT_EQ(last_done, int64_t(c.ids.size()));
  }
}

TEST_P(FixtureLogits, SplitPrefillCallsAndLastRowLogits) {
  auto model = test::load_fixture_model(GetParam());
  const int64_t vocab = model->config().vocab_size;
  const auto c = test::load_cases(GetParam()).back();
  const size_t split = c.ids.size() / 3;
  Session session(model, dense_options(64, 5));
  std::vector<float> first = session.prefill(std::span(c.ids).first(split));
  ASSERT_EQ(first.size(), size_t(vocab));
  EXPECT_LE(relative_l2(first.data(), c.logits.data() + (split - 1) * vocab, size_t(vocab)), kTolerance);
  std::vector<float> rest = session.prefill(std::span(c.ids).subspan(split));
  EXPECT_EQ(session.position(), int64_t(c.ids.size()));
  EXPECT_LE(relative_l2(rest.data(), c.logits.data() + (c.ids.size() - 1) * vocab, size_t(vocab)), kTolerance);
}

TEST_P(FixtureLogits, DecodeStepsEqualFullSequence) {
  auto model = test::load_fixture_model(GetParam());
  const int64_t vocab = model->config().vocab_size;
  const auto c = test::load_cases(GetParam()).back();
  Session session(model, dense_options(int64_t(c.ids.size()), 8));
  const size_t prompt = 6;
  session.prefill(std::span(c.ids).first(prompt));
  for (size_t pos = prompt; pos < c.ids.size(); ++pos) {
    std::vector<float> logits = session.decode(c.ids[pos]);
    EXPECT_LE(relative_l2(logits.data(), c.logits.data() + pos * vocab, size_t(vocab)), 10 * kTolerance)
        << "position " << pos;
  }
  // the context is full now: one more token is an error, not an overflow
  EXPECT_THROW(session.decode(c.ids[0]), Error);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureLogits, ::testing::ValuesIn(test::fixture_names()),
                         [](const auto& info) { return info.param; });

TEST(FixtureSet, CoversEveryArchitectureAndWeightFormat) {
  std::set<Architecture> architectures;
  std::set<StDType> dtypes;
  bool tied = false, untied = false, sharded = false, llama3 = false, yarn = false, qkv_bias = false, qk_norm = false;
  for (const std::string& name : test::fixture_names()) {
    ModelConfig c = load_model_config(test::models_dir() / name);
    architectures.insert(c.architecture);
    (c.tie_word_embeddings ? tied : untied) = true;
    llama3 |= c.rope.type == RopeConfig::Type::llama3;
    yarn |= c.rope.type == RopeConfig::Type::yarn;
    qkv_bias |= c.qkv_bias;
    qk_norm |= c.qk_norm;
    sharded |= std::filesystem::exists(test::models_dir() / name / "model.safetensors.index.json");
    Checkpoint ckpt = Checkpoint::open(test::models_dir() / name);
    dtypes.insert(ckpt.get("model.norm.weight").info->dtype);
  }
  EXPECT_EQ(architectures.size(), 4u);
  EXPECT_EQ(dtypes, (std::set<StDType>{StDType::f32, StDType::bf16, StDType::f16}));
  EXPECT_TRUE(tied && untied && sharded && llama3 && yarn && qkv_bias && qk_norm);
}

}  // namespace
}  // namespace dattn::model
