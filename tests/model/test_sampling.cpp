// Sampling and the generation loop: determinism per seed, the top-k / top-p cuts, greedy generation
// against argmax of full-sequence logits, stop tokens and context limits.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "dattn/core/error.h"
#include "dattn/model/generate.h"
#include "model_fixtures.h"

namespace dattn::model {
namespace {

const std::vector<float> kLogits = {0.5f, 2.0f, -1.0f, 1.9f, 0.0f, 3.0f, -4.0f, 1.0f};

std::vector<int32_t> draws(SamplingParams params, int n) {
  Sampler s(params);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(s.sample(kLogits));
  return out;
}

TEST(Sampler, GreedyIsArgmaxWithLowestIdOnTies) {
  EXPECT_EQ(draws({}, 3), (std::vector<int32_t>{5, 5, 5}));
  std::vector<float> tie = {1.0f, 3.0f, 3.0f};
  EXPECT_EQ(argmax(tie), 1);
}

TEST(Sampler, SameSeedSameTokensOtherSeedOtherTokens) {
  SamplingParams p{.temperature = 1.5, .seed = 42};
  auto a = draws(p, 200), b = draws(p, 200);
  EXPECT_EQ(a, b);
  p.seed = 43;
  EXPECT_NE(draws(p, 200), a);
}

TEST(Sampler, FrequenciesFollowTheSoftmax) {
  SamplingParams p{.temperature = 1.0, .seed = 7};
  std::map<int32_t, int> counts;
  const int n = 20000;
  for (int32_t t : draws(p, n)) ++counts[t];
  double total = 0;
  for (float l : kLogits) total += std::exp(double(l));
  for (size_t i = 0; i < kLogits.size(); ++i)
    EXPECT_NEAR(counts[int32_t(i)] / double(n), std::exp(double(kLogits[i])) / total, 0.015) << "token " << i;
}

TEST(Sampler, TopKKeepsOnlyTheKBest) {
  for (int32_t t : draws({.temperature = 5.0, .top_k = 3, .seed = 1}, 500)) EXPECT_TRUE(t == 5 || t == 1 || t == 3) << t;
  for (int32_t t : draws({.temperature = 5.0, .top_k = 1, .seed = 1}, 50)) EXPECT_EQ(t, 5);
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  // at temperature 1, p(5) ~ 0.50, p(1) ~ 0.11, p(3) ~ 0.10: top_p 0.55 keeps {5, 1}
  std::set<int32_t> seen;
  for (int32_t t : draws({.temperature = 1.0, .top_p = 0.55, .seed = 3}, 2000)) seen.insert(t);
  EXPECT_EQ(seen, (std::set<int32_t>{5, 1}));
  for (int32_t t : draws({.temperature = 1.0, .top_p = 0.01, .seed = 3}, 50)) EXPECT_EQ(t, 5);
}

TEST(Sampler, InvalidParametersAndNaNLogitsAreErrors) {
  EXPECT_THROW(Sampler({.temperature = -1}), Error);
  EXPECT_THROW(Sampler({.top_k = -2}), Error);
  EXPECT_THROW(Sampler({.top_p = 0}), Error);
  EXPECT_THROW(Sampler({.top_p = 1.5}), Error);
  Sampler s({.temperature = 1.0});
  std::vector<float> bad = {1.0f, std::nanf("")};
  EXPECT_THROW(s.sample(bad), Error);
}

class Generation : public ::testing::Test {
 protected:
  std::shared_ptr<const Model> model = test::load_fixture_model("qwen2_bias_tied");
  std::vector<int32_t> prompt = test::load_cases("qwen2_bias_tied").front().ids;
  Session make_session(int64_t context) {
    SessionOptions o;
    o.context = context;
    o.chunk_size = 4;
    return Session(model, o);
  }
};

TEST_F(Generation, GreedyEqualsArgmaxOfFullSequenceLogits) {
  Session session = make_session(64);
  std::vector<int32_t> streamed;
  GenerateOptions options{.max_new_tokens = 12, .on_token = [&](int32_t t) {
                            streamed.push_back(t);
                            return true;
                          }};
  GenerateResult r = generate(session, prompt, options);
  ASSERT_EQ(r.tokens.size(), 12u);
  EXPECT_EQ(streamed, r.tokens);
  EXPECT_EQ(r.stats.prompt_tokens, int64_t(prompt.size()));
  EXPECT_EQ(session.position(), int64_t(prompt.size() + 11));  // the last token needs no forward pass

  std::vector<int32_t> all = prompt;
  all.insert(all.end(), r.tokens.begin(), r.tokens.end());
  Session full = make_session(64);
  std::vector<float> logits = full.prefill(all, {.all_logits = true});
  const size_t vocab = size_t(model->config().vocab_size);
  for (size_t i = 0; i < r.tokens.size(); ++i) {
    size_t row = prompt.size() - 1 + i;
    EXPECT_EQ(r.tokens[i], argmax(std::span(logits).subspan(row * vocab, vocab))) << "token " << i;
  }
}

TEST_F(Generation, SampledRunsRepeatPerSeed) {
  GenerateOptions options{.max_new_tokens = 10, .sampling = {.temperature = 1.0, .top_k = 50, .top_p = 0.9, .seed = 9}};
  Session a = make_session(64), b = make_session(64);
  EXPECT_EQ(generate(a, prompt, options).tokens, generate(b, prompt, options).tokens);
}

TEST_F(Generation, StopsAtStopTokenAndOnCallback) {
  Session probe = make_session(64);
  std::vector<int32_t> greedy = generate(probe, prompt, {.max_new_tokens = 6}).tokens;
  Session session = make_session(64);
  GenerateResult r = generate(session, prompt, {.max_new_tokens = 6, .stop_ids = {greedy[3]}});
  EXPECT_TRUE(r.stats.stopped_by_stop_token);
  auto first_stop = std::find(greedy.begin(), greedy.end(), greedy[3]);
  EXPECT_EQ(r.tokens, std::vector<int32_t>(greedy.begin(), first_stop));

  Session again = make_session(64);
  int calls = 0;
  GenerateResult cut = generate(again, prompt, {.max_new_tokens = 6, .on_token = [&](int32_t) { return ++calls < 2; }});
  EXPECT_EQ(cut.tokens.size(), 2u);
}

TEST_F(Generation, ContextLimits) {
  Session tiny = make_session(int64_t(prompt.size()) - 1);
  EXPECT_THROW(generate(tiny, prompt, {.max_new_tokens = 1}), Error);
  EXPECT_EQ(tiny.position(), 0);
  // a context of prompt + 2 gives 3 new tokens: the last one is never fed back
  Session exact = make_session(int64_t(prompt.size()) + 2);
  GenerateResult r = generate(exact, prompt, {.max_new_tokens = 10});
  EXPECT_EQ(r.tokens.size(), 3u);
  EXPECT_TRUE(r.stats.stopped_by_context);
}

TEST_F(Generation, BadTokenIdsAreErrors) {
  Session s = make_session(64);
  std::vector<int32_t> bad = {1, int32_t(model->config().vocab_size)};
  EXPECT_THROW(s.prefill(bad), Error);
  std::vector<int32_t> negative = {-1};
  EXPECT_THROW(s.prefill(negative), Error);
  EXPECT_EQ(s.position(), 0);
}

}  // namespace
}  // namespace dattn::model
