// Chat prompts must equal what the published Jinja templates render (recorded by the fixture script).
#include <gtest/gtest.h>

#include <algorithm>

#include "dattn/core/error.h"
#include "dattn/model/tokenizer.h"
#include "fixture_paths.h"

namespace dattn {
namespace {

using nlohmann::json;

std::vector<ChatMessage> messages_from(const json& list) {
  std::vector<ChatMessage> messages;
  for (const json& m : list) messages.push_back({m["role"], m["content"]});
  return messages;
}

// The fixture whose special tokens each family's recorded rendering used.
std::string fixture_for(ChatFamily family) {
  switch (family) {
    case ChatFamily::llama3:
    case ChatFamily::llama31: return "llama3_bpe";
    case ChatFamily::mistral: return "llama2_bpe";
    case ChatFamily::chatml: return "qwen2_bpe";
  }
  return "";
}

TEST(Chat, MatchesTheRenderedTemplates) {
  const json chats = test::read_expected("llama3_bpe")["chats"];
  ASSERT_GE(chats.size(), 20u);
  for (const json& chat : chats) {
    const ChatFamily family = parse_chat_family(chat["family"].get<std::string>());
    const Tokenizer tokenizer = Tokenizer::load(test::tokenizer_fixture_dir(fixture_for(family)));
    EXPECT_EQ(tokenizer.format_chat(family, messages_from(chat["messages"]), chat["add_generation_prompt"]),
              chat["text"].get<std::string>())
        << chat.dump();
  }
}

TEST(Chat, FamilyIsDetectedFromTemplateOrTokens) {
  const auto family_of = [](const std::string& name) {
    return Tokenizer::load(test::tokenizer_fixture_dir(name)).chat_family();
  };
  EXPECT_EQ(family_of("llama3_bpe"), ChatFamily::llama31);  // template has the knowledge-date lines
  EXPECT_EQ(family_of("qwen2_bpe"), ChatFamily::chatml);
  EXPECT_EQ(family_of("llama2_bpe"), ChatFamily::mistral);
  EXPECT_EQ(family_of("mistral_bpe"), ChatFamily::mistral);
  // No template: <|start_header_id|> in the vocabulary says llama3.
  const std::filesystem::path dir = test::tokenizer_fixture_dir("llama3_bpe");
  EXPECT_EQ(Tokenizer::from_json(test::read_text_file(dir / "tokenizer.json")).chat_family(), ChatFamily::llama3);
}

TEST(Chat, EncodeChatKeepsSpecialTokensWhole) {
  const Tokenizer tokenizer = Tokenizer::load(test::tokenizer_fixture_dir("qwen2_bpe"));
  const std::vector<int32_t> ids = tokenizer.encode_chat({{"user", "hi"}}, true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), *tokenizer.token_id("<|im_start|>"));
  EXPECT_EQ(tokenizer.decode(ids, false), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  const Tokenizer llama3 = Tokenizer::load(test::tokenizer_fixture_dir("llama3_bpe"));
  const std::vector<int32_t> llama_ids = llama3.encode_chat({{"user", "hi"}}, true);
  EXPECT_EQ(std::count(llama_ids.begin(), llama_ids.end(), *llama3.bos_id()), 1);  // BOS once, from the text
}

TEST(Chat, RejectsWhatTheLayoutCannotExpress) {
  const Tokenizer llama2 = Tokenizer::load(test::tokenizer_fixture_dir("llama2_bpe"));
  EXPECT_THROW(llama2.format_chat(ChatFamily::mistral, {}, true), Error);
  EXPECT_THROW(llama2.format_chat(ChatFamily::mistral, {{"assistant", "first"}}, false), Error);
  EXPECT_THROW(llama2.format_chat(ChatFamily::mistral, {{"user", "a"}, {"user", "b"}}, false), Error);
  EXPECT_THROW(llama2.format_chat(ChatFamily::chatml, {{"user", "a"}}, true), Error);  // no <|im_start|>
  EXPECT_THROW(llama2.format_chat(ChatFamily::llama3, {{"user", "a"}}, true), Error);
  EXPECT_THROW(parse_chat_family("vicuna"), Error);
  EXPECT_EQ(parse_chat_family("chatml"), ChatFamily::chatml);
}

}  // namespace
}  // namespace dattn
