#include "dattn/server/prompt.h"

namespace dattn::server {

ChatPrompt::ChatPrompt(const Tokenizer& tokenizer)
    : tokenizer_(&tokenizer), template_(tokenizer.chat_template()), family_(tokenizer.chat_family().has_value()) {}

std::vector<int32_t> ChatPrompt::encode(const std::vector<ChatMessage>& messages) const {
  if (template_) {
    return tokenizer_->encode(render_chat(*template_, messages, /*add_generation_prompt=*/true),
                              /*add_special_tokens=*/false);
  }
  if (family_) return tokenizer_->encode_chat(messages, /*add_generation_prompt=*/true);
  std::string text;
  for (const ChatMessage& message : messages) text += message.role + ": " + message.content + "\n";
  text += "assistant:";
  return tokenizer_->encode(text, /*add_special_tokens=*/true);
}

std::string ChatPrompt::describe() const {
  if (template_) return "chat template: " + template_->origin();
  if (family_) return "chat layout: built-in " + std::string(chat_family_name(*tokenizer_->chat_family()));
  return "chat layout: plain role lines (the model has no chat template)";
}

}  // namespace dattn::server
