// Errors: every bad input becomes a dattn::Error whose message names the bad value.
#pragma once
#include <stdexcept>
#include <string>

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

}  // namespace dattn
