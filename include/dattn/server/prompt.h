// Chat messages to prompt token ids for the server.
#pragma once
#include <cstdint>
#include <vector>

#include "dattn/model/tokenizer.h"

namespace dattn::server {

// The model's chat layout (Tokenizer::chat_family) when it has one; a model without any (a base model such
// as the embedded one) gets plain "role: content" lines ending in "assistant:", after BOS.
// Throws dattn::Error for messages the layout cannot take.
std::vector<int32_t> encode_chat_prompt(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages);

}  // namespace dattn::server
