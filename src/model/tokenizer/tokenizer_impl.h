// The loaded tokenizer: pipeline components plus the id tables shared by encode, decode and chat.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "added_tokens.h"
#include "bpe_model.h"
#include "dattn/model/tokenizer.h"
#include "decoders.h"
#include "normalizers.h"
#include "post_processors.h"
#include "pre_tokenizers.h"

namespace dattn::tokenizer_detail {

struct TokenizerImpl {
  BpeModel model;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<PostProcessor> post_processor;
  std::unique_ptr<Decoder> decoder;

  std::vector<AddedToken> added_tokens;
  AddedTokenMatcher raw_matcher;         // tokens matched on the original text (normalized = false)
  AddedTokenMatcher normalized_matcher;  // tokens matched on normalized pieces (normalized = true)

  std::vector<std::string> token_by_id;  // empty string where no token has the id
  std::vector<uint8_t> id_known;
  std::vector<uint8_t> id_special;
  TokenMap id_by_token;  // vocabulary and added tokens

  std::optional<int32_t> bos_id;
  std::string eos_token;  // tokenizer_config.json's eos_token text (Mistral chat turns end with it)
  std::vector<int32_t> eos_ids;
  std::string chat_template;  // chat_template.jinja, else tokenizer_config.json's (empty: none)
  std::string chat_template_origin;  // which of the two, for error messages
  ChatSpecialTokens template_tokens;
  std::optional<ChatFamily> chat_family;

  bool has_id(int32_t id) const { return id >= 0 && static_cast<size_t>(id) < id_known.size() && id_known[id]; }
  std::optional<int32_t> find(std::string_view token) const {
    const auto it = id_by_token.find(token);
    if (it == id_by_token.end()) return std::nullopt;
    return it->second;
  }

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const;
  std::string token_to_piece(int32_t id) const;
  // See Decoder::pending_at_end.
  bool text_pending(int32_t id) const { return decoder && has_id(id) && decoder->pending_at_end(token_by_id[id]); }

  // Registers added tokens (after the vocabulary is parsed) and builds the id tables and matchers.
  void finish_tables();
};

// tokenizer.json (model, components, added tokens); tables are not yet built.
std::unique_ptr<TokenizerImpl> parse_tokenizer_json(std::string_view json_text);
// tokenizer_config.json's added_tokens_decoder entries, merged into impl.added_tokens.
void merge_config_added_tokens(TokenizerImpl& impl, const Json& config);
// bos/eos/chat template from tokenizer_config.json and generation_config.json (either may be null),
// after the tables are built; a chat template already set (chat_template.jinja) is kept.
void apply_special_token_config(TokenizerImpl& impl, const Json& config, const Json& generation_config);
// Chat family from the template string or the special tokens.
std::optional<ChatFamily> detect_chat_family(const TokenizerImpl& impl);
std::string format_chat(const TokenizerImpl& impl, ChatFamily family, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt);

}  // namespace dattn::tokenizer_detail
