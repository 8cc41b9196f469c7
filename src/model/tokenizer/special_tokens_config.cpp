// bos / eos / chat template from tokenizer_config.json and generation_config.json.
#include <algorithm>

#include "dattn/core/error.h"
#include "dattn/io/json_input.h"
#include "tokenizer_impl.h"

namespace dattn::tokenizer_detail {
namespace {

// "bos_token": "<s>" | {"content": "<s>", ...} | null.
std::optional<std::string> token_text(const Json& config, const char* key) {
  const Json* value = optional_field(config, key, "tokenizer_config.json");
  if (value == nullptr) return std::nullopt;
  const std::string path = std::string("tokenizer_config.json ") + key;
  if (value->is_string()) return value->get<std::string>();
  if (value->is_object()) return require_string(*value, "content", path);
  fail("tokenizer: {} must be a string or an object with content, got {}", path, json_excerpt(*value));
}

int32_t id_of(const TokenizerImpl& impl, const std::string& text, const char* what) {
  const std::optional<int32_t> id = impl.find(text);
  if (!id) fail("tokenizer: tokenizer_config.json {} '{}' is not a token of this tokenizer", what, excerpt(text));
  return *id;
}

std::optional<int32_t> end_of_turn_id(const TokenizerImpl& impl, ChatFamily family) {
  switch (family) {
    case ChatFamily::llama3:
    case ChatFamily::llama31: return impl.find("<|eot_id|>");
    case ChatFamily::chatml: return impl.find("<|im_end|>");
    case ChatFamily::mistral: return impl.find("</s>");
  }
  return std::nullopt;
}

}  // namespace

void apply_special_token_config(TokenizerImpl& impl, const Json& config, const Json& generation_config) {
  const bool has_config = config.is_object();
  if (has_config && config.contains("bos_token")) {
    if (const std::optional<std::string> bos = token_text(config, "bos_token")) impl.bos_id = id_of(impl, *bos, "bos_token");
  } else if (impl.post_processor) {
    impl.bos_id = impl.post_processor->leading_special_id();
  }
  if (has_config) {
    if (const std::optional<std::string> eos = token_text(config, "eos_token")) {
      impl.eos_ids.push_back(id_of(impl, *eos, "eos_token"));
      impl.eos_token = *eos;
    }
    // The chat template sees the configured token texts, as transformers' special_tokens_map has them.
    impl.template_tokens = {token_text(config, "bos_token"), token_text(config, "eos_token"),
                            token_text(config, "unk_token"), token_text(config, "pad_token")};
    if (impl.chat_template.empty()) {
      if (const Json* field = optional_field(config, "chat_template", "tokenizer_config.json")) {
        impl.chat_template = select_chat_template(*field).value_or("");
        impl.chat_template_origin = "tokenizer_config.json chat_template";
      }
    }
  }
  if (generation_config.is_object()) {
    if (const Json* eos = optional_field(generation_config, "eos_token_id", "generation_config.json")) {
      if (eos->is_array()) {
        for (size_t i = 0; i < eos->size(); ++i) {
          impl.eos_ids.push_back(as_token_id((*eos)[i], "generation_config.json eos_token_id[" + std::to_string(i) + "]"));
        }
      } else {
        impl.eos_ids.push_back(as_token_id(*eos, "generation_config.json eos_token_id"));
      }
    }
  }
  impl.chat_family = detect_chat_family(impl);
  if (impl.chat_family) {
    if (const std::optional<int32_t> id = end_of_turn_id(impl, *impl.chat_family)) impl.eos_ids.push_back(*id);
  }
  if (impl.eos_ids.empty()) {
    // No configuration: the conventional end tokens that this vocabulary has.
    for (const char* name : {"</s>", "<|end_of_text|>", "<|endoftext|>"}) {
      if (const std::optional<int32_t> id = impl.find(name)) impl.eos_ids.push_back(*id);
    }
  }
  if (impl.eos_token.empty() && !impl.eos_ids.empty() && impl.has_id(impl.eos_ids.front())) {
    impl.eos_token = impl.token_by_id[impl.eos_ids.front()];
  }
  std::vector<int32_t> unique;
  for (const int32_t id : impl.eos_ids) {
    if (std::find(unique.begin(), unique.end(), id) == unique.end()) unique.push_back(id);
  }
  impl.eos_ids = std::move(unique);
}

}  // namespace dattn::tokenizer_detail
