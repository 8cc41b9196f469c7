// GPT-2's reversible byte <-> printable character mapping used by byte-level BPE (Llama 3, Qwen).
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dattn::tokenizer_detail {

// UTF-8 of the character standing for each byte.
const std::array<std::string, 256>& byte_to_char();
// The byte a character stands for, if it is one of the 256 mapped characters.
std::optional<uint8_t> char_to_byte(char32_t c);
// Maps every byte of text to its character.
std::string bytes_to_byte_level(std::string_view text);

}  // namespace dattn::tokenizer_detail
