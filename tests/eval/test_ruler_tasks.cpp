// RULER task generators: deterministic per seed, fitted to the target length, with RULER's templates and
// answers present in the prompt. Lengths are checked with a one-token-per-byte counter and with a BPE
// fixture tokenizer (tests/fixtures/tokenizers/llama3_bpe).
#include <gtest/gtest.h>

#include "dattn/core/error.h"

#include <algorithm>
#include <map>
#include <regex>

#include "dattn/eval/ruler_tasks.h"
#include "dattn/model/tokenizer.h"

namespace dattn::eval {
namespace {

// A fitted prompt stops short of its budget by at most one step of its size: one haystack word, noise
// paragraph, distractor needle (a uuid pair is about 100 bytes) or list word (repeated 33 times in cwe).
constexpr int64_t kByteSlack = 400;
constexpr int64_t kTokenSlack = 200;

const Tokenizer& fixture_tokenizer() {
  static const Tokenizer tok = Tokenizer::load(DATTN_SOURCE_DIR "/tests/fixtures/tokenizers/llama3_bpe");
  return tok;
}

int64_t count_occurrences(const std::string& text, const std::string& word) {
  int64_t n = 0;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + word.size())) ++n;
  return n;
}

class EveryTask : public ::testing::TestWithParam<RulerTask> {};

TEST_P(EveryTask, SameSeedSameSampleOtherSeedOtherSample) {
  ByteTokenCounter bytes;
  RulerGeneratorOptions options{.target_length = 3000, .seed = 7};
  const RulerSample a = generate_ruler_sample(GetParam(), 0, options, bytes);
  const RulerSample b = generate_ruler_sample(GetParam(), 0, options, bytes);
  EXPECT_EQ(a.input, b.input);
  EXPECT_EQ(a.outputs, b.outputs);
  options.seed = 8;
  const RulerSample c = generate_ruler_sample(GetParam(), 0, options, bytes);
  EXPECT_NE(a.input, c.input);
  options.seed = 7;
  const RulerSample d = generate_ruler_sample(GetParam(), 1, options, bytes);
  EXPECT_NE(a.input, d.input) << "sample index must change the sample";
}

TEST_P(EveryTask, FitsTheTargetLengthInBytes) {
  ByteTokenCounter bytes;
  for (int64_t length : {2000, 16000}) {  // below and above RULER's 4096 switch of cwe's repetitions
    const RulerSample s = generate_ruler_sample(GetParam(), 3, {.target_length = length, .seed = 1}, bytes);
    EXPECT_EQ(s.prompt_tokens, int64_t(s.input.size()));
    EXPECT_EQ(s.tokens_to_generate, ruler_tokens_to_generate(GetParam()));
    EXPECT_LE(s.prompt_tokens + s.tokens_to_generate, length);
    EXPECT_GE(s.prompt_tokens + s.tokens_to_generate, length - kByteSlack) << "haystack size " << s.haystack_size;
  }
}

TEST_P(EveryTask, FitsTheTargetLengthInBpeTokens) {
  TokenizerCounter counter(fixture_tokenizer());
  const int64_t length = 1500;
  const RulerSample s = generate_ruler_sample(GetParam(), 0, {.target_length = length, .seed = 3}, counter);
  EXPECT_EQ(s.prompt_tokens, int64_t(fixture_tokenizer().encode(s.input, true).size()));
  EXPECT_LE(s.prompt_tokens + s.tokens_to_generate, length);
  EXPECT_GE(s.prompt_tokens + s.tokens_to_generate, length - kTokenSlack) << "haystack size " << s.haystack_size;
}

TEST_P(EveryTask, EveryAnswerIsInThePrompt) {
  ByteTokenCounter bytes;
  const RulerSample s = generate_ruler_sample(GetParam(), 2, {.target_length = 4000, .seed = 11}, bytes);
  ASSERT_FALSE(s.outputs.empty());
  for (const std::string& answer : s.outputs) EXPECT_NE(s.input.find(answer), std::string::npos) << answer;
}

INSTANTIATE_TEST_SUITE_P(Ruler, EveryTask, ::testing::ValuesIn(all_ruler_tasks().begin(), all_ruler_tasks().end()),
                         [](const auto& info) { return std::string(ruler_task_name(info.param)); });

TEST(RulerTasks, NamesRoundTripAndUnknownNamesAreRejected) {
  EXPECT_EQ(all_ruler_tasks().size(), 11u);
  for (RulerTask t : all_ruler_tasks()) EXPECT_EQ(parse_ruler_task(ruler_task_name(t)), t);
  try {
    parse_ruler_task("niah_single_9");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("niah_single_9"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("niah_multiquery"), std::string::npos);
  }
}

TEST(RulerTasks, SingleNeedleUsesRulersSingularTemplate) {
  ByteTokenCounter bytes;
  const RulerSample s = generate_ruler_sample(RulerTask::niah_single_2, 0, {.target_length = 3000}, bytes);
  ASSERT_EQ(s.outputs.size(), 1u);
  EXPECT_TRUE(s.input.starts_with("A special magic number is hidden within the following text. Make sure to "
                                  "memorize it. I will quiz you about the number afterwards.\n"));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(s.input, m, std::regex("One of the special magic numbers for ([a-z]+-[a-z]+) is: "
                                                       "([0-9]{7})\\.")));
  EXPECT_EQ(m[2].str(), s.outputs[0]);
  EXPECT_TRUE(s.input.ends_with("\nWhat is the special magic number for " + m[1].str() +
                                " mentioned in the provided text? The special magic number for " + m[1].str() +
                                " mentioned in the provided text is"));
}

TEST(RulerTasks, NeedleShapesFollowRulersConfigs) {
  ByteTokenCounter bytes;
  auto make = [&](RulerTask t) { return generate_ruler_sample(t, 0, {.target_length = 4000, .seed = 5}, bytes); };
  const RulerSample uuid = make(RulerTask::niah_single_3);
  EXPECT_TRUE(std::regex_match(uuid.outputs.at(0),
                               std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
  EXPECT_EQ(count_occurrences(make(RulerTask::niah_multikey_1).input, "One of the special magic numbers for"), 4);
  const RulerSample multivalue = make(RulerTask::niah_multivalue);
  EXPECT_EQ(multivalue.outputs.size(), 4u);
  EXPECT_TRUE(multivalue.input.starts_with("Some special magic numbers are hidden"));
  const RulerSample multiquery = make(RulerTask::niah_multiquery);
  EXPECT_EQ(multiquery.outputs.size(), 4u);
  EXPECT_NE(multiquery.input.find(", and "), std::string::npos);
  // needle haystacks: the prompt is made of distractor needles, one per line
  const RulerSample mk2 = make(RulerTask::niah_multikey_2);
  // RULER writes needles with the plural type even where the question is singular
  EXPECT_EQ(count_occurrences(mk2.input, "One of the special magic numbers for"), mk2.haystack_size + 1);
  const RulerSample single1 = make(RulerTask::niah_single_1);
  EXPECT_EQ(count_occurrences(single1.input, "The grass is green. The sky is blue."), single1.haystack_size);
}

TEST(RulerTasks, VariableTrackingHasAChainOfFiveAndASolvedExample) {
  ByteTokenCounter bytes;
  const RulerSample s = generate_ruler_sample(RulerTask::vt, 0, {.target_length = 4000, .seed = 2}, bytes);
  ASSERT_EQ(s.outputs.size(), 5u);
  for (size_t i = 1; i < s.outputs.size(); ++i)
    EXPECT_NE(s.input.find("VAR " + s.outputs[i] + " = VAR " + s.outputs[i - 1]), std::string::npos);
  EXPECT_EQ(count_occurrences(s.input, "Memorize and track the chain(s)"), 2);
  EXPECT_TRUE(s.input.ends_with("5 variables are assgined the value " +
                                s.input.substr(s.input.find("VAR " + s.outputs[0] + " = ") + 12, 5) + ", they are: "));
}

TEST(RulerTasks, CommonWordsAreTheTenMostRepeated) {
  ByteTokenCounter bytes;
  const RulerSample s = generate_ruler_sample(RulerTask::cwe, 0, {.target_length = 8000, .seed = 4}, bytes);
  ASSERT_EQ(s.outputs.size(), 10u);
  const std::string main_list = s.input.substr(s.input.rfind("Below is a numbered list"));
  for (const std::string& w : s.outputs)
    EXPECT_EQ(count_occurrences(main_list, ". " + w + " ") + count_occurrences(main_list, ". " + w + "\n"), 30) << w;
}

TEST(RulerTasks, FrequentWordsAreOrderedByFrequency) {
  ByteTokenCounter bytes;
  const RulerSample s = generate_ruler_sample(RulerTask::fwe, 0, {.target_length = 8000, .seed = 4}, bytes);
  ASSERT_EQ(s.outputs.size(), 3u);
  std::map<std::string, int64_t> counts;
  const std::regex word("[a-z]{6}");
  for (auto it = std::sregex_iterator(s.input.begin(), s.input.end(), word); it != std::sregex_iterator(); ++it)
    ++counts[it->str()];
  EXPECT_GE(counts[s.outputs[0]], counts[s.outputs[1]]);
  EXPECT_GE(counts[s.outputs[1]], counts[s.outputs[2]]);
  int64_t others = 0;
  for (const auto& [w, n] : counts)
    if (std::find(s.outputs.begin(), s.outputs.end(), w) == s.outputs.end() && w != "answer" && w != "appear")
      others = std::max(others, n);
  EXPECT_GT(counts[s.outputs[2]], 0);
  EXPECT_GE(counts[s.outputs[2]], others);
}

TEST(RulerTasks, TooShortATargetIsAClearError) {
  ByteTokenCounter bytes;
  try {
    generate_ruler_sample(RulerTask::niah_single_2, 0, {.target_length = 200}, bytes);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("niah_single_2"), std::string::npos) << e.what();
  }
}

TEST(Haystack, StreamExtendsAndSentencesSplit) {
  const Haystack& h = Haystack::builtin();
  EXPECT_GT(h.word_count_per_pass(), 100000);
  const std::string short_text = h.first_words(50), long_text = h.first_words(h.word_count_per_pass() + 50);
  EXPECT_TRUE(long_text.starts_with(short_text));
  EXPECT_TRUE(short_text.starts_with("In the beginning God created the heaven and the earth."));
  const auto sentences = split_sentences("One. Two!  \"Three?\" Four.five six");
  ASSERT_EQ(sentences.size(), 4u);
  EXPECT_EQ(sentences[2], "\"Three?\"");
  EXPECT_EQ(sentences[3], "Four.five six");
}

}  // namespace
}  // namespace dattn::eval
