// Untrusted templates: errors name the template position, every bound of ChatTemplateOptions holds, and
// randomly corrupted templates and inputs only ever give a rendered text or a dattn::Error (seeded,
// bounded in time).
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "dattn/core/error.h"
#include "dattn/model/chat_template.h"
#include "fixture_paths.h"

namespace dattn {
namespace {

using ordered_json = nlohmann::ordered_json;

const ordered_json kMessages = ordered_json::parse(R"([{"role": "user", "content": "hi"}])");

// The message of the error that rendering `source` throws ("" when it renders).
std::string error_of(const std::string& source, ChatTemplateOptions options = {}, const ordered_json& messages = kMessages) {
  try {
    render_chat(ChatTemplate::from_string(source, {}, "t.jinja", options), messages, true);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ChatTemplateErrors, NameTheTemplatePosition) {
  EXPECT_NE(error_of("line one\n  {{ x.y.z }}").find("t.jinja:2:"), std::string::npos) << error_of("line one\n  {{ x.y.z }}");
  EXPECT_NE(error_of("{{ x.y.z }}").find("'x' is undefined"), std::string::npos);
  EXPECT_NE(error_of("a\nb\n{% if %}").find("t.jinja:3:"), std::string::npos);
  EXPECT_NE(error_of("{% for m in messages %}\n{{ raise_exception('bad role ' ~ m.role) }}{% endfor %}")
                .find("t.jinja:2:4: raise_exception: bad role user"),
            std::string::npos);
  EXPECT_NE(error_of("{{ 'open").find("unterminated string"), std::string::npos);
  EXPECT_NE(error_of("{% if true %}").find("endif"), std::string::npos);
  EXPECT_NE(error_of("{{ x | nosuchfilter }}").find("unknown filter 'nosuchfilter'"), std::string::npos);
  EXPECT_NE(error_of("{% call foo() %}{% endcall %}").find("unsupported statement 'call'"), std::string::npos);
  EXPECT_NE(error_of("{{ 1 }}", {}, ordered_json::array()).find("no messages"), std::string::npos);
  EXPECT_NE(error_of("{{ 1 }}", {}, ordered_json::parse("[1]")).find("message 0 must be a JSON object"), std::string::npos);
  EXPECT_THROW(ChatTemplate::from_string("\xff\xfe"), Error);  // not UTF-8
}

TEST(ChatTemplateLimits, StepsOutputDepthAndCyclesAreBounded) {
  ChatTemplateOptions small;
  small.max_steps = 100'000;
  small.max_output_bytes = 1 << 20;
  EXPECT_NE(error_of("{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}", small).find("steps"), std::string::npos);
  EXPECT_NE(error_of("{{ 'x' * 100000000 }}", small).find("exceed"), std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", small)
                .find("exceed"),
            std::string::npos);
  EXPECT_NE(error_of("{{ range(100000000)|length }}", small).find("range too long"), std::string::npos);
  EXPECT_NE(error_of("{{ ('x' * 1000)|replace('x', 'yyyyyyyyyy' * 1000) }}", small).find("exceed"), std::string::npos);
  EXPECT_NE(error_of("{% set l = range(1000)|list %}{% for i in range(1000) %}{{ l == l }}{% endfor %}", small).find("steps"),
            std::string::npos);
  EXPECT_NE(error_of("{{ " + std::string(2000, '(') + "1" + std::string(2000, ')') + " }}").find("nest"), std::string::npos);
  std::string chain = "{{ 1";
  for (int i = 0; i < 5000; ++i) chain += " + 1";
  EXPECT_NE(error_of(chain + " }}").find("nested deeper"), std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace(x=1) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}").find("deeper"),
            std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace() %}{% set ns.me = ns %}").find("cycles"), std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace() %}{% set ns.me = [{'a': ns}] %}").find("cycles"), std::string::npos);
  EXPECT_NE(error_of("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}").find("nested deeper"), std::string::npos);
  ordered_json deep = "x";
  for (int i = 0; i < 1000; ++i) deep = ordered_json::array({deep});
  EXPECT_NE(error_of("{{ 1 }}", {}, ordered_json::array({{{"role", "user"}, {"content", deep}}})).find("deeper"), std::string::npos);
  ChatTemplateOptions tiny_source;
  tiny_source.max_source_bytes = 10;
  EXPECT_THROW(ChatTemplate::from_string("{{ 'more than ten bytes' }}", {}, "t", tiny_source), Error);
}

TEST(ChatTemplateLimits, StepBoundStopsARunawayLoopQuickly) {
  // A million steps of a tight loop: the default bound (10 million) then ends a runaway template within
  // seconds. The time printed is what a step costs on this machine.
  ChatTemplateOptions options;
  options.max_steps = 1'000'000;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_NE(error_of("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", options).find("steps"),
            std::string::npos);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 5.0);  // generous: sanitizer builds on a shared 2-core machine
  std::cout << "1M steps in " << seconds << " s\n";
}

std::string mutate(std::string text, std::mt19937& rng) {
  static const std::string kPieces[] = {"{{", "}}", "{%", "%}", "{#", "#}", "-", "+", "(", ")", "[", "]", "'", "\"",
                                        "|", ".", ",", " if ", " for x in ", " endfor ", " endif ", " else ", " not ",
                                        " is ", " in ", "~", "*", "**", "//", "loop", "ns", "messages", "\\", "\n", "\xc3\xa9"};
  const int edits = 1 + static_cast<int>(rng() % 6);
  for (int e = 0; e < edits && !text.empty(); ++e) {
    const size_t pos = rng() % text.size();
    switch (rng() % 5) {
      case 0: text.erase(pos, 1 + rng() % 12); break;
      case 1: text.insert(pos, kPieces[rng() % std::size(kPieces)]); break;
      case 2: text.insert(pos, text.substr(rng() % text.size(), 1 + rng() % 40)); break;
      case 3: text[pos] = static_cast<char>(rng()); break;
      default: std::swap(text[pos], text[rng() % text.size()]); break;
    }
  }
  return text;
}

ordered_json random_messages(std::mt19937& rng) {
  static const char* kRoles[] = {"system", "user", "assistant", "tool", "ipython", ""};
  static const char* kContents[] = {"hi", "", "  padded  ", "<think>\nr\n</think>\n\na", "日本語 😀", "{{ x }}", "</tool_response>"};
  ordered_json messages = ordered_json::array();
  const int count = 1 + static_cast<int>(rng() % 5);
  for (int i = 0; i < count; ++i) {
    ordered_json m = {{"role", kRoles[rng() % std::size(kRoles)]}, {"content", kContents[rng() % std::size(kContents)]}};
    if (rng() % 4 == 0) m["tool_calls"] = ordered_json::parse(R"([{"id": "abcdefghi", "function": {"name": "f", "arguments": {"a": 1}}}])");
    if (rng() % 6 == 0) m["content"] = ordered_json::parse(R"({"k": [1, 2.5, null]})");
    messages.push_back(m);
  }
  return messages;
}

TEST(ChatTemplateFuzz, CorruptedTemplatesOnlyRenderOrThrow) {
  std::vector<std::string> seeds;
  const std::filesystem::path dir = std::filesystem::path(DATTN_SOURCE_DIR) / "tests/fixtures/chat_templates";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".jinja") seeds.push_back(test::read_text_file(entry.path()));
  }
  const ordered_json features = ordered_json::parse(test::read_text_file(dir / "features.json"));
  for (const auto& c : features["cases"]) seeds.push_back(c["template"].get<std::string>());
  ASSERT_GE(seeds.size(), 60u);
  ChatTemplateOptions options;
  options.max_steps = 20'000;
  options.max_output_bytes = 1 << 16;
  options.max_depth = 64;
  options.now = 0;
  std::mt19937 rng(12345);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int rendered = 0, rejected = 0;
  for (int i = 0; i < 20000 && std::chrono::steady_clock::now() < deadline; ++i) {
    const std::string source = mutate(seeds[rng() % seeds.size()], rng);
    ordered_json extra = ordered_json::object();
    if (rng() % 3 == 0) extra["tools"] = ordered_json::parse(R"([{"type": "function", "function": {"name": "f", "parameters": {}}}])");
    if (rng() % 5 == 0) extra["enable_thinking"] = false;
    try {
      render_chat(ChatTemplate::from_string(source, {"<s>", "</s>", std::nullopt, std::nullopt}, "fuzz", options),
                  random_messages(rng), rng() % 2 == 0, extra);
      ++rendered;
    } catch (const Error&) {
      ++rejected;
    }
  }
  std::cout << rendered << " rendered, " << rejected << " rejected\n";
  EXPECT_GT(rendered + rejected, 500);
}

}  // namespace
}  // namespace dattn
