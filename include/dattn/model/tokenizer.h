// Tokenizer for Hugging Face `tokenizer.json` files (BPE models as used by Llama 2/3, Mistral, Qwen2/3),
// matching the ids and text of the `tokenizers` library, plus chat formatting. No Python needed.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dattn/model/chat_template.h"

namespace dattn {

namespace tokenizer_detail {
struct TokenizerImpl;
}

class Tokenizer {
 public:
  // Reads model_dir/tokenizer.json and, when present, tokenizer_config.json (special tokens, chat
  // template, added_tokens_decoder), chat_template.jinja (the chat template; it wins over the config's)
  // and generation_config.json (extra eos ids); or, given a GGUF file, its tokenizer.ggml.* metadata and
  // tokenizer.chat_template. Throws dattn::Error.
  static Tokenizer load(const std::filesystem::path& model_dir);
  // From in-memory file contents; all but tokenizer_json may be empty.
  static Tokenizer from_json(std::string_view tokenizer_json, std::string_view config_json = {},
                             std::string_view generation_config_json = {},
                             std::string_view chat_template_jinja = {});

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Text must be valid UTF-8 (else dattn::Error naming the byte offset). add_special_tokens applies the
  // post-processor (e.g. prepends BOS), exactly as `tokenizers` does.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;
  // Unknown ids (>= vocab_size or gaps) are skipped like `tokenizers` does; negative ids throw.
  // Invalid UTF-8 produced by byte tokens becomes U+FFFD.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const;
  // The raw bytes one token stands for in the middle of a text (may be an incomplete UTF-8 sequence).
  std::string token_to_piece(int32_t id) const;
  // The vocabulary string of a token (e.g. "Ġhello", "▁the", "<|eot_id|>"); throws for unknown ids.
  const std::string& id_to_token(int32_t id) const;
  std::optional<int32_t> token_id(std::string_view token) const;
  bool is_special(int32_t id) const;

  std::optional<int32_t> bos_id() const;
  // eos_token of tokenizer_config.json, generation_config.json's eos_token_id(s) and the chat family's
  // end-of-turn token (<|eot_id|>, <|im_end|>): generation stops at any of them.
  const std::vector<int32_t>& eos_ids() const;
  // One past the largest id of the vocabulary and the added tokens.
  int32_t vocab_size() const;

  // The family named by the chat template or, failing that, by the special tokens; nullopt when neither
  // says. It picks the end-of-turn eos id and the built-in layout for models without a template.
  std::optional<ChatFamily> chat_family() const;
  // The model's own chat template (parsed on each call; throws for one the interpreter cannot parse),
  // with this tokenizer's bos/eos/unk/pad tokens; nullopt when the model has none.
  std::optional<ChatTemplate> chat_template() const;
  // The built-in layout of a family, rendered by the template interpreter. The prompt text includes BOS
  // where the family has one: encode it with add_special_tokens = false.
  std::string format_chat(ChatFamily family, const std::vector<ChatMessage>& messages,
                          bool add_generation_prompt) const;
  // The prompt as the model's chat template renders it or, for a model without one, the built-in layout
  // of the detected family; encoded. Throws when there is neither.
  std::vector<int32_t> encode_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

 private:
  explicit Tokenizer(std::unique_ptr<tokenizer_detail::TokenizerImpl> impl);
  std::unique_ptr<tokenizer_detail::TokenizerImpl> impl_;
  friend class StreamDecoder;
};

// Incremental detokenizer for streaming generation: push() returns the newly completed text, never a
// partial UTF-8 character; the concatenation of all push() results and finish() equals
// decode(all ids, skip_special_tokens). With byte-fallback vocabularies a run of <0xXX> tokens is held
// until the next other token (or finish()), since one bad byte turns the whole run into U+FFFD.
class StreamDecoder {
 public:
  StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens);
  std::string push(int32_t id);
  // Whatever is still held back (an incomplete character becomes U+FFFD, as decode() would give).
  std::string finish();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> ids_;  // the window re-decoded for context: ids_[0, read_start_) are emitted already
  size_t read_start_ = 0;
};

}  // namespace dattn
