// Malformed tokenizer files must fail with a dattn::Error whose message names the problem.
#include <gtest/gtest.h>

#include "dattn/core/error.h"
#include "dattn/model/tokenizer.h"
#include "fixture_paths.h"

namespace dattn {
namespace {

using nlohmann::json;

json fixture_json(const std::string& name) {
  return json::parse(test::read_text_file(test::tokenizer_fixture_dir(name) / "tokenizer.json"));
}

void expect_error(const json& tokenizer_json, const std::string& message_part, const std::string& config = "") {
  try {
    Tokenizer::from_json(tokenizer_json.dump(), config);
    FAIL() << "expected an error mentioning '" << message_part << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(message_part), std::string::npos) << e.what();
  }
}

TEST(TokenizerMalformed, BadJson) {
  for (const std::string text : {"", "{", "{\"model\": }", "[1, 2]", "nul", "\"\xFF\""}) {
    EXPECT_THROW(Tokenizer::from_json(text), Error) << text;
  }
  try {
    Tokenizer::from_json("{\"model\": ");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
  }
}

TEST(TokenizerMalformed, MissingOrWrongModel) {
  json j = fixture_json("llama3_bpe");
  j.erase("model");
  expect_error(j, "missing field model");
  j = fixture_json("llama3_bpe");
  j["model"] = "BPE";
  expect_error(j, "model must be an object");
  j = fixture_json("llama3_bpe");
  j["model"]["type"] = "Unigram";
  expect_error(j, "unsupported model type 'Unigram'");
  j = fixture_json("llama3_bpe");
  j["model"]["vocab"] = json::array();
  expect_error(j, "model.vocab must be an object");
  j = fixture_json("llama3_bpe");
  j["model"].erase("merges");
  expect_error(j, "missing field model.merges");
  j = fixture_json("llama3_bpe");
  j["model"]["dropout"] = 0.1;
  expect_error(j, "dropout");
}

TEST(TokenizerMalformed, BadIds) {
  json j = fixture_json("llama3_bpe");
  j["model"]["vocab"]["!"] = -5;
  expect_error(j, "model.vocab[\"!\"] = -5 is not a token id");
  j = fixture_json("llama3_bpe");
  j["model"]["vocab"]["!"] = int64_t{1} << 40;
  expect_error(j, "is not a token id");
  j = fixture_json("llama3_bpe");
  j["model"]["vocab"]["!"] = 18446744073709551615ull;
  expect_error(j, "is not a token id");
  j = fixture_json("llama3_bpe");
  j["model"]["vocab"]["!"] = "zero";
  expect_error(j, "must be an integer token id");
  j = fixture_json("llama3_bpe");
  j["model"]["vocab"]["!"] = 1.5;
  expect_error(j, "must be an integer token id");
  j = fixture_json("llama3_bpe");
  j["model"]["vocab"]["!"] = j["model"]["vocab"]["\""];
  expect_error(j, "gives id");
  j = fixture_json("llama3_bpe");
  j["added_tokens"][0]["id"] = 99999999;
  expect_error(j, "added_tokens[0].id = 99999999 is not a token id");
  j = fixture_json("llama3_bpe");
  j["added_tokens"][1]["id"] = 5;  // the id of a vocabulary token with other content
  expect_error(j, "reuses id 5");
}

TEST(TokenizerMalformed, MergesNamingUnknownTokens) {
  json j = fixture_json("llama3_bpe");
  j["model"]["merges"][3] = json::array({"nonexistent", "t"});
  expect_error(j, "model.merges[3] names 'nonexistent'");
  j = fixture_json("llama2_bpe");  // string form
  j["model"]["merges"][0] = "▁ t x";
  expect_error(j, "must be two tokens separated by one space");
  j = fixture_json("llama3_bpe");
  j["model"]["merges"][0] = 7;
  expect_error(j, "model.merges[0] must be");
  j = fixture_json("llama3_bpe");
  j["model"]["unk_token"] = "<nope>";
  expect_error(j, "unk_token '<nope>' is not in the vocabulary");
}

TEST(TokenizerMalformed, UnknownComponentTypes) {
  json j = fixture_json("llama3_bpe");
  j["normalizer"] = {{"type", "Precompiled"}};
  expect_error(j, "unsupported normalizer type 'Precompiled'");
  j = fixture_json("llama3_bpe");
  j["pre_tokenizer"]["pretokenizers"][1]["type"] = "BertPreTokenizer";
  expect_error(j, "unsupported pre_tokenizer type 'BertPreTokenizer' at pre_tokenizer.pretokenizers[1]");
  j = fixture_json("llama3_bpe");
  j["decoder"] = {{"type", "WordPiece"}};
  expect_error(j, "unsupported decoder type 'WordPiece'");
  j = fixture_json("llama3_bpe");
  j["post_processor"] = {{"type", "Magic"}};
  expect_error(j, "unsupported post_processor type 'Magic'");
  j = fixture_json("llama3_bpe");
  j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Sideways";
  expect_error(j, "pre_tokenizer.pretokenizers[0].behavior must be");
  j = fixture_json("llama3_bpe");
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"Regex", "(unclosed"}};
  expect_error(j, "does not compile");
  j = fixture_json("llama3_bpe");
  j["decoder"] = {{"replacement", "x"}};
  expect_error(j, "missing field decoder.type");
}

TEST(TokenizerMalformed, DeepNestingIsBounded) {
  // 20 Sequences (about 40 JSON levels) pass the parser's depth bound and meet the component bound;
  // 100 (about 200 levels) are refused while parsing, before any component is built
  for (const auto& [sequences, message] : {std::pair{20, "nests deeper"}, {100, "more than 64 levels deep"}}) {
    json j = fixture_json("llama3_bpe");
    json normalizer = {{"type", "NFC"}};
    for (int i = 0; i < sequences; ++i) normalizer = {{"type", "Sequence"}, {"normalizers", json::array({normalizer})}};
    j["normalizer"] = normalizer;
    expect_error(j, message);
  }
}

TEST(TokenizerMalformed, PostProcessorIds) {
  json j = fixture_json("llama3_bpe");
  j["post_processor"]["processors"][1]["special_tokens"]["<|begin_of_text|>"]["ids"] = json::array({5000000});
  expect_error(j, "is not a token of this tokenizer");
  j = fixture_json("llama3_bpe");
  j["post_processor"]["processors"][1]["single"] = json::array();
  expect_error(j, "has no $A");
}

TEST(TokenizerMalformed, BadConfig) {
  const json j = fixture_json("llama3_bpe");
  expect_error(j, "tokenizer_config.json is not valid JSON", "{");
  expect_error(j, "bos_token '<nope>' is not a token", R"({"bos_token": "<nope>"})");
  expect_error(j, "eos_token must be a string", R"({"eos_token": 3})");
  expect_error(j, "added_tokens_decoder[\"abc\"] is not a token id", R"({"added_tokens_decoder": {"abc": {"content": "x"}}})");
  expect_error(j, "says 'x'", R"({"added_tokens_decoder": {"900": {"content": "x"}}})");
  try {
    Tokenizer::from_json(j.dump(), "", R"({"eos_token_id": [-1]})");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("eos_token_id[0] = -1"), std::string::npos) << e.what();
  }
  // A token named only in the config is added, so it is matched in text.
  const Tokenizer tokenizer = Tokenizer::from_json(
      j.dump(), R"({"added_tokens_decoder": {"950": {"content": "<extra>", "special": true}}})");
  EXPECT_EQ(tokenizer.encode("a<extra>", false).back(), 950);
  EXPECT_EQ(tokenizer.vocab_size(), 951);
}

TEST(TokenizerMalformed, MissingDirectory) {
  try {
    Tokenizer::load("/nonexistent/model");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model/tokenizer.json not found"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dattn
