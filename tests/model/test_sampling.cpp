// Sampling and the generation loop: determinism per seed, the top-k / top-p cuts, greedy generation
// against argmax of full-sequence logits, stop tokens and context limits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
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

// The sampler finds the top-k set and the nucleus without sorting the vocabulary (a heap, a quickselect on
// mass, a cut-off below which no token can be in the nucleus). Checked against a full sort on a vocabulary
// large enough for those paths to matter: every draw lies in the exact set, and every token of the set with
// at least 0.5% of its mass shows up in 5000 draws (expected >= 25 times; missing one has odds ~e^-25).
std::vector<size_t> sorted_by_weight(const std::vector<float>& logits) {
  std::vector<size_t> order(logits.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  return order;
}

void expect_draws_cover(const std::vector<float>& logits, SamplingParams params, const std::vector<size_t>& exact_set,
                        double temperature) {
  std::set<size_t> allowed(exact_set.begin(), exact_set.end());
  double mass = 0;
  for (size_t i : exact_set) mass += std::exp(double(logits[i] - logits[exact_set[0]]) / temperature);
  Sampler s(params);
  std::set<size_t> seen;
  for (int i = 0; i < 5000; ++i) {
    const size_t t = size_t(s.sample(logits));
    ASSERT_TRUE(allowed.count(t)) << "token " << t << " is outside the exact set of " << exact_set.size();
    seen.insert(t);
  }
  for (size_t i : exact_set) {
    if (std::exp(double(logits[i] - logits[exact_set[0]]) / temperature) / mass >= 0.005) {
      EXPECT_TRUE(seen.count(i)) << "token " << i << " of the exact set was never drawn";
    }
  }
}

TEST(Sampler, NucleusAndTopKMatchAFullSortOnALargeVocabulary) {
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(4096);
  for (float& l : logits) l = normal(rng);
  logits[123] = logits[456] = 14.0f;  // a tie at the top
  const std::vector<size_t> order = sorted_by_weight(logits);
  for (double top_p : {0.05, 0.3, 0.8, 0.97}) {
    const double t = 0.8;
    double total = 0;
    for (float l : logits) total += std::exp(double(l - logits[order[0]]) / t);
    std::vector<size_t> nucleus;
    double mass = 0;
    for (size_t i : order) {
      nucleus.push_back(i);
      mass += std::exp(double(logits[i] - logits[order[0]]) / t);
      if (mass >= top_p * total) break;
    }
    SCOPED_TRACE(testing::Message() << "top_p " << top_p << ", nucleus of " << nucleus.size());
    expect_draws_cover(logits, {.temperature = t, .top_p = top_p, .seed = 11}, nucleus, t);
  }
  for (int64_t k : {1, 2, 3, 37, 500}) {
    SCOPED_TRACE(testing::Message() << "top_k " << k);
    const std::vector<size_t> best(order.begin(), order.begin() + k);
    expect_draws_cover(logits, {.temperature = 1.3, .top_k = k, .seed = 12}, best, 1.3);
  }
  EXPECT_EQ(draws({.temperature = 1.0, .top_k = 1}, 1), std::vector<int32_t>{5});  // the lower id of a tie
  std::vector<float> tie = {0.0f, 9.0f, 9.0f};
  EXPECT_EQ(Sampler({.temperature = 1.0, .top_k = 1, .seed = 1}).sample(tie), 1);
}

TEST(Sampler, InfiniteLogits) {
  const float inf = std::numeric_limits<float>::infinity();
  // -inf tokens are never drawn; a +inf token takes all the mass (the lowest id of several)
  std::vector<float> masked = {-inf, 1.0f, -inf, 2.0f};
  for (const SamplingParams& p : {SamplingParams{.temperature = 1.0, .seed = 2},
                                  SamplingParams{.temperature = 1.0, .top_p = 0.99, .seed = 2},
                                  SamplingParams{.temperature = 1.0, .top_k = 3, .seed = 2}}) {
    Sampler s(p);
    std::set<int32_t> seen;
    for (int i = 0; i < 500; ++i) seen.insert(s.sample(masked));
    EXPECT_EQ(seen, (std::set<int32_t>{1, 3})) << "top_p " << p.top_p << ", top_k " << p.top_k;
  }
  std::vector<float> forced = {1.0f, inf, 3.0f, inf};
  EXPECT_EQ(Sampler({.temperature = 1.0}).sample(forced), 1);
  std::vector<float> none = {-inf, -inf};
  EXPECT_EQ(Sampler({.temperature = 1.0}).sample(none), 0);
  EXPECT_EQ(argmax(none), 0);
}

TEST(Sampler, InvalidParametersAndNaNLogitsAreErrors) {
  EXPECT_THROW(Sampler({.temperature = -1}), Error);
  EXPECT_THROW(Sampler({.top_k = -2}), Error);
  EXPECT_THROW(Sampler({.top_p = 0}), Error);
  EXPECT_THROW(Sampler({.top_p = 1.5}), Error);
  Sampler s({.temperature = 1.0});
  std::vector<float> bad = {1.0f, std::nanf("")};
  try {
    s.sample(bad);
    ADD_FAILURE() << "a NaN logit was sampled from";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("logit 1 is NaN"), std::string::npos) << e.what();
  }
  Sampler greedy({});
  EXPECT_THROW(greedy.sample(bad), Error);
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
