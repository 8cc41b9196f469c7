// The public Tokenizer API over TokenizerImpl.
#include "dattn/model/tokenizer.h"

#include "dattn/core/error.h"
#include "dattn/core/text_file.h"
#include "dattn/io/json_input.h"
#include "gguf_tokenizer.h"
#include "tokenizer_impl.h"

namespace dattn {
namespace {

using tokenizer_detail::Json;

// A file of the model directory: regular files only (a directory or FIFO named tokenizer_config.json is an
// error, not empty text), at most limits.max_bytes.
std::optional<std::string> read_file_if_present(const std::filesystem::path& path, const JsonLimits& limits) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) return std::nullopt;
  return read_text_file(path, limits.max_bytes, InputKind::regular_file);
}

Json parse_optional_json(std::string_view text, const char* name) {
  if (text.empty()) return Json();
  Json value = parse_json(text, fmt::format("tokenizer: {}", name), kModelJsonLimits);
  if (!value.is_object()) fail("tokenizer: {} must be a JSON object, got {}", name, value.type_name());
  return value;
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<tokenizer_detail::TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::filesystem::path& model_dir) {
  if (io::is_gguf_file(model_dir)) {
    const io::GgufFile file(model_dir);
    try {
      const tokenizer_detail::GgufTokenizerFiles files = tokenizer_detail::gguf_tokenizer_files(file.header());
      return from_json(files.tokenizer_json, files.config_json, files.generation_config_json);
    } catch (const Error& e) {
      fail("{}: GGUF tokenizer: {}", model_dir.string(), e.what());
    }
  }
  const std::optional<std::string> tokenizer_json =
      read_file_if_present(model_dir / "tokenizer.json", kTokenizerJsonLimits);
  if (!tokenizer_json) fail("tokenizer: {} not found", (model_dir / "tokenizer.json").string());
  const std::string config = read_file_if_present(model_dir / "tokenizer_config.json", kModelJsonLimits).value_or("");
  const std::string generation =
      read_file_if_present(model_dir / "generation_config.json", kModelJsonLimits).value_or("");
  const std::string jinja = read_file_if_present(model_dir / "chat_template.jinja", kModelJsonLimits).value_or("");
  return from_json(*tokenizer_json, config, generation, jinja);
}

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json, std::string_view config_json,
                               std::string_view generation_config_json, std::string_view chat_template_jinja) {
  try {
    std::unique_ptr<tokenizer_detail::TokenizerImpl> impl = tokenizer_detail::parse_tokenizer_json(tokenizer_json);
    impl->chat_template = std::string(chat_template_jinja);
    impl->chat_template_origin = "chat_template.jinja";
    const Json config = parse_optional_json(config_json, "tokenizer_config.json");
    if (!config.is_null()) tokenizer_detail::merge_config_added_tokens(*impl, config);
    impl->finish_tables();
    const Json generation = parse_optional_json(generation_config_json, "generation_config.json");
    tokenizer_detail::apply_special_token_config(*impl, config, generation);
    return Tokenizer(std::move(impl));
  } catch (const Json::exception& e) {
    // Every access is type-checked first; this only guards against a case the checks missed.
    fail("tokenizer: malformed JSON value: {}", excerpt(e.what(), 200));
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  return impl_->encode(text, add_special_tokens);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  return impl_->decode(ids, skip_special_tokens);
}

std::string Tokenizer::token_to_piece(int32_t id) const { return impl_->token_to_piece(id); }

const std::string& Tokenizer::id_to_token(int32_t id) const {
  if (!impl_->has_id(id)) fail("tokenizer: token id {} is not in the vocabulary (size {})", id, vocab_size());
  return impl_->token_by_id[id];
}

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const { return impl_->find(token); }

bool Tokenizer::is_special(int32_t id) const { return impl_->has_id(id) && impl_->id_special[id]; }

std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos_id; }

const std::vector<int32_t>& Tokenizer::eos_ids() const { return impl_->eos_ids; }

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->token_by_id.size()); }

std::optional<ChatFamily> Tokenizer::chat_family() const { return impl_->chat_family; }

std::string Tokenizer::format_chat(ChatFamily family, const std::vector<ChatMessage>& messages,
                                   bool add_generation_prompt) const {
  return tokenizer_detail::format_chat(*impl_, family, messages, add_generation_prompt);
}

std::optional<ChatTemplate> Tokenizer::chat_template() const {
  if (impl_->chat_template.empty()) return std::nullopt;
  return ChatTemplate::from_string(impl_->chat_template, impl_->template_tokens, impl_->chat_template_origin);
}

std::vector<int32_t> Tokenizer::encode_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  if (const std::optional<ChatTemplate> model_template = chat_template()) {
    return encode(render_chat(*model_template, messages, add_generation_prompt), false);
  }
  if (!impl_->chat_family) fail("chat: this model has no chat template and its chat family is unknown (no known chat tokens)");
  return encode(format_chat(*impl_->chat_family, messages, add_generation_prompt), false);
}

}  // namespace dattn
