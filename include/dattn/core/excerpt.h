// Quoting user data in error messages without letting a hostile file turn into a huge message.
#pragma once
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace dattn {

// `text` whole when short, else its first `max_bytes` bytes (cut at a UTF-8 character boundary) and its
// total size.
inline std::string excerpt(std::string_view text, size_t max_bytes = 80) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // continuation byte
  return fmt::format("{}... ({} bytes)", text.substr(0, cut), text.size());
}

}  // namespace dattn
