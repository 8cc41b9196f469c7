// The chat-template interpreter against transformers: the published templates of Llama 3.2/3.3,
// Mistral v0.2/v0.3, Qwen2/2.5/3 and SmolLM2 rendered by apply_chat_template
// (tools/make_chat_template_fixtures.py) must come out byte for byte the same, and the same Jinja
// feature snippets must render as transformers' Jinja environment renders them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "dattn/core/error.h"
#include "dattn/model/chat_template.h"
#include "dattn/model/tokenizer.h"
#include "fixture_paths.h"

namespace dattn {
namespace {

using ordered_json = nlohmann::ordered_json;

std::filesystem::path templates_dir() { return std::filesystem::path(DATTN_SOURCE_DIR) / "tests/fixtures/chat_templates"; }

ordered_json read_cases(const char* file) {
  return ordered_json::parse(test::read_text_file(templates_dir() / file))["cases"];
}

std::optional<std::string> optional_token(const ordered_json& value) {
  if (value.is_null()) return std::nullopt;
  return value.get<std::string>();
}

TEST(ChatTemplate, PublishedTemplatesRenderAsTransformersDoes) {
  const ordered_json cases = read_cases("expected.json");
  ASSERT_GE(cases.size(), 140u);
  size_t errors = 0;
  for (const ordered_json& c : cases) {
    ChatTemplateOptions options;
    options.now = c["now"].get<std::time_t>();
    const ChatTemplate tmpl = ChatTemplate::from_string(
        test::read_text_file(templates_dir() / c["template"].get<std::string>()),
        {optional_token(c["bos_token"]), optional_token(c["eos_token"]), std::nullopt, std::nullopt},
        c["template"].get<std::string>(), options);
    ordered_json extra = c["extra"];
    if (!c["tools"].is_null()) extra["tools"] = c["tools"];
    if (c.contains("error")) {
      ++errors;
      try {
        render_chat(tmpl, c["messages"], c["add_generation_prompt"].get<bool>(), extra);
        ADD_FAILURE() << "expected an error: " << c.dump();
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(c["error"].get<std::string>()), std::string::npos) << e.what();
      }
      continue;
    }
    std::string text;
    EXPECT_NO_THROW(text = render_chat(tmpl, c["messages"], c["add_generation_prompt"].get<bool>(), extra)) << c.dump();
    EXPECT_EQ(text, c["text"].get<std::string>()) << c.dump();
  }
  EXPECT_GE(errors, 8u);
}

TEST(ChatTemplate, JinjaFeaturesRenderAsTransformersDoes) {
  const ordered_json cases = read_cases("features.json");
  ASSERT_GE(cases.size(), 70u);
  const ordered_json messages = ordered_json::parse(R"([{"role": "user", "content": "hi"}])");
  for (const ordered_json& c : cases) {
    const std::string source = c["template"].get<std::string>();
    if (c.contains("error")) {
      EXPECT_THROW(render_chat(ChatTemplate::from_string(source), messages, false, c["vars"]), Error) << source;
      continue;
    }
    std::string text;
    try {
      text = render_chat(ChatTemplate::from_string(source), messages, false, c["vars"]);
    } catch (const Error& e) {
      ADD_FAILURE() << source << " threw " << e.what();
      continue;
    }
    EXPECT_EQ(text, c["text"].get<std::string>()) << source;
  }
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

TEST(ChatTemplate, ModelDirectoryTemplateIsFoundAndUsedByEncodeChat) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("dattn_chat_template_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const char* file : {"tokenizer.json", "tokenizer_config.json"}) {
    std::filesystem::copy_file(test::tokenizer_fixture_dir("qwen2_bpe") / file, dir / file,
                               std::filesystem::copy_options::overwrite_existing);
  }
  const std::vector<ChatMessage> chat = {{"user", "hi"}};
  // tokenizer_config.json's template (ChatML, no default system turn)
  std::optional<ChatTemplate> config_template = ChatTemplate::load(dir);
  ASSERT_TRUE(config_template.has_value());
  EXPECT_EQ(render_chat(*config_template, chat, true), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  // chat_template.jinja beside it wins, for ChatTemplate::load and for the tokenizer behind `generate --chat`
  write_file(dir / "chat_template.jinja", test::read_text_file(templates_dir() / "qwen2.5-instruct.jinja"));
  const std::optional<ChatTemplate> file_template = ChatTemplate::load(dir);
  ASSERT_TRUE(file_template.has_value());
  EXPECT_EQ(file_template->origin(), "chat_template.jinja");
  const std::string text = render_chat(*file_template, chat, true);
  EXPECT_EQ(text.rfind("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud.", 0), 0u) << text;
  const Tokenizer tokenizer = Tokenizer::load(dir);
  EXPECT_EQ(tokenizer.encode_chat(chat, true), tokenizer.encode(text, false));
  std::filesystem::remove_all(dir);
}

TEST(ChatTemplate, ConfigTemplateListsAndSpecialTokens) {
  const std::string config = R"({"bos_token": {"content": "<s>", "special": true}, "eos_token": "</s>",
      "chat_template": [{"name": "default", "template": "{{ bos_token }}D{{ messages|length }}{{ eos_token }}"},
                        {"name": "tool_use", "template": "T{{ tools|length if tools else 0 }}"}]})";
  const std::vector<ChatMessage> chat = {{"user", "hi"}};
  EXPECT_EQ(render_chat(*ChatTemplate::from_config(config), chat, false), "<s>D1</s>");
  EXPECT_EQ(render_chat(*ChatTemplate::from_config(config, {}, {}, true), chat, false, {{"tools", {1, 2}}}), "T2");
  EXPECT_EQ(render_chat(*ChatTemplate::from_config(config, {}, "tool_use"), chat, false), "T0");
  try {
    ChatTemplate::from_config(config, {}, "rag");
    ADD_FAILURE() << "expected an error for an unknown template name";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("default, tool_use"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(ChatTemplate::from_config(R"({"eos_token": "</s>"})").has_value());
  EXPECT_FALSE(ChatTemplate::from_config("").has_value());
  EXPECT_THROW(ChatTemplate::from_config("{not json"), Error);
  EXPECT_THROW(ChatTemplate::from_config(R"({"chat_template": 5})"), Error);
  // A raw string (e.g. GGUF metadata) with its own tokens.
  ChatSpecialTokens tokens;
  tokens.bos_token = "<|begin|>";
  const ChatTemplate raw = ChatTemplate::from_string("{{ bos_token }}{{ messages[0].content }}", tokens);
  EXPECT_EQ(render_chat(raw, chat, true), "<|begin|>hi");
}

TEST(ChatTemplate, MessagesAreNormalizedAsTransformersDoes) {
  const ChatTemplate keys = ChatTemplate::from_string(
      "{% for m in messages %}{% for k, v in m.items() %}{{ k }}={{ v }};{% endfor %}|{% endfor %}");
  const ordered_json messages = ordered_json::parse(R"([
      {"role": "assistant", "content": "a", "tool_calls": null, "reasoning": "r"},
      {"role": "user", "content": "b", "name": null}])");
  EXPECT_EQ(render_chat(keys, messages, false), "thinking=r;role=assistant;content=a;reasoning=r;reasoning_content=r;|role=user;content=b;|");
  // Built-in layouts render through the same interpreter.
  const ChatTemplate chatml = ChatTemplate::builtin(ChatFamily::chatml, {});
  EXPECT_EQ(render_chat(chatml, std::vector<ChatMessage>{{"user", "x"}}, true), "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_THROW(render_chat(chatml, std::vector<ChatMessage>{{"user", "\xff"}}, true), Error);
}

}  // namespace
}  // namespace dattn
