// Randomised corruption of the fixture files (fixed seed, bounded time): loading and encoding may
// only succeed or throw dattn::Error, never crash or throw anything else.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "dattn/core/error.h"
#include "dattn/model/tokenizer.h"
#include "fixture_paths.h"
#include "json_mutation.h"

namespace dattn {
namespace {

using nlohmann::json;
using test::mutate_bytes;
using test::mutate_structure;

constexpr auto kTimeBudget = std::chrono::seconds(6);
constexpr int kMutationsPerFixture = 400;

void exercise(const std::string& tokenizer_json, const std::string& config, const std::vector<std::string>& texts,
              int& loaded) {
  try {
    const Tokenizer tokenizer = Tokenizer::from_json(tokenizer_json, config);
    ++loaded;
    for (const std::string& text : texts) {
      const std::vector<int32_t> ids = tokenizer.encode(text, true);
      tokenizer.decode(ids, false);
      StreamDecoder stream(tokenizer, true);
      for (const int32_t id : ids) stream.push(id);
      stream.finish();
    }
  } catch (const Error&) {
    // The expected outcome for most corruptions.
  } catch (const std::exception& e) {
    ADD_FAILURE() << "non-dattn exception: " << e.what();
  }
}

TEST(TokenizerFuzz, CorruptedFilesFailCleanly) {
  std::mt19937 rng(20240611);
  const auto deadline = std::chrono::steady_clock::now() + kTimeBudget;
  int attempts = 0, loaded = 0;
  for (const std::string& name : test::kTokenizerFixtures) {
    const std::filesystem::path dir = test::tokenizer_fixture_dir(name);
    const std::string tokenizer_json = test::read_text_file(dir / "tokenizer.json");
    const std::string config = test::read_text_file(dir / "tokenizer_config.json");
    const json document = json::parse(tokenizer_json);
    std::vector<std::string> texts;
    const json expected = test::read_expected(name);  // named: a range-for over a temporary's member dangles
    for (const json& c : expected["cases"]) {
      if (texts.size() < 12) texts.push_back(c["text"]);
    }
    for (int i = 0; i < kMutationsPerFixture && std::chrono::steady_clock::now() < deadline; ++i, ++attempts) {
      if (i % 2 == 0) {
        exercise(mutate_bytes(tokenizer_json, rng), config, texts, loaded);
      } else if (i % 8 == 7 && !config.empty()) {  // the tokenizer_config.json structure
        json mutated = json::parse(config);
        mutate_structure(mutated, rng);
        exercise(tokenizer_json, mutated.dump(), texts, loaded);
      } else {
        json mutated = document;
        mutate_structure(mutated, rng);
        exercise(mutated.dump(), i % 4 == 1 ? mutate_bytes(config, rng) : config, texts, loaded);
      }
    }
  }
  // The corpus must exercise both outcomes, or the mutations are too weak (or too strong) to mean much.
  EXPECT_GT(attempts, 200);
  EXPECT_GT(loaded, 10);
  EXPECT_LT(loaded, attempts);
  std::printf("fuzz: %d corrupted files, %d still loaded\n", attempts, loaded);
}

}  // namespace
}  // namespace dattn
