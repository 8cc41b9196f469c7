// The public chat-template API: finding a model's template, the built-in family layouts, rendering.
#include "dattn/model/chat_template.h"

#include "ast.h"
#include "dattn/core/error.h"
#include "dattn/core/text_file.h"
#include "interpreter.h"
#include "utf8.h"

namespace dattn {

using chat_template_detail::Interpreter;
using chat_template_detail::Value;
using chat_template_detail::ValueDict;

std::string_view chat_family_name(ChatFamily family) {
  switch (family) {
    case ChatFamily::llama3: return "llama3";
    case ChatFamily::llama31: return "llama31";
    case ChatFamily::mistral: return "mistral";
    case ChatFamily::chatml: return "chatml";
  }
  return "unknown";
}

ChatFamily parse_chat_family(std::string_view name) {
  for (const ChatFamily family : {ChatFamily::llama3, ChatFamily::llama31, ChatFamily::mistral, ChatFamily::chatml}) {
    if (chat_family_name(family) == name) return family;
  }
  fail("unknown chat family '{}' (expected llama3, llama31, mistral or chatml)", name);
}

namespace {

// The built-in layouts, as the published templates of each family render them (tool calling left out).
constexpr std::string_view kLlama3 =
    "{% for message in messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
constexpr std::string_view kLlama31 =
    "{{- bos_token }}\n{%- if not date_string is defined %}{%- set date_string = \"26 Jul 2024\" %}{%- endif %}\n"
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = \"\" %}{%- endif %}\n"
    "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n"
    "{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n"
    "{{- system_message }}\n{{- \"<|eot_id|>\" }}\n"
    "{%- for message in messages %}\n"
    "    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n{%- endif %}\n";
// Mistral v0.1 layout: a system message goes before the first user message, separated by a blank line;
// no generation prompt (the model answers right after [/INST]).
constexpr std::string_view kMistral =
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}"
    "{%- set loop_messages = messages[1:] %}{%- else %}{%- set loop_messages = messages %}{%- endif %}"
    "{{ bos_token }}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) or message['role'] not in ['user', 'assistant'] %}"
    "{{ raise_exception('chat family mistral needs user and assistant turns alternating from a user turn (after an "
    "optional system message); message ' ~ (loop.index0 + (1 if system_message is defined else 0)) ~ ' has role \\'' ~ "
    "message['role'] ~ '\\'') }}{% endif %}"
    "{% if message['role'] == 'user' %}"
    "{% if loop.first and system_message is defined %}{{ '[INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}"
    "{% else %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}";
constexpr std::string_view kChatml =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

std::optional<std::string> token_text(const nlohmann::json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"].get<std::string>();
  fail("tokenizer_config.json {} must be a string or an object with a string content, got {}", key, it->dump());
}

ChatSpecialTokens special_tokens_of(const nlohmann::json& config) {
  ChatSpecialTokens tokens;
  if (!config.is_object()) return tokens;
  tokens.bos_token = token_text(config, "bos_token");
  tokens.eos_token = token_text(config, "eos_token");
  tokens.unk_token = token_text(config, "unk_token");
  tokens.pad_token = token_text(config, "pad_token");
  return tokens;
}

void check_utf8(std::string_view text, std::string_view what) {
  if (const std::optional<size_t> bad = tokenizer_detail::find_invalid_utf8(text)) {
    fail("{} is not valid UTF-8 (byte offset {})", what, *bad);
  }
}

}  // namespace

std::optional<std::string> select_chat_template(const nlohmann::json& field, std::string_view name, bool with_tools) {
  if (field.is_null()) return std::nullopt;
  if (field.is_string()) return field.get<std::string>();
  if (!field.is_array()) fail("tokenizer_config.json chat_template must be a string or a list, got {}", field.type_name());
  std::vector<std::pair<std::string, std::string>> named;
  for (size_t i = 0; i < field.size(); ++i) {
    const nlohmann::json& entry = field[i];
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() || !entry.contains("template") ||
        !entry["template"].is_string()) {
      fail("tokenizer_config.json chat_template[{}] must be an object with string name and template", i);
    }
    named.emplace_back(entry["name"].get<std::string>(), entry["template"].get<std::string>());
  }
  const auto find = [&](std::string_view wanted) -> const std::string* {
    for (const auto& [n, text] : named) {
      if (n == wanted) return &text;
    }
    return nullptr;
  };
  if (!name.empty()) {
    if (const std::string* text = find(name)) return *text;
    std::string names;
    for (const auto& entry : named) names += (names.empty() ? "" : ", ") + entry.first;
    fail("the model has no chat template named '{}' (it has: {})", name, names);
  }
  if (with_tools) {
    if (const std::string* text = find("tool_use")) return *text;
  }
  if (const std::string* text = find("default")) return *text;
  if (named.empty()) return std::nullopt;
  return named.front().second;
}

ChatTemplate::ChatTemplate(std::shared_ptr<const chat_template_detail::Program> program, ChatSpecialTokens tokens,
                           ChatTemplateOptions options)
    : program_(std::move(program)), tokens_(std::move(tokens)), options_(options) {}

ChatTemplate ChatTemplate::from_string(std::string_view source, ChatSpecialTokens tokens, std::string origin,
                                       ChatTemplateOptions options) {
  if (source.size() > options.max_source_bytes) {
    fail("{}: the template has {} bytes, more than the limit of {}", origin, source.size(), options.max_source_bytes);
  }
  check_utf8(source, origin);
  return ChatTemplate(chat_template_detail::parse_program(source, std::move(origin), options.max_depth), std::move(tokens),
                      options);
}

std::optional<ChatTemplate> ChatTemplate::from_config(std::string_view tokenizer_config_json,
                                                      std::string_view chat_template_jinja, std::string_view name,
                                                      bool with_tools) {
  nlohmann::json config;
  if (!tokenizer_config_json.empty()) {
    try {
      config = nlohmann::json::parse(tokenizer_config_json);
    } catch (const nlohmann::json::exception& e) {
      fail("tokenizer_config.json is not valid JSON: {}", e.what());
    }
    if (!config.is_object()) fail("tokenizer_config.json must be a JSON object, got {}", config.type_name());
  }
  ChatSpecialTokens tokens = special_tokens_of(config);
  if (!chat_template_jinja.empty()) return from_string(chat_template_jinja, std::move(tokens), "chat_template.jinja");
  const auto field = config.is_object() ? config.find("chat_template") : config.end();
  if (!config.is_object() || field == config.end()) return std::nullopt;
  const std::optional<std::string> source = select_chat_template(*field, name, with_tools);
  if (!source) return std::nullopt;
  return from_string(*source, std::move(tokens), "tokenizer_config.json chat_template");
}

std::optional<ChatTemplate> ChatTemplate::load(const std::filesystem::path& model_dir, std::string_view name,
                                               bool with_tools) {
  std::error_code ec;
  const std::filesystem::path config_path = model_dir / "tokenizer_config.json";
  const std::filesystem::path jinja_path = model_dir / "chat_template.jinja";
  const std::string config = std::filesystem::exists(config_path, ec) ? read_text_file(config_path) : std::string();
  const std::string jinja = std::filesystem::exists(jinja_path, ec) ? read_text_file(jinja_path) : std::string();
  return from_config(config, jinja, name, with_tools);
}

ChatTemplate ChatTemplate::builtin(ChatFamily family, ChatSpecialTokens tokens) {
  const std::string origin = "built-in " + std::string(chat_family_name(family)) + " template";
  switch (family) {
    case ChatFamily::llama3: return from_string(kLlama3, std::move(tokens), origin);
    case ChatFamily::llama31: return from_string(kLlama31, std::move(tokens), origin);
    case ChatFamily::mistral: return from_string(kMistral, std::move(tokens), origin);
    case ChatFamily::chatml: return from_string(kChatml, std::move(tokens), origin);
  }
  fail("unknown chat family {}", static_cast<int>(family));
}

const std::string& ChatTemplate::source() const { return program_->source; }
const std::string& ChatTemplate::origin() const { return program_->origin; }

namespace {

// transformers: keys whose value is None are dropped; reasoning under "thinking"/"reasoning" is also
// offered as "reasoning_content" (and the other way round as "thinking").
nlohmann::ordered_json normalize_message(const nlohmann::ordered_json& message, size_t index) {
  if (!message.is_object()) fail("chat: message {} must be a JSON object, got {}", index, message.type_name());
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& [key, value] : message.items()) {
    if (!value.is_null()) out[key] = value;
  }
  const nlohmann::ordered_json* reasoning = nullptr;
  for (const char* key : {"reasoning_content", "thinking", "reasoning"}) {
    if (out.contains(key)) {
      reasoning = &out[key];
      break;
    }
  }
  if (reasoning != nullptr) {
    nlohmann::ordered_json aliased = nlohmann::ordered_json::object();
    aliased["thinking"] = *reasoning;
    for (const auto& [key, value] : out.items()) aliased[key] = value;
    aliased["reasoning_content"] = *reasoning;
    return aliased;
  }
  return out;
}

}  // namespace

std::string render_chat(const ChatTemplate& chat_template, const nlohmann::ordered_json& messages,
                        bool add_generation_prompt, const nlohmann::ordered_json& extra) {
  if (!messages.is_array()) fail("chat: messages must be a JSON array, got {}", messages.type_name());
  if (messages.empty()) fail("chat: no messages to render");
  if (!extra.is_null() && !extra.is_object()) fail("chat: extra template variables must be a JSON object, got {}", extra.type_name());
  nlohmann::ordered_json normalized = nlohmann::ordered_json::array();
  for (size_t i = 0; i < messages.size(); ++i) normalized.push_back(normalize_message(messages[i], i));

  ValueDict variables;
  chat_template_detail::add_globals(variables);
  const ChatSpecialTokens& tokens = chat_template.tokens_;
  for (const auto& [name, token] : {std::pair{"bos_token", &tokens.bos_token}, std::pair{"eos_token", &tokens.eos_token},
                                    std::pair{"unk_token", &tokens.unk_token}, std::pair{"pad_token", &tokens.pad_token}}) {
    if (*token) variables.set(name, Value::string(**token));
  }
  variables.set("messages", chat_template_detail::from_json(normalized));
  variables.set("tools", Value::none());
  variables.set("documents", Value::none());
  variables.set("add_generation_prompt", Value::boolean(add_generation_prompt));
  if (extra.is_object()) {
    for (const auto& [key, value] : extra.items()) variables.set(key, chat_template_detail::from_json(value));
  }
  Interpreter interpreter(*chat_template.program_, chat_template.options_);
  return interpreter.render(std::move(variables));
}

std::string render_chat(const ChatTemplate& chat_template, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt, const nlohmann::ordered_json& extra) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    check_utf8(messages[i].role, fmt::format("chat: message {}'s role", i));
    check_utf8(messages[i].content, fmt::format("chat: message {}", i));
    list.push_back({{"role", messages[i].role}, {"content", messages[i].content}});
  }
  return render_chat(chat_template, list, add_generation_prompt, extra);
}

}  // namespace dattn
