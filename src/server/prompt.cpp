#include "dattn/server/prompt.h"

namespace dattn::server {

std::vector<int32_t> encode_chat_prompt(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages) {
  // the model's own chat template, else a fixed layout its special tokens name (Tokenizer::encode_chat)
  if (tokenizer.chat_template() || tokenizer.chat_family())
    return tokenizer.encode_chat(messages, /*add_generation_prompt=*/true);
  std::string text;
  for (const ChatMessage& message : messages) text += message.role + ": " + message.content + "\n";
  text += "assistant:";
  return tokenizer.encode(text, /*add_special_tokens=*/true);
}

}  // namespace dattn::server
