// Common and frequent words extraction, after RULER's common_words_extraction.py and
// freq_words_extraction.py: a numbered word list where ten words repeat most (cwe), and a coded text of
// Zipf-distributed random words whose three most frequent ones are asked for (fwe).
#include <algorithm>
#include <cmath>
#include <numbers>
#include <set>

#include "dattn/core/error.h"
#include "dattn/eval/rng.h"
#include "ruler_builders.h"

namespace dattn::eval::detail {

namespace {

constexpr std::string_view kCweTemplate =
    "Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones "
    "that appear most often.\n{context}\nQuestion: What are the 10 most common words in the above list? Answer: "
    "The top 10 words that appear most often in the list are:";
constexpr std::string_view kFweTemplate =
    "Read the following coded text and track the frequency of each coded word. Find the three most frequently "
    "appeared coded words. {context}\nQuestion: Do not provide any explanation. Please ignore the dots '....'. "
    "What are the three most frequently appeared words in the above coded text? Answer: According to the coded "
    "text above, the three most frequently appeared words are:";

std::string with_context(std::string_view templ, const std::string& context) {
  std::string out(templ);
  return out.replace(out.find("{context}"), 9, context);
}

std::string numbered(const std::vector<std::string>& words) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) out += (i ? " " : "") + std::to_string(i + 1) + ". " + words[i];
  return out;
}

struct WordListExample {
  std::string context;
  std::vector<std::string> common;
};

WordListExample word_list_example(DeterministicRng& rng, const std::vector<std::string>& words, int64_t num_words,
                                  int64_t common_repeats, int64_t uncommon_repeats, int64_t num_common) {
  std::vector<std::string> picked;
  for (int64_t i : rng.sample_indices(int64_t(words.size()), num_words)) picked.push_back(words[size_t(i)]);
  WordListExample ex;
  ex.common.assign(picked.begin(), picked.begin() + num_common);
  std::vector<std::string> list;
  for (int64_t r = 0; r < common_repeats; ++r) list.insert(list.end(), ex.common.begin(), ex.common.end());
  for (int64_t r = 0; r < uncommon_repeats; ++r) list.insert(list.end(), picked.begin() + num_common, picked.end());
  rng.shuffle(list);
  ex.context = numbered(list);
  return ex;
}

}  // namespace

SizedTask cwe_task(uint64_t seed, int64_t target_length) {
  constexpr int64_t kNumCommon = 10;
  SizedTask task;
  task.min_size = kNumCommon;
  task.max_size = int64_t(common_words().size());
  task.build = [=](int64_t size) {
    DeterministicRng rng(seed);
    std::vector<std::string> words = common_words();
    rng.shuffle(words);
    // RULER's repetition counts: fewer below 4K tokens so that the list fits at all.
    const bool short_context = target_length < 4096;
    const WordListExample example =
        short_context ? word_list_example(rng, words, 20, 3, 1, kNumCommon) : word_list_example(rng, words, 40, 10, 3, kNumCommon);
    const WordListExample main = short_context ? word_list_example(rng, words, size, 6, 1, kNumCommon)
                                               : word_list_example(rng, words, size, 30, 3, kNumCommon);
    BuiltSample sample;
    sample.input = with_context(kCweTemplate, example.context) + " " + numbered(example.common) + "\n" +
                   with_context(kCweTemplate, main.context);
    sample.outputs = main.common;
    return sample;
  };
  return task;
}

SizedTask fwe_task(uint64_t seed, int64_t target_length) {
  constexpr int64_t kWordLength = 6;
  constexpr double kAlpha = 2.0;
  const int64_t vocab_size = target_length / 50;  // RULER's default
  DATTN_CHECK(vocab_size >= 4, "fwe needs a target length of at least 200 tokens, got {}", target_length);
  // The coded vocabulary does not depend on the size: draw it once.
  DeterministicRng rng(seed);
  std::set<std::string> unique;
  while (int64_t(unique.size()) < vocab_size) {
    std::string w;
    for (int64_t i = 0; i < kWordLength; ++i) w.push_back(char('a' + rng.below(26)));
    unique.insert(std::move(w));
  }
  std::vector<std::string> vocab(unique.begin(), unique.end());
  rng.shuffle(vocab);
  vocab[0] = "...";  // the most frequent "word" is noise
  const uint64_t shuffle_seed = rng.next_u64();

  SizedTask task;
  // Below this, the third answer would not appear at all (count = n / (4^2 zeta(2)) < 1).
  task.min_size = 27;
  task.build = [vocab, shuffle_seed](int64_t size) {
    const double zeta_alpha = std::numbers::pi * std::numbers::pi / 6.0;  // zeta(2)
    std::vector<const std::string*> text;
    for (size_t k = 1; k <= vocab.size(); ++k) {
      const auto count = int64_t(double(size) * std::pow(double(k), -kAlpha) / zeta_alpha);
      for (int64_t c = 0; c < count; ++c) text.push_back(&vocab[k - 1]);
    }
    DeterministicRng shuffler(shuffle_seed);
    shuffler.shuffle(text);
    std::string context;
    for (size_t i = 0; i < text.size(); ++i) (context += (i ? " " : "")) += *text[i];
    BuiltSample sample;
    sample.input = with_context(kFweTemplate, context);
    sample.outputs.assign(vocab.begin() + 1, vocab.begin() + 4);
    return sample;
  };
  return task;
}

}  // namespace dattn::eval::detail
