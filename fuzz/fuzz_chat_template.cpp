// libFuzzer target: the chat-template interpreter on arbitrary templates and messages. The input is a
// template, optionally followed by a NUL byte and a JSON array of messages. Any outcome but a rendered
// text or a dattn::Error (a crash, a hang past the step bound, another exception) is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "dattn/core/error.h"
#include "dattn/model/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  const std::string_view source = input.substr(0, split);
  nlohmann::ordered_json messages = nlohmann::ordered_json::parse(R"([{"role": "system", "content": "s"},
      {"role": "user", "content": "hi"}, {"role": "assistant", "content": "<think>r</think>a"}])");
  if (split != std::string_view::npos) {
    nlohmann::ordered_json parsed = nlohmann::ordered_json::parse(input.substr(split + 1), nullptr, false);
    if (parsed.is_array()) messages = std::move(parsed);
  }
  dattn::ChatTemplateOptions options;
  options.max_steps = 100'000;
  options.max_output_bytes = 1 << 20;
  options.now = 0;
  try {
    const dattn::ChatTemplate chat_template =
        dattn::ChatTemplate::from_string(source, {"<s>", "</s>", std::nullopt, std::nullopt}, "fuzz", options);
    dattn::render_chat(chat_template, messages, true, {{"tools", nlohmann::ordered_json::array()}});
  } catch (const dattn::Error&) {
  }
  return 0;
}
