// Encoding must stay fast on long prompts: 1 MB of text well under a second of CPU time (the thread's own,
// so that other jobs on a loaded CI machine do not count; measured 0.06 to 0.27 s in a Release build).
#include <gtest/gtest.h>
#include <time.h>

#include <random>

#include "dattn/model/tokenizer.h"
#include "fixture_paths.h"

namespace dattn {
namespace {

// English-like words, numbers and some unicode: ~1 MB, deterministic.
std::string megabyte_of_text() {
  const std::vector<std::string> words = {"the", "attention", "model", "of", "delta", "sparse", "Hello,", "world!",
                                          "don't", "12345", "café", "日本語", "😀", "\n", "  ", "token", "kernel",
                                          "prefill", "(x)", "naïve", "GPU", "3.14", "they'll", "\t"};
  std::mt19937 rng(7);
  std::string text;
  while (text.size() < (1u << 20)) {
    text += words[rng() % words.size()];
    text += ' ';
  }
  return text;
}

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

class TokenizerSpeed : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerSpeed, EncodesOneMegabyteQuickly) {
  const Tokenizer tokenizer = Tokenizer::load(test::tokenizer_fixture_dir(GetParam()));
  const std::string text = megabyte_of_text();
  const double start = thread_cpu_seconds();
  const std::vector<int32_t> ids = tokenizer.encode(text, true);
  const double seconds = thread_cpu_seconds() - start;
  std::printf("%s: %zu bytes -> %zu tokens in %.3f s of CPU time\n", GetParam().c_str(), text.size(), ids.size(), seconds);
  ASSERT_GT(ids.size(), text.size() / 20);
#if defined(__SANITIZE_ADDRESS__) || !defined(NDEBUG)
  GTEST_SKIP() << "timing is only checked in optimized, uninstrumented builds";
#else
  EXPECT_LT(seconds, 1.0);
#endif
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TokenizerSpeed, ::testing::ValuesIn(test::kTokenizerFixtures),
                         [](const auto& info) { return info.param; });

TEST(TokenizerSpeed, ByteLevelRoundTripsLongText) {
  const Tokenizer tokenizer = Tokenizer::load(test::tokenizer_fixture_dir("llama3_bpe"));
  const std::string text = megabyte_of_text();
  EXPECT_EQ(tokenizer.decode(tokenizer.encode(text, false), false), text);
}

}  // namespace
}  // namespace dattn
