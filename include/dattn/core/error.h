// Errors: every bad input becomes a dattn::Error whose message names the bad value.
#pragma once
#include <stdexcept>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace dattn {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws dattn::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

// DATTN_CHECK(cond, "fmt", args...): throw with the message when cond is false.
#define DATTN_CHECK(cond, ...)          \
  do {                                  \
    if (!(cond)) ::dattn::fail(__VA_ARGS__); \
  } while (0)

// `text` for an error message: whole when short, else its first `max_bytes` bytes (cut at a UTF-8
// character boundary) and its total size, so that a hostile file never becomes a huge message.
inline std::string excerpt(std::string_view text, size_t max_bytes = 80) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // continuation byte
  return fmt::format("{}... ({} bytes)", text.substr(0, cut), text.size());
}

}  // namespace dattn
