// Chat messages to prompt token ids for the server, with the model's own chat template parsed once.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dattn/model/tokenizer.h"

namespace dattn::server {

class ChatPrompt {
 public:
  // The model's chat template (chat_template.jinja or tokenizer_config.json's), else the built-in layout
  // of its chat family, else (a base model such as the embedded one) plain "role: content" lines ending in
  // "assistant:", after BOS. Throws dattn::Error for a template the interpreter cannot parse.
  explicit ChatPrompt(const Tokenizer& tokenizer);
  // Throws dattn::Error for messages the template refuses (its raise_exception, e.g. roles out of order).
  std::vector<int32_t> encode(const std::vector<ChatMessage>& messages) const;
  // Which of the three it uses, for the startup line.
  std::string describe() const;

 private:
  const Tokenizer* tokenizer_;
  std::optional<ChatTemplate> template_;
  bool family_ = false;
};

}  // namespace dattn::server
