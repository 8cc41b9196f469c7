// Randomised corruption of the fixture files (fixed seed, bounded time): loading and encoding may
// only succeed or throw dattn::Error, never crash or throw anything else.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "dattn/core/error.h"
#include "dattn/model/tokenizer.h"
#include "fixture_paths.h"

namespace dattn {
namespace {

using nlohmann::json;

constexpr auto kTimeBudget = std::chrono::seconds(6);
constexpr int kMutationsPerFixture = 400;

std::string mutate_bytes(std::string text, std::mt19937& rng) {
  const int edits = 1 + static_cast<int>(rng() % 8);
  for (int e = 0; e < edits && !text.empty(); ++e) {
    const size_t pos = rng() % text.size();
    switch (rng() % 5) {
      case 0: text[pos] = static_cast<char>(rng()); break;
      case 1: text[pos] = "{}[]\":,0-9e\\ "[rng() % 13]; break;
      case 2: text.erase(pos, 1 + rng() % 16); break;
      case 3: text.insert(pos, text.substr(rng() % text.size(), 1 + rng() % 32)); break;
      default: text.resize(pos); break;
    }
  }
  return text;
}

json random_value(std::mt19937& rng) {
  switch (rng() % 10) {
    case 0: return nullptr;
    case 1: return -1;
    case 2: return int64_t{1} << 40;
    case 3: return 1e300;
    case 4: return "Ġ";
    case 5: return json::array();
    case 6: return json::object();
    case 7: return true;
    case 8: return json::array({"a", "b"});
    default: return json{{"type", "Sequence"}};
  }
}

// Replaces or deletes one randomly chosen node of the document.
void mutate_structure(json& node, std::mt19937& rng, int depth = 0) {
  if ((node.is_object() || node.is_array()) && !node.empty() && (depth < 2 || rng() % 3 != 0)) {
    const size_t index = rng() % node.size();
    if (node.is_object()) {
      auto it = node.begin();
      std::advance(it, index);
      if (rng() % 8 == 0) {
        node.erase(it.key());
      } else {
        mutate_structure(it.value(), rng, depth + 1);
      }
    } else {
      mutate_structure(node[index], rng, depth + 1);
    }
    return;
  }
  node = random_value(rng);
}

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
