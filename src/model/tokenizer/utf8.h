// UTF-8 helpers shared by the tokenizer stages.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace dattn::tokenizer_detail {

// Offset of the first byte that is not part of a well-formed UTF-8 sequence, or nullopt.
std::optional<size_t> find_invalid_utf8(std::string_view text);
// Length in bytes of the character starting at text[pos]; text must be valid UTF-8.
size_t utf8_char_length(std::string_view text, size_t pos);
// Code point starting at text[pos]; text must be valid UTF-8.
char32_t decode_utf8_at(std::string_view text, size_t pos);
void append_utf8(std::string& out, char32_t code_point);
// Bytes to text with each maximal invalid subsequence replaced by U+FFFD (Rust's from_utf8_lossy).
std::string utf8_lossy(std::string_view bytes);
// Unicode White_Space, as Rust's char::is_whitespace (and regex \s) define it.
bool is_unicode_whitespace(char32_t c);
// Python's str.isspace(), which Jinja's |trim uses: White_Space plus the separators U+001C..U+001F.
bool is_python_space(char32_t c);

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

}  // namespace dattn::tokenizer_detail
