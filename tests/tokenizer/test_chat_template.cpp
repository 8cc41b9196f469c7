// The chat-template interpreter against transformers: the published templates of Llama 3.2/3.3,
// Mistral v0.2/v0.3, Qwen2/2.5/3 and SmolLM2 rendered by apply_chat_template
// (tools/make_chat_template_fixtures.py) must come out byte for byte the same, and the same Jinja
// feature snippets must render as transformers' Jinja environment renders them.
#include <gtest/gtest.h>

#include "dattn/core/error.h"
#include "dattn/model/chat_template.h"
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
  ASSERT_GE(cases.size(), 50u);
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

}  // namespace
}  // namespace dattn
