#include "byte_level.h"

#include "utf8.h"

namespace dattn::tokenizer_detail {
namespace {

// Printable bytes map to themselves; the others to U+0100 upwards, in byte order.
std::array<char32_t, 256> build_code_points() {
  std::array<char32_t, 256> code_points{};
  char32_t next_unprintable = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    code_points[b] = printable ? static_cast<char32_t>(b) : next_unprintable++;
  }
  return code_points;
}

const std::array<char32_t, 256>& code_points() {
  static const std::array<char32_t, 256> table = build_code_points();
  return table;
}

}  // namespace

const std::array<std::string, 256>& byte_to_char() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> strings;
    for (int b = 0; b < 256; ++b) append_utf8(strings[b], code_points()[b]);
    return strings;
  }();
  return table;
}

std::optional<uint8_t> char_to_byte(char32_t c) {
  // Mapped characters are all below U+0144; index them directly.
  static const std::array<int16_t, 0x144> reverse = [] {
    std::array<int16_t, 0x144> table;
    table.fill(-1);
    for (int b = 0; b < 256; ++b) table[code_points()[b]] = static_cast<int16_t>(b);
    return table;
  }();
  if (c >= reverse.size() || reverse[c] < 0) return std::nullopt;
  return static_cast<uint8_t>(reverse[c]);
}

std::string bytes_to_byte_level(std::string_view text) {
  const auto& table = byte_to_char();
  std::string out;
  out.reserve(text.size() * 2);
  for (const char c : text) out += table[static_cast<uint8_t>(c)];
  return out;
}

}  // namespace dattn::tokenizer_detail
