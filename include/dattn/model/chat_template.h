// Chat prompts rendered with a model's own Jinja chat template, as transformers' apply_chat_template
// renders them (a Jinja subset interpreted here; no Python). The template comes from a model directory
// (chat_template.jinja or tokenizer_config.json's chat_template), from a raw string (e.g. GGUF metadata)
// or from the built-in layouts of the chat families.
#pragma once
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace dattn {

namespace chat_template_detail {
struct Program;
}

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", "tool", ...
  std::string content;
};

// Built-in layouts for models without a template: llama3 (Llama 3.0), llama31 (Llama 3.1+: system
// header with the knowledge-cutoff date lines), mistral ([INST] ... [/INST], Llama 2 / Mistral),
// chatml (<|im_start|>, Qwen).
enum class ChatFamily { llama3, llama31, mistral, chatml };

// "llama3" etc.; parse throws dattn::Error naming an unknown name.
std::string_view chat_family_name(ChatFamily family);
ChatFamily parse_chat_family(std::string_view name);

// The special-token variables a template sees (transformers' special_tokens_map); an absent token is an
// undefined variable.
struct ChatSpecialTokens {
  std::optional<std::string> bos_token, eos_token, unk_token, pad_token;
};

// Bounds for untrusted templates (exceeding one throws dattn::Error naming the bound) and the clock.
struct ChatTemplateOptions {
  size_t max_source_bytes = size_t{1} << 20;
  size_t max_output_bytes = size_t{64} << 20;   // also bounds every intermediate string and list
  uint64_t max_steps = 10'000'000;  // expressions, statements and elements scanned in one render (~1-3 s)
  int max_depth = 256;                          // nesting of the parse and of macro calls
  std::optional<std::time_t> now;               // strftime_now's time (local zone); unset: the current time
};

class ChatTemplate {
 public:
  // Parses Jinja source; syntax errors throw dattn::Error "<origin>:LINE:COL: ...".
  static ChatTemplate from_string(std::string_view source, ChatSpecialTokens tokens = {},
                                  std::string origin = "chat template", ChatTemplateOptions options = {});
  // The model directory's template as transformers picks it: chat_template.jinja if present, else
  // tokenizer_config.json's chat_template (select_chat_template). Special tokens come from
  // tokenizer_config.json.
  // nullopt when the directory has no template; malformed files throw dattn::Error.
  static std::optional<ChatTemplate> load(const std::filesystem::path& model_dir, std::string_view name = {},
                                          bool with_tools = false);
  // The same choice from in-memory file contents (either may be empty).
  static std::optional<ChatTemplate> from_config(std::string_view tokenizer_config_json,
                                                 std::string_view chat_template_jinja = {},
                                                 std::string_view name = {}, bool with_tools = false);
  // The fixed layout of a family as a template, rendered by the same interpreter.
  static ChatTemplate builtin(ChatFamily family, ChatSpecialTokens tokens);

  const std::string& source() const;
  const std::string& origin() const;
  const ChatSpecialTokens& special_tokens() const { return tokens_; }
  const ChatTemplateOptions& options() const { return options_; }

 private:
  ChatTemplate(std::shared_ptr<const chat_template_detail::Program> program, ChatSpecialTokens tokens,
               ChatTemplateOptions options);
  std::shared_ptr<const chat_template_detail::Program> program_;
  ChatSpecialTokens tokens_;
  ChatTemplateOptions options_;
  friend std::string render_chat(const ChatTemplate&, const nlohmann::ordered_json&, bool,
                                 const nlohmann::ordered_json&);
};

// The template text tokenizer_config.json's chat_template field names: the string, or from a list of
// {name, template}: `name` if given (an unknown name throws), else "tool_use" when with_tools, else
// "default", else the first. nullopt for null or an empty list.
std::optional<std::string> select_chat_template(const nlohmann::json& field, std::string_view name = {},
                                                bool with_tools = false);

// Renders messages (a JSON array of OpenAI-style message objects: role, content, tool_calls, ...) as
// transformers does: keys whose value is null are dropped, an empty list is an error, and the template
// sees messages, tools (null unless extra has it), documents, add_generation_prompt, the special tokens,
// raise_exception, strftime_now, namespace, plus every key of `extra` (an object or null: tools,
// enable_thinking, date_string, ...; it overrides the special tokens). Object key order is kept, as
// Python's dicts keep it (hence ordered_json). Template errors (raise_exception, undefined values, type
// errors, limits) throw dattn::Error "<origin>:LINE:COL: ...". The text includes BOS where the template
// puts it: encode it with add_special_tokens = false.
std::string render_chat(const ChatTemplate& chat_template, const nlohmann::ordered_json& messages,
                        bool add_generation_prompt, const nlohmann::ordered_json& extra = nullptr);
std::string render_chat(const ChatTemplate& chat_template, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt, const nlohmann::ordered_json& extra = nullptr);

}  // namespace dattn
