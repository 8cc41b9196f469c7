// Ids and text must equal what the Hugging Face `tokenizers` library produced for the same files.
#include <gtest/gtest.h>

#include "dattn/core/error.h"
#include "dattn/model/tokenizer.h"
#include "fixture_paths.h"

namespace dattn {
namespace {

using nlohmann::json;

class TokenizerFixture : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { expected_ = test::read_expected(GetParam()); }
  Tokenizer load() const { return Tokenizer::load(test::tokenizer_fixture_dir(GetParam())); }
  json expected_;
};

std::string streamed(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, bool skip_special) {
  StreamDecoder stream(tokenizer, skip_special);
  std::string text;
  for (const int32_t id : ids) {
    const std::string chunk = stream.push(id);
    // push() holds back a character still incomplete (which decode would show as U+FFFD).
    EXPECT_FALSE(chunk.ends_with("\xEF\xBF\xBD")) << "after id " << id;
    text += chunk;
  }
  return text + stream.finish();
}

TEST_P(TokenizerFixture, EncodeMatchesTokenizersLibrary) {
  const Tokenizer tokenizer = load();
  ASSERT_GT(expected_["cases"].size(), 40u);
  for (const json& c : expected_["cases"]) {
    const std::string text = c["text"];
    EXPECT_EQ(tokenizer.encode(text, true), c["ids_with_special"].get<std::vector<int32_t>>()) << "text: " << text;
    EXPECT_EQ(tokenizer.encode(text, false), c["ids_without_special"].get<std::vector<int32_t>>()) << "text: " << text;
  }
}

TEST_P(TokenizerFixture, DecodeMatchesTokenizersLibrary) {
  const Tokenizer tokenizer = load();
  for (const json& c : expected_["cases"]) {
    const auto ids = c["ids_with_special"].get<std::vector<int32_t>>();
    EXPECT_EQ(tokenizer.decode(ids, false), c["decoded"].get<std::string>()) << "text: " << c["text"];
    EXPECT_EQ(tokenizer.decode(ids, true), c["decoded_skip_special"].get<std::string>()) << "text: " << c["text"];
  }
  for (const json& c : expected_["decode_cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tokenizer.decode(ids, c["skip_special_tokens"]), c["text"].get<std::string>()) << "ids: " << c["ids"];
  }
}

TEST_P(TokenizerFixture, VocabSizeMatches) {
  EXPECT_EQ(load().vocab_size(), expected_["vocab_size"].get<int32_t>());
}

TEST_P(TokenizerFixture, StreamingDecodeEqualsFullDecode) {
  const Tokenizer tokenizer = load();
  for (const json& c : expected_["cases"]) {
    const auto ids = c["ids_with_special"].get<std::vector<int32_t>>();
    for (const bool skip : {false, true}) {
      EXPECT_EQ(streamed(tokenizer, ids, skip), tokenizer.decode(ids, skip)) << "text: " << c["text"] << " skip " << skip;
    }
  }
  for (const json& c : expected_["decode_cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    const bool skip = c["skip_special_tokens"];
    EXPECT_EQ(streamed(tokenizer, ids, skip), c["text"].get<std::string>()) << "ids: " << c["ids"];
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TokenizerFixture, ::testing::ValuesIn(test::kTokenizerFixtures),
                         [](const auto& info) { return info.param; });

TEST(TokenizerPieces, ByteLevelPiecesConcatenateToTheText) {
  const Tokenizer tokenizer = Tokenizer::load(test::tokenizer_fixture_dir("llama3_bpe"));
  for (const std::string text : {"Hello   world\n\n", "emoji 😀🎉 and 日本語", "x1y22z333\t"}) {
    std::string joined;
    for (const int32_t id : tokenizer.encode(text, false)) joined += tokenizer.token_to_piece(id);
    EXPECT_EQ(joined, text);
  }
}

TEST(TokenizerPieces, ByteFallbackPiecesAreRawBytes) {
  const Tokenizer tokenizer = Tokenizer::load(test::tokenizer_fixture_dir("mistral_bpe"));
  const int32_t byte_e6 = *tokenizer.token_id("<0xE6>");
  EXPECT_EQ(tokenizer.token_to_piece(byte_e6), "\xE6");
  const int32_t the = *tokenizer.token_id("▁the");
  EXPECT_EQ(tokenizer.token_to_piece(the), " the");
  EXPECT_EQ(tokenizer.token_to_piece(*tokenizer.token_id("</s>")), "</s>");
}

TEST(TokenizerPieces, StreamingHoldsBackIncompleteCharacters) {
  const Tokenizer tokenizer = Tokenizer::load(test::tokenizer_fixture_dir("mistral_bpe"));
  // 日 is E6 97 A5: a byte run comes out once a non-byte token ends it.
  StreamDecoder stream(tokenizer, true);
  EXPECT_EQ(stream.push(*tokenizer.token_id("▁the")), "the");
  EXPECT_EQ(stream.push(*tokenizer.token_id("<0xE6>")), "");
  EXPECT_EQ(stream.push(*tokenizer.token_id("<0x97>")), "");
  EXPECT_EQ(stream.push(*tokenizer.token_id("<0xA5>")), "");
  EXPECT_EQ(stream.push(*tokenizer.token_id("▁the")), "日 the");
  EXPECT_EQ(stream.push(*tokenizer.token_id("<0xE6>")), "");
  EXPECT_EQ(stream.finish(), "\xEF\xBF\xBD");  // an unfinished character, as decode() shows it
}

TEST(TokenizerSpecialTokens, BosAndEosFollowTheConfig) {
  const Tokenizer llama3 = Tokenizer::load(test::tokenizer_fixture_dir("llama3_bpe"));
  EXPECT_EQ(llama3.bos_id(), llama3.token_id("<|begin_of_text|>"));
  EXPECT_EQ(llama3.eos_ids(), std::vector<int32_t>{*llama3.token_id("<|eot_id|>")});
  EXPECT_TRUE(llama3.is_special(*llama3.token_id("<|eot_id|>")));
  EXPECT_FALSE(llama3.is_special(*llama3.token_id("<tool_call>")));

  const Tokenizer qwen = Tokenizer::load(test::tokenizer_fixture_dir("qwen2_bpe"));
  EXPECT_EQ(qwen.bos_id(), std::nullopt);
  EXPECT_EQ(qwen.eos_ids(), std::vector<int32_t>{*qwen.token_id("<|im_end|>")});

  const Tokenizer llama2 = Tokenizer::load(test::tokenizer_fixture_dir("llama2_bpe"));
  EXPECT_EQ(llama2.bos_id(), 1);
  EXPECT_EQ(llama2.eos_ids(), std::vector<int32_t>{2});
  EXPECT_EQ(llama2.id_to_token(1), "<s>");
}

TEST(TokenizerSpecialTokens, GenerationConfigAddsEosIds) {
  const std::filesystem::path dir = test::tokenizer_fixture_dir("llama3_bpe");
  const Tokenizer tokenizer = Tokenizer::from_json(test::read_text_file(dir / "tokenizer.json"),
                                                   test::read_text_file(dir / "tokenizer_config.json"),
                                                   R"({"bos_token_id": 900, "eos_token_id": [901, 904]})");
  EXPECT_EQ(tokenizer.eos_ids(), (std::vector<int32_t>{904, 901}));
}

TEST(TokenizerSpecialTokens, WithoutConfigBosComesFromThePostProcessor) {
  const std::filesystem::path dir = test::tokenizer_fixture_dir("llama2_bpe");
  const Tokenizer tokenizer = Tokenizer::from_json(test::read_text_file(dir / "tokenizer.json"));
  EXPECT_EQ(tokenizer.bos_id(), 1);
  EXPECT_EQ(tokenizer.eos_ids(), std::vector<int32_t>{2});
}

TEST(TokenizerInput, RejectsInvalidUtf8AndNegativeIds) {
  const Tokenizer tokenizer = Tokenizer::load(test::tokenizer_fixture_dir("llama3_bpe"));
  try {
    tokenizer.encode("ok \xC3\x28 bad", false);
    FAIL() << "expected dattn::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("byte 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tokenizer.decode(std::vector<int32_t>{5, -1}, false), Error);
  EXPECT_THROW(tokenizer.id_to_token(1 << 20), Error);
  // Unknown ids are skipped, as `tokenizers` does.
  EXPECT_EQ(tokenizer.decode(std::vector<int32_t>{1 << 20}, false), "");
}

}  // namespace
}  // namespace dattn
